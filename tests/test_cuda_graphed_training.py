"""The main job's training step captured as one CUDA graph (`--cuda-graph`, the default on CUDA)
learns as the eager step does (GPU machine)."""
import json
import os

import numpy as np
import pytest

import ember
from test_gpt_example import text_dir  # noqa: F401 - fixtures shared with the CPU tests of the jobs
from test_vit_example import archive  # noqa: F401

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]


def test_graphed_training_step_follows_the_eager_one(tmp_path):
    from ember.examples.reverse import main
    common = ["--device", "cuda", "--steps", "80", "--eval-every", "80", "--eval-samples", "128", "--no-progress"]
    eager = main(common + ["--no-cuda-graph", "--out", str(tmp_path / "eager")])
    graphed = main(common + ["--cuda-graph", "--out", str(tmp_path / "graphed")])
    he = json.load(open(os.path.join(tmp_path, "eager", "history.json")))["history"]
    hg = json.load(open(os.path.join(tmp_path, "graphed", "history.json")))["history"]
    assert he["step"] == hg["step"]
    # the two differ only in where Adam's bias corrections are computed (host float64 vs device float32)
    np.testing.assert_allclose(hg["loss"], he["loss"], rtol=2e-3)
    assert graphed["final_loss"] < 0.7 * graphed["first_loss"]
    ck = ember.load(os.path.join(tmp_path, "graphed", "checkpoint.safetensors"))
    assert ck["step"] == 80


def _cuda(args):
    return ["--device" if a == "--device" else ("cuda" if a == "cpu" else a) for a in args]


def test_gpt_job_graphed_follows_the_eager_one(tmp_path, text_dir):
    from test_gpt_example import TINY
    from ember.examples import gpt
    common = _cuda(TINY) + ["--data", str(text_dir), "--steps", "30", "--eval-every", "30", "--dropout", "0"]
    eager = gpt.main(common + ["--no-cuda-graph", "--out", str(tmp_path / "eager")])
    graphed = gpt.main(common + ["--out", str(tmp_path / "graphed")])         # graphed: the default on CUDA
    np.testing.assert_allclose(graphed["losses"], eager["losses"], rtol=2e-3)
    assert graphed["val_loss"] == pytest.approx(eager["val_loss"], rel=2e-3)


def test_vit_job_graphed_follows_the_eager_one(tmp_path, archive):
    from test_vit_example import TINY
    from ember.examples import vit
    common = _cuda(TINY) + ["--data", str(archive), "--cache", str(tmp_path / "cache"), "--epochs", "3",
                            "--dropout", "0"]
    eager = vit.main(common + ["--no-cuda-graph", "--out", str(tmp_path / "eager")])
    graphed = vit.main(common + ["--out", str(tmp_path / "graphed")])
    np.testing.assert_allclose(graphed["losses"], eager["losses"], rtol=2e-3)
