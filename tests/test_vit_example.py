"""python -m ember.examples.vit on a made-up CIFAR-10 archive (10 classes of coloured 32x32 JPEGs): end to end
on the CPU, the decoded-image cache, the on-device augmentation, resume, and clear errors."""
import io
import json
import tarfile

import numpy as np
import pytest

import ember
from ember.examples import vit
from helpers import CIFAR_CLASSES, made_up_cifar

CLASSES = CIFAR_CLASSES
TINY = ["--device", "cpu", "--batch-size", "16", "--d-model", "32", "--heads", "2", "--layers", "1",
        "--no-progress"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """cifar10-jpeg.tar.gz with 12 training and 4 test images a class: each class a colour, plus noise."""
    d = tmp_path_factory.mktemp("cifar")
    made_up_cifar(d / "cifar10-jpeg.tar.gz")
    return d


def test_decodes_once_into_the_cache(archive, tmp_path):
    a = vit.load(str(archive / "cifar10-jpeg.tar.gz"), str(tmp_path))
    assert a["train"][0].shape == (120, 32, 32, 3) and a["test"][0].shape == (40, 32, 32, 3)
    assert a["classes"] == sorted(CLASSES) and sorted(set(a["train"][1].tolist())) == list(range(10))
    files = list(tmp_path.glob("cifar10-*.npz"))
    assert len(files) == 1
    b = vit.load(str(archive / "cifar10-jpeg.tar.gz"), str(tmp_path))      # from the cache
    assert np.array_equal(a["train"][0], b["train"][0]) and np.array_equal(a["test"][1], b["test"][1])


def test_augmentation_crops_and_flips_on_the_device():
    x = ember.arange(2 * 32 * 32 * 3, dtype=ember.float32).reshape(2, 32, 32, 3)
    gen = ember.Generator().manual_seed(0)
    y = vit.augment(x, gen)
    assert tuple(y.shape) == (2, 32, 32, 3)
    xn, yn = x.numpy(), y.numpy()
    for b in range(2):
        padded = np.pad(xn[b], ((4, 4), (4, 4), (0, 0)))
        found = any(np.array_equal(yn[b], (padded[oy:oy + 32, ox:ox + 32][:, ::-1] if f else
                                           padded[oy:oy + 32, ox:ox + 32]))
                    for oy in range(9) for ox in range(9) for f in (False, True))
        assert found, "not a crop (or flipped crop) of the padded image"


def test_runs_end_to_end_and_learns(archive, tmp_path):
    res = vit.main(TINY + ["--data", str(archive), "--cache", str(tmp_path / "cache"), "--epochs", "6",
                           "--lr", "3e-3", "--out", str(tmp_path / "run"), "--confusion"])
    for f in ("checkpoint.safetensors", "history.json", "curves.png", "confusion.png"):
        assert (tmp_path / "run" / f).exists(), f
    h = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert h["epoch"] == [1, 2, 3, 4, 5, 6] and len(h["test_acc"]) == 6
    assert res["test_acc"] > 0.3, res["test_acc"]        # colours are easy: well above chance (0.1)


def test_resume_continues_with_the_same_next_losses(archive, tmp_path, monkeypatch):
    common = TINY + ["--data", str(archive), "--cache", str(tmp_path / "cache"), "--epochs", "3"]
    full = vit.main(common + ["--out", str(tmp_path / "full")])
    real = vit.evaluate
    calls = []

    def dies_in_the_third_evaluation(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("interrupted")
        return real(*a, **k)
    monkeypatch.setattr(vit, "evaluate", dies_in_the_third_evaluation)
    with pytest.raises(KeyboardInterrupt):
        vit.main(common + ["--out", str(tmp_path / "cut")])
    monkeypatch.setattr(vit, "evaluate", real)
    assert ember.load(tmp_path / "cut" / "checkpoint.safetensors")["epoch"] == 2
    resumed = vit.main(["--resume", str(tmp_path / "cut"), "--no-progress"])
    assert resumed["losses"] == full["losses"]               # the last epoch's losses bit for bit, the rest restored


def test_missing_data_and_bad_options(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("EMBER_DATA", raising=False)
    with pytest.raises(SystemExit, match="CIFAR-10 not found: looked for .*nothere.*cifar10-jpeg.tar.gz"):
        vit.main(TINY + ["--data", str(tmp_path / "nothere"), "--cache", str(tmp_path)])
    for flag, value in (("--heads", "3"), ("--batch-size", "0"), ("--epochs", "-1")):
        with pytest.raises(SystemExit) as e:
            vit.main(TINY + [flag, value])
        assert e.value.code == 2 and f"{flag} {value}: must be" in capsys.readouterr().err


def test_first_50_losses_match_a_torch_twin(archive, tmp_path):
    """The same weights and batches (no dropout, no augmentation), float32: the first 50 losses to 1e-4."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF
    from helpers import from_torch, to_torch

    class TBlock(tnn.Module):
        def __init__(self, d, h):
            super().__init__()
            self.h = h
            self.ln1, self.ln2 = tnn.LayerNorm(d), tnn.LayerNorm(d)
            self.qkv, self.proj = tnn.Linear(d, 3 * d), tnn.Linear(d, d)
            self.mlp = tnn.Sequential(tnn.Linear(d, 4 * d), tnn.GELU(), tnn.Dropout(0.0), tnn.Linear(4 * d, d),
                                      tnn.Dropout(0.0))

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.h, c // self.h).permute(2, 0, 3, 1, 4)
            a = TF.scaled_dot_product_attention(q, k, v)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, c))
            return x + self.mlp(self.ln2(x))

    class TViT(tnn.Module):
        def __init__(self, d=32, h=2, layers=2, k=16):
            super().__init__()
            self.patch = tnn.Conv2d(3, d, 4, stride=4)
            self.cls = tnn.Parameter(torch.zeros(1, k, d))
            self.pos = tnn.Parameter(torch.randn(1, k + 64, d) * 0.02)
            self.drop = tnn.Dropout(0.0)
            self.blocks = tnn.ModuleList([TBlock(d, h) for _ in range(layers)])
            self.norm, self.head, self.k = tnn.LayerNorm(d), tnn.Linear(d, 10), k

        def forward(self, x):
            p = self.patch(x).flatten(2).transpose(1, 2)
            h = self.drop(torch.cat([self.cls.expand(x.shape[0], -1, -1), p], dim=1) + self.pos)
            for b in self.blocks:
                h = b(h)
            return self.head(self.norm(h[:, :self.k]).mean(1))

    data = vit.load(str(archive / "cifar10-jpeg.tar.gz"), str(tmp_path))
    x_all, y_all = data["train"]
    torch.manual_seed(0)
    twin = TViT()
    model = vit.ViT(10, 32, 4, 32, 2, 2, 16, 0.0)
    model.load_state_dict({k: from_torch(v) for k, v in twin.state_dict().items()})
    opt = ember.optim.AdamW(model.parameters(), lr=1e-3)
    topt = torch.optim.AdamW(twin.parameters(), lr=1e-3)
    mean, std = ember.tensor([0.5, 0.5, 0.5]), ember.tensor([0.25, 0.25, 0.25])
    losses, tlosses = [], []
    for step in range(50):
        idx = np.random.default_rng(step).permutation(len(y_all))[:16]
        x = vit.prepare(x_all[idx], mean, std, "cpu")
        y = ember.tensor(y_all[idx])
        loss = ember.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = TF.cross_entropy(twin(to_torch(x)), to_torch(y), label_smoothing=0.1)
        topt.zero_grad()
        tloss.backward()
        topt.step()
        losses.append(loss.item())
        tlosses.append(tloss.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-4)


def test_limit_takes_a_random_subset_of_every_class(archive, tmp_path, monkeypatch):
    captured = {}
    real_ce = ember.nn.functional.cross_entropy

    def ce(logits, y, **kw):
        captured.setdefault("labels", set()).update(y.tolist())
        return real_ce(logits, y, **kw)
    monkeypatch.setattr(vit.F, "cross_entropy", ce)
    vit.main(TINY + ["--data", str(archive), "--cache", str(tmp_path), "--epochs", "1", "--limit", "48",
                     "--out", str(tmp_path / "run")])
    assert len(captured["labels"]) >= 8       # the archive lists images class by class: not the first 48


def test_cuda_graph_is_refused_off_cuda(capsys):
    with pytest.raises(SystemExit) as e:
        vit.main(TINY + ["--device", "cpu", "--cuda-graph"])
    assert e.value.code == 2 and "--cuda-graph: needs a CUDA device, and the run's device is cpu" in \
        capsys.readouterr().err
