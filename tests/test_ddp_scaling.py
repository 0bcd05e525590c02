"""benchmarks/ddp_scaling.py on the CPU (ember's 'mpi' backend, torch's 'gloo'), in tiny sizes: a 1-rank run writes
its figures, a 2-rank run under MPICH's mpiexec (the dev extra installs it) prints the table with both frameworks
and the scaling efficiency against them, and ember's DDP passes the loss check against one process on the
global batch. The CPU's figures mean nothing (two ranks share two cores); the run checks that the script works
before a GPU machine runs it."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ember
import ember.distributed as dist
from helpers import load_benchmark

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "ddp_scaling.py"
ARGS = ["--device", "cpu", "--tiny", "--steps", "2", "--warmup", "1", "--rounds", "1"]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT",
               "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")


def _mpiexec():
    return shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")


def _gloo() -> bool:
    try:
        import torch.distributed as tdist
    except ImportError:
        return False
    return tdist.is_available() and tdist.is_gloo_available()


pytestmark = [pytest.mark.skipif(not dist.is_mpi_available(), reason="needs mpi4py (the dev extra installs it)"),
              pytest.mark.skipif(_mpiexec() is None, reason="needs MPICH's mpiexec (the dev extra installs mpich)"),
              pytest.mark.skipif(not _gloo(), reason="needs torch.distributed with the gloo backend")]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}     # whatever started pytest
    # one BLAS / OpenMP thread per rank: two ranks on a two-core runner would oversubscribe it
    return dict(env, PYTHONPATH=str(Path(ember.__file__).parents[1]), OMP_NUM_THREADS="1")


def _rows(out: str) -> dict:
    """{(workload, framework, mode): the table row's cells}."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 10 and cells[1] in ("ember", "torch"):
            rows[tuple(cells[:3])] = cells
    return rows


def test_two_ranks_on_the_cpu_against_a_one_rank_baseline(tmp_path):
    one = subprocess.run([sys.executable, str(SCRIPT), *ARGS, "--save-json", str(tmp_path / "one.json")],
                         capture_output=True, text=True, timeout=120, env=_env())
    assert one.returncode == 0, f"1 rank: exit {one.returncode}\n{one.stdout[-3000:]}\n{one.stderr[-3000:]}"
    base = json.loads((tmp_path / "one.json").read_text())
    assert base["world"] == 1 and set(base["results"]) == {f"{w}/{f}/eager" for w in ("gpt", "vit")
                                                           for f in ("ember", "torch")}

    r = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(SCRIPT), *ARGS, "--check-losses", "3",
                        "--baseline-json", str(tmp_path / "one.json")],
                       capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode == 0, f"mpiexec -n 2: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    out = r.stdout
    assert out.count("### DDP scaling") == 1, out       # rank 0 alone prints the table
    rows = _rows(out)
    assert set(rows) == {(w, f, "eager") for w in ("gpt", "vit") for f in ("ember", "torch")}, out
    for (w, fw, _), cells in rows.items():
        ranks, batch, ms, sps, base_sps, eff, ratio = cells[3:]
        assert (ranks, batch) == ("2", "4"), cells
        assert float(ms) > 0 and float(sps.replace(",", "")) > 0, cells
        assert float(base_sps.replace(",", "")) > 0 and re.fullmatch(r"\d+\.\d%", eff), cells
        assert (float(ratio) > 0) if fw == "ember" else ratio == "-", cells
    for w in ("gpt", "vit"):
        m = re.search(rf"^loss check passed: {w}, 3 steps over 2 rank\(s\), max relative difference (\S+) <= 1e-05$",
                      out, re.M)
        assert m and float(m.group(1)) <= 1e-5, out


def test_the_cpu_needs_mpiexec_for_several_ranks():
    """ember.distributed.run starts N MPI worlds of one: the 'mpi' backend refuses, and the script says to use
    mpiexec, in one line from rank 0, instead of hanging."""
    r = subprocess.run([sys.executable, "-m", "ember.distributed.run", "--nproc-per-node", "2", str(SCRIPT), *ARGS],
                       capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode != 0
    assert "start them with mpiexec -n 2 python benchmarks/ddp_scaling.py --device cpu" in r.stderr, r.stderr
    assert r.stderr.count("ddp_scaling:") == 1, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "--steps 0: must be at least 1"),
    (["--device", "cpu", "--graph"], "--graph: CUDA graphs need CUDA"),
    (["--device", "tpu"], "--device tpu: expected cuda"),
    (["--workloads", "bert"], "argument --workloads: invalid choice: 'bert'"),
    (["--loss-rtol", "0"], "--loss-rtol 0.0: must be a positive finite number"),
    (["--baseline-json", "/nonexistent/one.json"], "--baseline-json /nonexistent/one.json: cannot read it"),
])
def test_option_errors_are_one_clear_line(args, message, capsys, monkeypatch):
    for k in LAUNCH_VARS:
        monkeypatch.delenv(k, raising=False)
    bench = load_benchmark("ddp_scaling")
    with pytest.raises(SystemExit) as e:
        bench.main(args)
    assert e.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith(f"ddp_scaling: {message}") and err.count("\n") == 1, err


def test_the_baseline_must_be_a_one_rank_run_of_the_same_sizes(tmp_path, capsys, monkeypatch):
    for k in LAUNCH_VARS:
        monkeypatch.delenv(k, raising=False)
    bench = load_benchmark("ddp_scaling")
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"world": 2, "device": "cpu", "results": {}}))
    with pytest.raises(SystemExit):
        bench.main(["--device", "cpu", "--baseline-json", str(path)])
    assert "written by a run on 2 ranks; the baseline must be a 1-rank run" in capsys.readouterr().err
    cfg = {k: v for k, v in bench.sw.TINY["gpt"].items() if k != "batch"}
    path.write_text(json.dumps({"world": 1, "device": "cpu",
                                "results": {"gpt/ember/eager": {"batch_per_rank": 4, "cfg": cfg}}}))
    with pytest.raises(SystemExit):         # checked before any process group starts
        bench.main(["--device", "cpu", "--tiny", "--batch-per-rank", "8", "--baseline-json", str(path)])
    err = capsys.readouterr().err
    assert "its gpt run had batch/rank 4" in err and "this run has batch/rank 8" in err, err
