"""Run the `-m cuda` tests on the GPU machine: one pytest process per shard, several at once.

A CUDA error such as an illegal address poisons the whole process's context, so one bad test
would fail everything after it in a single run; separate processes contain it. Triton compiles
kernels on the CPU, so running shards side by side also spreads a cold cache's compile time over
the machine's cores.

    python3 .ci/gpu_tests.py [--jobs 12] [--shard-size 120] [--timeout 540] [--deadline S] [--out DIR] [FILES...]

FILES default to tests/test_cuda_*.py and EXTRA (interpreter-only files collect nothing under -m cuda and
are skipped). Files in SERIAL (tests that read device-wide state, such as free memory) run after the
others, alone. Each shard's log goes to DIR/<file>-<n>.log; the summary goes to stdout and
DIR/summary.txt. Exit status: 0 only when every shard passed with nothing left unrun.
"""

import argparse
import concurrent.futures as cf
import glob
import os
import re
import subprocess
import sys
import time

# files whose tests read device-wide state (free memory from cuMemGetInfo): run after the rest, alone
SERIAL = {"test_cuda_runtime"}
# files with some `-m cuda` tests whose names do not start with test_cuda_
EXTRA = ["tests/test_dlpack.py", "tests/test_elementwise_layout.py", "tests/test_memory_format.py"]
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)")


def collect(path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "--collect-only", path],
                       capture_output=True, text=True)
    ids = [ln.strip() for ln in r.stdout.splitlines() if "::" in ln]
    return ids


def run_shard(name, ids, out, timeout, deadline=None):
    if deadline is not None:    # what is left of the whole run's time (a shard that starts too late is not run)
        timeout = min(timeout, deadline - time.time())
        if timeout < 5:
            return name, len(ids), "not started (deadline)", {}, [], 0.0
    argfile = os.path.join(out, name + ".args")
    with open(argfile, "w") as f:
        f.write("\n".join(ids) + "\n")
    log = os.path.join(out, name + ".log")
    t0 = time.time()
    with open(log, "w") as f:
        try:
            rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                                 "@" + argfile], stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    tail = open(log).read()[-3000:]
    counts = {}
    last = [ln for ln in tail.splitlines() if " in " in ln and SUMMARY.search(ln)]
    if last:
        for n, kind in SUMMARY.findall(last[-1]):
            counts[kind.rstrip("s") if kind.startswith("error") else kind] = int(n)
    failed = [ln for ln in tail.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    return name, len(ids), rc, counts, failed, time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--shard-size", type=int, default=120)
    ap.add_argument("--timeout", type=float, default=540)
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu-test-logs"))
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds for the whole run: shards are cut short so that the summary is still written")
    a = ap.parse_args()
    deadline = None if a.deadline is None else time.time() + a.deadline
    os.makedirs(a.out, exist_ok=True)
    files = a.files or sorted(glob.glob("tests/test_cuda_*.py") + EXTRA)
    shards = []
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for path, ids in zip(files, ex.map(collect, files)):
            base = os.path.basename(path)[:-3]
            for i in range(0, len(ids), a.shard_size):
                shards.append((f"{base}-{i // a.shard_size}", ids[i:i + a.shard_size]))
    alone = [s for s in shards if s[0].rsplit("-", 1)[0] in SERIAL]
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        results = list(ex.map(lambda s: run_shard(s[0], s[1], a.out, a.timeout, deadline),
                              [s for s in shards if s not in alone]))
    results += [run_shard(s[0], s[1], a.out, a.timeout, deadline) for s in alone]
    lines, ok = [], True
    for name, n, rc, counts, failed, secs in sorted(results):
        done = sum(counts.get(k, 0) for k in ("passed", "failed", "error", "skipped", "xfailed"))
        # an expected failure (a known gap, marked strict) counts as run; a skip under -m cuda does not pass
        good = rc == 0 and counts.get("passed", 0) + counts.get("xfailed", 0) == n
        ok &= good
        lines.append(f"{'ok  ' if good else 'BAD '} {name:40s} {n:5d} collected  rc={rc}  "
                     + " ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f"  unrun={n - done}  {secs:.0f}s")
        lines += ["      " + ln[:300] for ln in failed[:20]]
    total = {}
    for r in results:
        for k, v in r[3].items():
            total[k] = total.get(k, 0) + v
    lines.append("TOTAL " + " ".join(f"{k}={v}" for k, v in sorted(total.items()))
                 + f"  collected={sum(r[1] for r in results)}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
