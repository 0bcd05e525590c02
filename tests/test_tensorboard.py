"""ember.utils.tensorboard.SummaryWriter against torch.utils.tensorboard.SummaryWriter: the same calls must give the
same event contents, read back with TensorBoard's own EventAccumulator."""
import io
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image
# CI installs the tensorboard extra: a missing package must fail here, not skip
from tensorboard.backend.event_processing.event_accumulator import DEFAULT_SIZE_GUIDANCE, EventAccumulator
from torch.utils.tensorboard import SummaryWriter as TorchWriter

import ember
from ember.utils.tensorboard import SummaryWriter

EVERYTHING = {k: 0 for k in DEFAULT_SIZE_GUIDANCE}


def _load(path):
    acc = EventAccumulator(str(path), size_guidance=EVERYTHING)
    acc.Reload()
    return acc


def _event_files(path):
    return sorted(f for f in os.listdir(path) if f.startswith("events.out.tfevents."))


def _inputs():
    rng = np.random.default_rng(0)
    hist = rng.standard_normal((4, 50)).astype(np.float32)
    img_chw = rng.random((3, 5, 7)).astype(np.float32)
    img_chw[0, 0, 0], img_chw[1, 0, 0] = -0.5, 1.5  # out of [0, 1]: clipped
    img_hwc = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    return hist, img_chw, img_hwc


def _write_all(writer, T):
    """The same calls for both writers; T converts NumPy inputs to the writer's own tensor type."""
    hist, img_chw, img_hwc = _inputs()
    for step, v in enumerate([0.1, 2.5, -3.0]):
        writer.add_scalar("loss", T(np.float32(v)), step)  # 0-d tensor
    writer.add_scalar("loss", T(np.array([1 / 3], np.float32)), 3)  # 1-element tensor
    writer.add_scalar("lr", 0.001, 0)  # Python float
    writer.add_scalar("ns/int", np.int64(7), 5)  # NumPy scalar
    writer.add_scalar("new", T(np.float32(4.25)), 1, new_style=True)
    for step in range(2):
        writer.add_scalars("run/a", {"train": T(np.float32(step + 0.5)), "val": step * 2.0}, step)
    writer.add_histogram("w", T(hist), 0)
    writer.add_histogram("w", T(hist * 10 + 1), 1)
    writer.add_histogram("w_auto", T(hist), 0, bins="auto")
    writer.add_histogram("w_max", T(hist), 0, bins=64, max_bins=10)
    writer.add_histogram("ints", np.arange(10), 2)
    writer.add_image("chw", T(img_chw), 0)
    writer.add_image("hwc", T(img_hwc), 1, dataformats="HWC")
    writer.add_image("hw", T(img_chw[0]), 2, dataformats="HW")
    writer.add_image("grid", T(np.stack([img_chw, img_chw * 0.5])), 3, dataformats="NCHW")
    writer.add_text("note", "hello **ember** — ünïcode", 4)
    writer.add_text("note", "second", 5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    with SummaryWriter(root / "ember") as w:
        _write_all(w, lambda a: ember.tensor(np.asarray(a)))
    with TorchWriter(str(root / "torch")) as w:
        _write_all(w, lambda a: torch.tensor(np.asarray(a)))
    return root


def test_same_tags(runs):
    e, t = _load(runs / "ember").Tags(), _load(runs / "torch").Tags()
    for kind in ("scalars", "histograms", "images", "tensors"):
        assert sorted(e[kind]) == sorted(t[kind]), kind
    assert sorted(e["scalars"]) == ["loss", "lr", "ns/int"]
    assert sorted(e["tensors"]) == ["new", "note/text_summary"]


def test_scalars_match_torch(runs):
    e, t = _load(runs / "ember"), _load(runs / "torch")
    for tag in ("loss", "lr", "ns/int"):
        es, ts = e.Scalars(tag), t.Scalars(tag)
        assert [(s.step, s.value) for s in es] == [(s.step, s.value) for s in ts]
    assert [(s.step, s.value) for s in e.Scalars("loss")] == [
        (0, float(np.float32(0.1))), (1, 2.5), (2, -3.0), (3, float(np.float32(1 / 3)))]
    (new,) = e.Tensors("new")
    assert new.step == 1 and list(new.tensor_proto.float_val) == [4.25]
    assert e.SummaryMetadata("new").plugin_data.plugin_name == "scalars"
    assert e.SummaryMetadata("new") == t.SummaryMetadata("new")


def test_add_scalars_sub_runs(runs):
    for name in ("run_a_train", "run_a_val"):
        assert _event_files(runs / "ember" / name)
        e, t = _load(runs / "ember" / name), _load(runs / "torch" / name)
        assert e.Tags()["scalars"] == ["run/a"]
        assert [(s.step, s.value) for s in e.Scalars("run/a")] == [(s.step, s.value) for s in t.Scalars("run/a")]
    assert [s.value for s in _load(runs / "ember" / "run_a_train").Scalars("run/a")] == [0.5, 1.5]
    assert [s.value for s in _load(runs / "ember" / "run_a_val").Scalars("run/a")] == [0.0, 2.0]


def test_histograms_match_torch(runs):
    e, t = _load(runs / "ember"), _load(runs / "torch")
    hist = _inputs()[0].astype(float)
    for tag in ("w", "w_auto", "w_max", "ints"):
        eh, th = e.Histograms(tag), t.Histograms(tag)
        assert [h.step for h in eh] == [h.step for h in th]
        for a, b in zip(eh, th):
            a, b = a.histogram_value, b.histogram_value
            assert (a.min, a.max, a.num, a.sum, a.sum_squares) == (b.min, b.max, b.num, b.sum, b.sum_squares), tag
            assert list(a.bucket_limit) == list(b.bucket_limit), tag
            assert list(a.bucket) == list(b.bucket), tag
    w0 = e.Histograms("w")[0].histogram_value
    assert w0.num == 200 and sum(w0.bucket) == 200
    assert (w0.min, w0.max) == (hist.min(), hist.max())
    assert w0.sum == pytest.approx(hist.sum())
    # 64 buckets merged 64 // 10 = 6 at a time -> 11, plus the empty leftmost one (torch's layout)
    assert len(e.Histograms("w_max")[0].histogram_value.bucket) <= 12


def test_images_match_torch(runs):
    e, t = _load(runs / "ember"), _load(runs / "torch")
    _, img_chw, img_hwc = _inputs()
    for tag, (h, w) in {"chw": (5, 7), "hwc": (6, 4), "hw": (5, 7), "grid": (5, 14)}.items():
        (ei,), (ti,) = e.Images(tag), t.Images(tag)
        assert (ei.step, ei.width, ei.height) == (ti.step, ti.width, ti.height) == (ei.step, w, h)
        ep = np.asarray(Image.open(io.BytesIO(ei.encoded_image_string)))
        tp = np.asarray(Image.open(io.BytesIO(ti.encoded_image_string)))
        np.testing.assert_array_equal(ep, tp)
    hwc = np.asarray(Image.open(io.BytesIO(e.Images("hwc")[0].encoded_image_string)))
    np.testing.assert_array_equal(hwc, img_hwc)  # uint8 kept as is
    chw = np.asarray(Image.open(io.BytesIO(e.Images("chw")[0].encoded_image_string)))
    expect = (img_chw.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(chw, expect)  # floats scaled by 255 and clipped


def test_text_matches_torch(runs):
    e, t = _load(runs / "ember"), _load(runs / "torch")
    tag = "note/text_summary"
    et = [(x.step, x.tensor_proto.string_val[0].decode()) for x in e.Tensors(tag)]
    assert et == [(x.step, x.tensor_proto.string_val[0].decode()) for x in t.Tensors(tag)]
    assert et == [(4, "hello **ember** — ünïcode"), (5, "second")]
    assert e.SummaryMetadata(tag) == t.SummaryMetadata(tag)
    assert e.SummaryMetadata(tag).plugin_data.plugin_name == "text"


def test_context_manager_closes_and_flushes(tmp_path):
    with SummaryWriter(tmp_path, flush_secs=10_000, max_queue=1000) as w:
        w.add_scalar("x", 1.0, 0)
        assert w.get_logdir() == tmp_path
    assert w.all_writers is None  # closed
    assert [s.value for s in _load(tmp_path).Scalars("x")] == [1.0]
    w.close()  # a second close is a no-op
    w.add_scalar("x", 2.0, 1)  # writing after close opens a new event file, as torch does
    w.flush()
    w.close()
    assert len(_event_files(tmp_path)) == 2


def test_flush_writes_pending_events(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=10_000, max_queue=1000, filename_suffix=".sfx")
    w.add_scalar("x", 3.0, 7)
    w.flush()
    assert [(s.step, s.value) for s in _load(tmp_path).Scalars("x")] == [(7, 3.0)]
    assert all(f.endswith(".sfx") for f in _event_files(tmp_path))
    w.close()


def test_default_logdir_and_purge_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    logdir = w.get_logdir()
    w.close()
    assert logdir.startswith("runs" + os.sep) and logdir.endswith("_lr0.1")
    assert os.path.isdir(logdir) and _event_files(logdir)
    with SummaryWriter("p") as w:
        for s in range(5):
            w.add_scalar("x", float(s), s)
    with SummaryWriter("p", purge_step=3) as w:
        w.add_scalar("x", 30.0, 3)
    assert [(s.step, s.value) for s in _load("p").Scalars("x")] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 30.0)]


def test_add_graph_not_implemented(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(NotImplementedError, match="no tracer"):
            w.add_graph(ember.nn.Linear(2, 2), ember.zeros(1, 2))


def test_bad_inputs(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match=r"add_scalar\('s'\).*shape \(3,\).*one-element"):
            w.add_scalar("s", ember.tensor([1.0, 2.0, 3.0]))
        with pytest.raises(TypeError, match="string 'abc'"):
            w.add_scalar("s", "abc")
        with pytest.raises(TypeError, match="expected a str"):
            w.add_scalar(3, 1.0)
        with pytest.raises(TypeError, match="global_step"):
            w.add_scalar("s", 1.0, global_step="x")
        with pytest.raises(TypeError, match="expected a dict"):
            w.add_scalars("m", [1.0, 2.0])
        with pytest.raises(TypeError, match="object"):
            w.add_histogram("h", object())
        with pytest.raises(ValueError, match="empty"):
            w.add_histogram("h", ember.zeros(0))
        with pytest.raises(ValueError, match="all 2 value.*non-finite"):
            w.add_histogram("h", np.array([np.inf, np.nan]))
        with pytest.warns(RuntimeWarning, match="left out 1 non-finite"):
            w.add_histogram("h", np.array([1.0, np.nan, 2.0]))
        with pytest.raises(ValueError, match=r"shape \(5, 7\) \(2-D\).*3-D image for dataformats='CHW'"):
            w.add_image("i", ember.zeros(5, 7))
        with pytest.raises(ValueError, match="dataformats='CXW'"):
            w.add_image("i", ember.zeros(3, 5, 7), dataformats="CXW")
        with pytest.raises(ValueError, match="2 channels"):
            w.add_image("i", ember.zeros(2, 5, 7))
        with pytest.raises(TypeError, match="expected a str"):
            w.add_text("t", 42)
    assert not _load(tmp_path).Tags()["scalars"]  # nothing was written by the failed calls


def test_cuda_like_tensor_goes_through_cpu(tmp_path):
    class FakeDeviceTensor:  # what a CUDA tensor offers: detach().cpu() before numpy()
        def detach(self):
            return self

        def cpu(self):
            return ember.tensor([[0.25, 0.5]])

        def numpy(self):
            raise RuntimeError("numpy() on a device tensor")

    with SummaryWriter(tmp_path) as w:
        w.add_scalar("s", ember.tensor([[2.0]]).cpu(), 0)
        w.add_histogram("h", FakeDeviceTensor(), 0)
    assert _load(tmp_path).Histograms("h")[0].histogram_value.sum == 0.75


def test_missing_tensorboard_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'ember\[tensorboard\]'"):
        SummaryWriter(tmp_path)
    assert not os.listdir(tmp_path)


def test_ember_does_not_import_torch_or_tensorboard_eagerly():
    import subprocess
    code = ("import sys, ember, ember.utils.tensorboard; "
            "print('torch' in sys.modules, 'tensorboard' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
