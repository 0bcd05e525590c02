"""ember.distributed's "mpi" backend on the CPU: several ranks under MPICH's mpiexec (installed by the dev
extra), each checking the collectives' results (tests/dist/worker.py), plus the single-process API."""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ember
import ember.distributed as dist

WORKER = Path(__file__).parent / "dist" / "worker.py"


def _mpiexec():
    exe = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    assert exe, "mpiexec not found: the dev extra installs mpich (pip install -e '.[dev]')"
    return exe


def _run(n, case, timeout=120):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(ember.__file__).parents[1]),
                                                       str(Path(__file__).parent)]))
    r = subprocess.run([_mpiexec(), "-n", str(n), sys.executable, str(WORKER), case], capture_output=True, text=True,
                       timeout=timeout, env=env)
    oks = sorted(int(k) for k in re.findall(r"rank (\d+) ok", r.stdout))     # the ranks' lines may interleave
    assert r.returncode == 0 and oks == list(range(n)), \
        f"mpiexec -n {n} worker.py {case}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


@pytest.mark.parametrize("n", [2, 3])
def test_collectives_across_ranks(n):
    """all_reduce (each op, float32/float64/int64/bfloat16, async), broadcast, reduce, all_gather(_into_tensor),
    reduce_scatter_tensor, gather, scatter, all_to_all_single, send/recv, a subgroup, barrier."""
    _run(n, "collectives")


def test_a_rank_that_does_not_join_makes_the_others_raise_within_the_timeout():
    _run(3, "timeout")


def test_an_uncaught_exception_on_one_rank_ends_the_job_at_once():
    """Rank 1 raises while rank 0 waits in a barrier with a 10-minute timeout: the job ends within seconds
    (MPI_Abort from ember.distributed's excepthook), with rank 1's traceback and a failing exit status."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(ember.__file__).parents[1]),
                                                       str(Path(__file__).parent)]))
    t0 = time.perf_counter()
    r = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(WORKER), "crash"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode != 0 and "rank 1 fails on purpose" in r.stderr, (r.returncode, r.stdout, r.stderr[-2000:])
    assert time.perf_counter() - t0 < 30


def test_bad_calls_fail_clearly():
    _run(2, "errors")


def test_api_without_a_process_group():
    assert dist.is_available() and dist.is_mpi_available()
    assert isinstance(dist.is_nccl_available(), bool) and "nccl.bindings" not in sys.modules   # found, not imported
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        dist.all_reduce(ember.ones(2))
    assert dist.ReduceOp.SUM == "sum" and dist.group.WORLD is None


# ---- the launcher ------------------------------------------------------------------------------------------

ENV_SCRIPT = Path(__file__).parent / "dist" / "env_script.py"


def _launch(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "ember.distributed.run", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONPATH=str(Path(ember.__file__).parents[1])))


def test_launcher_starts_ranks_with_torchruns_environment():
    r = _launch("--nproc-per-node", "3", "--nnodes", "2", "--node-rank", "1", "--master-port", "29611",
                str(ENV_SCRIPT))
    assert r.returncode == 0, r.stderr
    lines = sorted(re.findall(r"RANK=\d+ LOCAL_RANK=\d+ WORLD_SIZE=\d+ LOCAL_WORLD_SIZE=\d+ GROUP_RANK=\d+ "
                              r"MASTER_ADDR=[\d.]+ MASTER_PORT=\d+", r.stdout))       # the ranks' lines may interleave
    assert lines == [f"RANK={3 + k} LOCAL_RANK={k} WORLD_SIZE=6 LOCAL_WORLD_SIZE=3 GROUP_RANK=1 "
                     f"MASTER_ADDR=127.0.0.1 MASTER_PORT=29611" for k in range(3)]


def test_launcher_stops_every_rank_when_one_fails_and_says_which():
    import time
    start = time.monotonic()
    r = _launch("--nproc-per-node", "3", "--stop-timeout", "2", str(ENV_SCRIPT), "fail", "1", "7")
    took = time.monotonic() - start
    assert r.returncode == 7, (r.returncode, r.stderr)
    assert "rank 1 (local rank 1, pid" in r.stderr and "exited with code 7" in r.stderr, r.stderr
    assert took < 20, took          # the others (sleeping 60 s) were stopped, not waited for


def test_launcher_refuses_bad_arguments():
    r = _launch("--nproc-per-node", "0", str(ENV_SCRIPT))
    assert r.returncode == 2 and "--nproc-per-node must be at least 1" in r.stderr
    r = _launch("--nproc-per-node", "2", "no_such_script.py")
    assert r.returncode == 2 and "script 'no_such_script.py' not found" in r.stderr


@pytest.mark.parametrize("n", [2, 3])
def test_ddp_trains_as_one_process_on_the_whole_batch(n):
    """DistributedDataParallel over n ranks (several buckets, parameters broadcast from rank 0) gives the
    parameters of one process training on the whole batch, step for step (float64, 1e-10); no_sync accumulates;
    DistributedSampler takes its defaults from the process group."""
    _run(n, "ddp")


def test_ddp_checks_device_ids_as_torch():
    """device_ids: None or one device, none for a CPU module (torch's ValueErrors); an empty list counts as None.
    In a world of one under the MPI backend, in a process of its own (the process group is global)."""
    code = ("import ember, ember.distributed as dist\n"
            "dist.init_process_group('mpi')\n"
            "m = ember.nn.Linear(2, 2)\n"
            "for kw in (dict(device_ids=[0]), dict(device_ids=[]), dict(device_ids=[0, 1]), dict(output_device=0)):\n"
            "    try:\n"
            "        ember.nn.parallel.DistributedDataParallel(m, **kw)\n"
            "        print('ok')\n"
            "    except ValueError as e:\n"
            "        print('ValueError:', e)\n"
            "dist.destroy_process_group()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("ValueError:") and "device_ids [0]" in lines[0] and "on the CPU" in lines[0]
    assert lines[1] == "ok" and lines[3] == "ok"
    assert lines[2].startswith("ValueError:") and "single element, got [0, 1]" in lines[2]


def test_ddp_needs_a_process_group():
    with pytest.raises(RuntimeError, match="default process group has not been initialized"):
        ember.nn.parallel.DistributedDataParallel(ember.nn.Linear(2, 2))
