"""Shared bits of the benchmark scripts: timing, git commit, appending to BENCHMARKS.md."""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_us(fn, reps: int = 7, inner: int = 200) -> float:
    """Median over `reps` repeats of the mean time of `inner` calls, in microseconds."""
    for _ in range(max(1, inner // 10)):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times) * 1e6


def commit() -> str:
    if os.environ.get("EMBER_COMMIT"):  # set by the caller where the tree has no .git (the GPU machine's copy)
        return os.environ["EMBER_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT).stdout.strip()
        return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def header(title: str, device: str) -> str:
    import torch
    cpu = platform.processor() or platform.machine()
    return (f"### {title}\n\ndevice {device} ({cpu}, {os.cpu_count()} cores), {datetime.date.today()}, "
            f"commit {commit()}, torch {torch.__version__} ({torch.get_num_threads()} thread(s)), "
            f"Python {sys.version.split()[0]}\n\n")


def append(text: str) -> None:
    path = os.path.join(ROOT, "BENCHMARKS.md")
    new = not os.path.exists(path)
    with open(path, "a") as f:
        if new:
            f.write("# ember benchmarks\n\nWritten by the scripts in `benchmarks/`; each ratio is ember/torch measured "
                    "in the same process on the same device (lower is better, 1.0 = as fast as torch).\n\n")
        f.write(text + "\n")


def gpu_ms(fn, reps: int = 20, lib=None) -> float:
    """Milliseconds per call of `fn` on the current CUDA stream, timed with CUDA events of `lib` (ember, the
    default, or torch), after one untimed call."""
    if lib is None:
        import ember as lib
    s, e = lib.cuda.Event(enable_timing=True), lib.cuda.Event(enable_timing=True)
    fn()
    lib.cuda.synchronize()
    s.record()
    for _ in range(reps):
        fn()
    e.record()
    e.synchronize()
    return s.elapsed_time(e) / reps
