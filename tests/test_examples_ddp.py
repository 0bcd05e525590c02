"""The example jobs data-parallel on the CPU, under MPICH's mpiexec (the dev extra installs it):
`mpiexec -n 2 python -m ember.examples.<job>` trains as one process does on the whole batch, only rank 0 writes
the checkpoint (with a single-process run's keys, so --resume works across rank counts), and a batch that does
not split, torch's launcher, or a rank that fails end the run with a clear error instead of hanging or training
once per rank.

Tolerance: a 2-rank step computes the single-process step's sums in two halves, and DDP averages the halves'
gradients with an all_reduce, so the runs part by float32 rounding only (measured: losses within 3e-7 relative,
bit-equal at most steps). rtol 1e-5 leaves room for that to grow over the steps, and is far below what a wrong
reduction gives: for reverse, whose slices hold different numbers of targets (the test checks that they do), the
mean of the ranks' own means is 4.6e-4 off the batch's mean at the first step already."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_distributed import _mpiexec
from test_gpt_example import text_dir  # noqa: F401 - fixtures shared with the single-process tests of the jobs
from test_vit_example import archive  # noqa: F401

import ember
import ember.distributed as dist
from ember.datasets import ReversalDataset
from ember.examples import _common, gpt, reverse, vit

LOG_SAVES = Path(__file__).parent / "dist" / "log_saves.py"
RTOL = 1e-5


@pytest.fixture(autouse=True)
def alone(monkeypatch):
    """The single-process runs of this process: no launcher's variables, whatever started pytest."""
    for k in _common.WORLD_SIZE_VARS:
        monkeypatch.delenv(k, raising=False)


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(Path(ember.__file__).parents[1]), **extra)


def _two_ranks(job, args, tmp_path, timeout=120):
    """`mpiexec -n 2 python -m ember.examples.JOB ARGS`: (its result, [(rank, path) of each ember.save call])."""
    log = tmp_path / f"saves-{job}.log"
    r = subprocess.run([_mpiexec(), "-n", "2", sys.executable, str(LOG_SAVES), f"ember.examples.{job}", *args],
                       capture_output=True, text=True, timeout=timeout, env=_env(EMBER_SAVE_LOG=str(log)))
    assert r.returncode == 0, f"mpiexec -n 2 {job}: exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    # rank 0 alone prints: the header and the last line once
    assert r.stdout.count("data-parallel over 2 ranks") == 1 and len(re.findall(r"^done[: ]", r.stdout, re.M)) == 1, \
        r.stdout
    saves = [tuple(line.split(" ", 1)) for line in log.read_text().splitlines()] if log.exists() else []
    return r, saves


def _same_training(one: Path, two: Path):
    """The two runs' loss curves agree to RTOL; their checkpoints have the same keys. (Not the weights element by
    element: the attention's key bias gets a gradient that is zero up to rounding, softmax ignoring a shift of
    all keys, and AdamW's normalisation turns that noise into steps of about lr either way, in both runs.)"""
    h1, h2 = (json.loads((d / "history.json").read_text())["history"] for d in (one, two))
    assert h1["step"] == h2["step"]
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=RTOL)
    c1, c2 = (ember.load(d / "checkpoint.safetensors") for d in (one, two))
    assert sorted(c2["model"]) == sorted(c1["model"])           # the unwrapped model's: no "module." prefix
    steps = [{i: float(s["step"]) for i, s in c["optimizer"]["state"].items()} for c in (c1, c2)]
    assert steps[1] == steps[0]                                 # every parameter's AdamW state, as many steps
    return h1, h2


REVERSE = ["--device", "cpu", "--steps", "20", "--warmup", "5", "--batch-size", "16", "--d-model", "32", "--ff", "64",
           "--max-len", "6", "--num-symbols", "6", "--eval-every", "10", "--eval-samples", "64", "--no-progress"]


def test_reverse_trains_as_one_process_on_the_whole_batch(tmp_path):
    # the halves of a batch hold different numbers of targets: the mean of their means is not the batch's mean
    y = ReversalDataset(20 * 16, 6, 2, 6, seed=0, split="train").batch(range(16))[1]
    assert (y[:8] != -100).sum().item() != (y[8:] != -100).sum().item()
    reverse.main(REVERSE + ["--out", str(tmp_path / "one")])
    r, saves = _two_ranks("reverse", REVERSE + ["--out", str(tmp_path / "two")], tmp_path)
    assert saves == [("0", str(tmp_path / "two" / "checkpoint.safetensors"))]      # once, by rank 0
    h1, h2 = _same_training(tmp_path / "one", tmp_path / "two")
    np.testing.assert_allclose(h2["eval_loss"], h1["eval_loss"], rtol=RTOL)
    assert r.stdout.count("eval @") == 2


def _gpt_args(text_dir, out, *more):
    return ["--device", "cpu", "--batch-size", "4", "--block-size", "32", "--d-model", "32", "--heads", "2",
            "--layers", "2", "--vocab-size", "300", "--sample-len", "10", "--no-progress", "--data", str(text_dir),
            "--out", str(out), *more]


def test_gpt_trains_as_one_process_on_the_whole_batch(text_dir, tmp_path):
    gpt.main(_gpt_args(text_dir, tmp_path / "one", "--steps", "12", "--eval-every", "6"))
    _, saves = _two_ranks("gpt", _gpt_args(text_dir, tmp_path / "two", "--steps", "12", "--eval-every", "6"),
                          tmp_path)
    assert saves == [("0", str(tmp_path / "two" / "checkpoint.safetensors"))] * 2    # each evaluation, rank 0
    h1, h2 = _same_training(tmp_path / "one", tmp_path / "two")
    np.testing.assert_allclose(h2["eval_loss"], h1["eval_loss"], rtol=RTOL)
    assert (tmp_path / "two" / "tokenizer.json").read_text() == (tmp_path / "one" / "tokenizer.json").read_text()


def test_gpt_resumes_across_rank_counts(text_dir, tmp_path, monkeypatch):
    """A single-process run cut after its checkpoint at step 6 goes on over 2 ranks as it would have alone; the
    2-rank run's checkpoint goes on in a single process."""
    full = gpt.main(_gpt_args(text_dir, tmp_path / "full", "--steps", "12", "--eval-every", "6"))
    real = gpt.generate

    def dies_at_the_last_evaluation(model, tok, prompt, n, device, temperature, top_k, seed):
        if seed == 11:
            raise KeyboardInterrupt("interrupted")
        return real(model, tok, prompt, n, device, temperature, top_k, seed)
    monkeypatch.setattr(gpt, "generate", dies_at_the_last_evaluation)
    with pytest.raises(KeyboardInterrupt):
        gpt.main(_gpt_args(text_dir, tmp_path / "cut", "--steps", "12", "--eval-every", "6"))
    monkeypatch.setattr(gpt, "generate", real)
    assert ember.load(tmp_path / "cut" / "checkpoint.safetensors")["step"] == 6
    _two_ranks("gpt", ["--resume", str(tmp_path / "cut"), "--data", str(text_dir), "--no-progress"], tmp_path)
    losses = json.loads((tmp_path / "cut" / "history.json").read_text())["history"]["loss"]
    assert losses[:6] == full["losses"][:6]                     # the history came back with the checkpoint
    np.testing.assert_allclose(losses[6:], full["losses"][6:], rtol=RTOL)
    back = gpt.main(["--resume", str(tmp_path / "cut"), "--data", str(text_dir), "--no-progress", "--steps", "14"])
    assert back["steps"] == 14 and len(back["losses"]) == 14


def test_vit_trains_as_one_process_on_the_whole_batch(archive, tmp_path):
    args = ["--device", "cpu", "--batch-size", "16", "--d-model", "32", "--heads", "2", "--layers", "1", "--dropout",
            "0", "--epochs", "2", "--no-progress", "--data", str(archive), "--cache", str(tmp_path / "cache")]
    vit.main(args + ["--out", str(tmp_path / "one")])
    _, saves = _two_ranks("vit", args + ["--out", str(tmp_path / "two")], tmp_path)
    assert saves == [("0", str(tmp_path / "two" / "checkpoint.safetensors"))] * 2    # each epoch, rank 0
    h1, h2 = _same_training(tmp_path / "one", tmp_path / "two")
    np.testing.assert_allclose(h2["test_acc"], h1["test_acc"], atol=0.05)     # an argmax may flip on a near tie


@pytest.mark.parametrize("job", ["reverse", "gpt", "vit"])
def test_a_batch_that_does_not_split_over_the_ranks_fails_clearly(job, tmp_path):
    r = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", f"ember.examples.{job}", "--device", "cpu",
                        "--batch-size", "5", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                       timeout=60, env=_env())
    assert r.returncode != 0
    assert f"{job}: --batch-size 5 does not split over 2 ranks" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_torchs_launcher_fails_clearly_instead_of_training_once_per_rank(tmp_path):
    """ember.distributed.run sets WORLD_SIZE=2, but each process is an MPI world of one: the 'mpi' backend
    refuses, and the job says to use mpiexec."""
    r = subprocess.run([sys.executable, "-m", "ember.distributed.run", "--nproc-per-node", "2", "-m",
                        "ember.examples.reverse", *REVERSE, "--out", str(tmp_path / "run")], capture_output=True,
                       text=True, timeout=60, env=_env())
    assert r.returncode != 0
    assert "WORLD_SIZE=2 but the MPI launcher started this process as world_size 1" in r.stderr, r.stderr
    assert "start them with mpiexec -n 2 python -m ember.examples.reverse" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_a_rank_that_fails_ends_the_job_instead_of_leaving_the_others_waiting(tmp_path):
    """Rank 0 alone writes the outputs: an --out that is a file fails there while rank 1 waits at the last
    barrier. The job must end at once (not at the barrier's 30-minute timeout), with rank 0's error."""
    (tmp_path / "a-file").write_text("")
    r = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "ember.examples.reverse", *REVERSE,
                        "--steps", "2", "--out", str(tmp_path / "a-file")], capture_output=True, text=True,
                       timeout=60, env=_env())
    assert r.returncode != 0 and "FileExistsError" in r.stderr, r.stderr


def test_setup_distributed_alone_and_on_cuda(monkeypatch):
    """Alone (no launcher, or a world of one), nothing is initialised; several ranks on CUDA go to the 'nccl'
    backend, whose rendezvous needs the launcher's environment: without it, the run stops with a message saying
    how to start it rather than train once per rank."""
    assert _common.setup_distributed("reverse", "cpu", 5) == (0, 1, "cpu")
    monkeypatch.setenv("PMI_SIZE", "1")
    assert _common.setup_distributed("reverse", "cuda", 5) == (0, 1, "cuda")
    assert not dist.is_initialized()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "3")
    assert _common.launched_world_size() == 3
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(SystemExit, match="MASTER_ADDR.*python -m ember.distributed.run --nproc-per-node 2"):
        _common.setup_distributed("gpt", "cuda", 4)
    assert not dist.is_initialized()
