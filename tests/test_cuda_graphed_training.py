"""The main job's training step captured as one CUDA graph (`--cuda-graph`, the default on CUDA)
learns as the eager step does (GPU machine)."""
import json
import os

import numpy as np
import pytest

import ember

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
