"""ember.distributed's "mpi" backend on the CPU: several ranks under MPICH's mpiexec (installed by the dev
extra), each checking the collectives' results (tests/dist/worker.py), plus the single-process API."""
import os
import re
import shutil
import subprocess
import sys
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


def test_bad_calls_fail_clearly():
    _run(2, "errors")


def test_api_without_a_process_group():
    assert dist.is_available() and dist.is_mpi_available() and not dist.is_nccl_available()
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="Default process group has not been initialized"):
        dist.all_reduce(ember.ones(2))
    assert dist.ReduceOp.SUM == "sum" and dist.group.WORLD is None
