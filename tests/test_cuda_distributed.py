"""ember.distributed's "nccl" backend on the GPU (`pytest -m cuda`, with nccl4py installed): each test starts
tests/dist/nccl_worker.py in a subprocess (torch blocked from import there), through the launcher
(`python -m ember.distributed.run`) or alone with the launcher's variables set, at world size 1 (and 2 where the
machine has two GPUs). The worker checks every collective against NumPy for float32, bfloat16 and int64, async
work, new_group and barrier; DDP against plain training; a DDP step captured in a CUDA graph against the eager
one. A failure shows every failed check of the run with its traceback, and the worker's output."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ember
import ember.distributed as dist

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings"),
              pytest.mark.skipif(not dist.is_nccl_available(),
                                 reason="needs nccl4py: pip install 'nccl4py[cu12]' (or the wheel in shared/wheels)")]

WORKER = Path(__file__).parent / "dist" / "nccl_worker.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    # ember's sources first, then whatever the parent's path held (where nccl4py may be installed, e.g. --target dirs)
    path = [str(Path(ember.__file__).parents[1])] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join(path), NCCL_NVLS_ENABLE="0", NCCL_DEBUG="WARN", **extra)
    return env


def _check(r, what: str, ranks: int, took: float):
    out = (f"{what}: exit {r.returncode} after {took:.1f} s\n--- stdout\n{r.stdout[-6000:]}\n--- stderr\n"
           f"{r.stderr[-6000:]}")
    fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL ")]
    assert r.returncode == 0 and not fails, f"failed checks: {fails}\n{out}"
    for k in range(ranks):
        assert f"rank {k} ok" in r.stdout, out


def _alone(case: str, how: str = "env", timeout: float = 120):
    """The worker as rank 0 of a world of one, with the launcher's variables set by hand."""
    port = _free_port()
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(WORKER), case, how], capture_output=True, text=True, timeout=timeout,
                       env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1",
                                LOCAL_RANK="0"))
    _check(r, f"nccl_worker.py {case} {how} (MASTER_PORT={port})", 1, time.monotonic() - t0)


def _launched(case: str, n: int = 1, timeout: float = 180):
    port = _free_port()
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "ember.distributed.run", "--nproc-per-node", str(n), "--master-port",
                        str(port), str(WORKER), case], capture_output=True, text=True, timeout=timeout, env=_env())
    _check(r, f"ember.distributed.run --nproc-per-node {n} nccl_worker.py {case}", n, time.monotonic() - t0)


def test_collectives_through_the_launcher():
    _launched("collectives")


def test_collectives_in_a_process_with_the_launchers_variables():
    _alone("collectives")


def test_ddp_equals_plain_training_tcp_init_method():
    _alone("ddp", "tcp")


def test_ddp_step_in_a_cuda_graph_equals_the_eager_step():
    _alone("graph")


@pytest.mark.skipif(ember.cuda.is_available() and ember.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_ranks_on_two_gpus():
    """Every check with real communication: two ranks, one GPU each (NVLink or PCIe)."""
    _launched("all", 2, timeout=300)
