"""Checkpoints: ember.save / ember.load (safetensors, no pickle, atomic writes, map_location)."""
import io
import json
import os
import pickle
import stat
from collections import Counter, OrderedDict

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from helpers import DTYPES, make_pair, to_torch

import ember
from ember import optim, serialization
from ember.serialization import CheckpointError, load, save


def assert_tensor_equal(a, b):
    assert isinstance(a, ember.Tensor) and isinstance(b, ember.Tensor)
    assert a.dtype is b.dtype and tuple(a.shape) == tuple(b.shape)
    x = np.asarray(a.detach().numpy())
    y = np.asarray(b.detach().numpy())
    if x.dtype.name == "bfloat16":
        x, y = x.view(np.uint16), y.view(np.uint16)  # bit-exact, NaN payloads included
    np.testing.assert_array_equal(x, y)


def assert_tree_equal(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, ember.Tensor):
        assert_tensor_equal(a, b)
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            assert_tree_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_equal(x, y)
    elif isinstance(a, float) and a != a:
        assert b != b
    else:
        assert a == b


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_round_trip_every_dtype(dtype, tmp_path):
    e, _ = make_pair((3, 4), dtype, seed=1)
    obj = {"x": e, "scalar": e[1, 2], "empty": e[:0], "view": e.transpose(0, 1)[::2]}
    path = tmp_path / "ck.safetensors"
    save(obj, path)
    back = load(path)
    assert list(back) == list(obj)
    for k in obj:
        assert_tensor_equal(back[k], obj[k].contiguous())
        assert back[k].is_contiguous()


def test_bfloat16_bits_and_torch_interop(tmp_path):
    t = torch.tensor([1.0, -2.5, 3.14159, 1e-30, float("inf"), float("nan"), 65504.0], dtype=torch.bfloat16)
    e = ember.from_numpy(t.view(torch.int16).numpy().copy().view(DTYPES["bfloat16"][0].np))
    path = tmp_path / "bf16.safetensors"
    save({"w": e}, path)
    # a plain safetensors file: torch's reader sees the same bits under the same name
    tt = safetensors.torch.load_file(str(path))["w"]
    assert tt.dtype is torch.bfloat16
    assert torch.equal(tt.view(torch.int16), t.view(torch.int16))
    back = load(path)["w"]
    assert back.dtype is ember.bfloat16
    np.testing.assert_array_equal(back.numpy().view(np.uint16), e.numpy().view(np.uint16))


def test_single_tensor_and_requires_grad(tmp_path):
    w = ember.randn(3, 2, dtype=ember.float64).requires_grad_()
    save(w, tmp_path / "w")
    back = load(tmp_path / "w")
    assert isinstance(back, ember.Tensor) and back.requires_grad and back.is_leaf
    assert_tensor_equal(back.detach(), w.detach())


def test_nested_structures(tmp_path):
    a = ember.arange(6).reshape(2, 3)
    obj = {
        "model": OrderedDict([("layer.weight", ember.randn(4, 3)), ("layer.bias", ember.zeros(4))]),
        "ints": {0: ember.ones(2), 7: [1, 2, 3], -1: None},
        "mixed_keys": {(1, "a"): "tuple key", 2.5: "float key", True: "bool key", None: "none key"},
        "seq": [a, (a, 1.5, "s"), [], (), {}],
        "numbers": [0, -3, 2 ** 70, 1.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-300],
        "flags": [True, False, None],
        "text": "üñíçødé \n \"quoted\" {json}",
        "counter": Counter({3: 2, 7: 1}),
        "dtype": ember.bfloat16, "device": ember.device("cpu"), "size": ember.Size([2, 3]),
        "np_scalars": [np.float32(0.5), np.int64(3), np.bool_(True)],
    }
    path = tmp_path / "nested.safetensors"
    save(obj, path)
    back = load(path)
    expected = dict(obj)
    expected["np_scalars"] = [0.5, 3, True]  # NumPy scalars come back as Python numbers
    assert_tree_equal(back, expected)
    assert back["dtype"] is ember.bfloat16 and back["device"] == ember.device("cpu")
    assert type(back["size"]) is ember.Size
    assert back["seq"][0] is back["seq"][1][0]  # a tensor saved twice is stored once and loads as one
    with safetensors.safe_open(str(path), "numpy") as f:
        names = set(f.keys())
    assert {"model.layer.weight", "model.layer.bias", "ints.0", "seq.0"} == names


def test_state_dict_keys_are_tensor_names(tmp_path):
    sd = {"encoder.0.weight": ember.randn(2, 2), "encoder.0.bias": ember.randn(2),
          "head.weight": ember.randn(3, 2).to(ember.bfloat16)}
    path = tmp_path / "model.safetensors"
    save(sd, path)
    tsd = safetensors.torch.load_file(str(path))
    assert set(tsd) == set(sd)
    for k in sd:
        assert torch.equal(tsd[k], to_torch(sd[k]))
    assert_tree_equal(load(path), sd)


def test_name_collisions(tmp_path):
    obj = {"a.b": ember.ones(1), "a": {"b": ember.zeros(1)}}
    save(obj, tmp_path / "c")
    assert_tree_equal(load(tmp_path / "c"), obj)


def test_plain_safetensors_file_loads_as_dict(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int16)},
                                str(path))
    back = load(path)
    assert set(back) == {"w", "b"}
    assert back["w"].dtype is ember.float32 and back["w"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["b"].dtype is ember.int16


def test_optimizer_state_round_trip(tmp_path):
    params = [ember.randn(3, dtype=ember.float64, requires_grad=True), ember.randn(2, 2, requires_grad=True)]
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], betas=(0.8, 0.9), amsgrad=True)
    for _ in range(2):
        for p in params:
            p.grad = ember.ones_like(p)
        opt.step()
    sd = opt.state_dict()
    save(sd, tmp_path / "opt")
    back = load(tmp_path / "opt")
    assert_tree_equal(back, sd)
    assert list(back["state"]) == [0, 1] and back["param_groups"][0]["betas"] == (0.8, 0.9)
    assert back["state"][0]["step"].dtype is ember.float32 and back["state"][0]["step"].item() == 2.0


def test_file_objects():
    obj = {"x": ember.randn(3), "y": [1, "two"]}
    buf = io.BytesIO()
    save(obj, buf)
    buf.seek(0)
    assert_tree_equal(load(buf), obj)
    buf.seek(0)
    raw = buf.read()
    assert_tree_equal(load(io.BytesIO(raw)), obj)
    with pytest.raises(CheckpointError, match="pickle"):
        load(io.BytesIO(pickle.dumps({"a": 1})))


def test_file_mode_follows_umask(tmp_path):
    path = tmp_path / "mode.safetensors"
    old = os.umask(0o022)
    try:
        save({"a": ember.ones(1)}, path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


# ---- atomicity ----------------------------------------------------------------------------------

def _write_old(path):
    save({"old": ember.arange(4)}, path)
    return path.read_bytes()


def _leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def test_crash_during_write_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    old_bytes = _write_old(path)

    def crashing_serialize_file(specs, filename, metadata=None):
        with open(filename, "wb") as fh:  # a partial write, then the process "dies"
            fh.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization, "serialize_file", crashing_serialize_file)
    with pytest.raises(OSError, match="No space left"):
        save({"new": ember.ones(1000)}, path)
    assert path.read_bytes() == old_bytes
    assert _leftovers(tmp_path, path.name) == []
    monkeypatch.undo()
    assert_tree_equal(load(path), {"old": ember.arange(4)})


@pytest.mark.parametrize("stage", ["fsync", "replace", "interrupt"])
def test_failure_before_rename_keeps_old_checkpoint(stage, tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    old_bytes = _write_old(path)
    if stage == "fsync":
        def boom(fd):
            raise OSError(5, "Input/output error")
        monkeypatch.setattr(os, "fsync", boom)
    elif stage == "replace":
        def boom(src, dst):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(os, "replace", boom)
    else:
        real = serialization.serialize_file

        def boom(specs, filename, metadata=None):
            real(specs, filename, metadata=metadata)
            raise KeyboardInterrupt
        monkeypatch.setattr(serialization, "serialize_file", boom)
    with pytest.raises((OSError, KeyboardInterrupt)):
        save({"new": ember.ones(10)}, path)
    assert path.read_bytes() == old_bytes
    assert _leftovers(tmp_path, path.name) == []


def test_write_is_fsynced_then_renamed(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(src, dst):
        assert os.path.dirname(os.path.abspath(src)) == str(tmp_path)  # temp file in the same directory
        events.append(("replace", os.path.basename(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save({"a": ember.ones(3)}, path)
    assert events == [("fsync", False), ("replace", path.name), ("fsync", True)]


def test_unsupported_object_names_key_path_and_type(tmp_path):
    path = tmp_path / "ck.safetensors"
    old_bytes = _write_old(path)

    class Thing:
        pass

    with pytest.raises(TypeError, match=r"Thing at obj\['model'\]\['layers'\]\[1\]"):
        save({"model": {"layers": [ember.ones(1), Thing()]}}, path)
    with pytest.raises(TypeError, match=r"type set at obj\['s'\]"):
        save({"s": {1, 2}}, path)
    with pytest.raises(TypeError, match="dict key of type Tensor"):
        save({ember.ones(1): 1}, path)
    with pytest.raises(TypeError, match="function"):
        save(lambda: 0, path)
    assert path.read_bytes() == old_bytes
    assert _leftovers(tmp_path, path.name) == []


# ---- rejecting what is not a checkpoint -----------------------------------------------------------

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file if the pickle were ever loaded


def test_pickle_files_are_rejected_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"weights": _Evil(str(marker))}))
    with pytest.raises(CheckpointError, match="pickle data.*never unpickles"):
        load(path)
    assert not marker.exists()
    torch_path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, torch_path)
    with pytest.raises(CheckpointError, match="zip archive.*torch.save"):
        load(torch_path)


def test_not_a_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(tmp_path / "missing.safetensors")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not an ember checkpoint"):
        load(text)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="only 3 bytes"):
        load(tiny)
    good = tmp_path / "good"
    save({"w": ember.ones(100)}, good)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(CheckpointError):
        load(truncated)


def test_corrupt_structure_errors(tmp_path):
    path = tmp_path / "bad"
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, str(path), metadata={
        "ember.format": "1", "ember.tree": json.dumps({"D": {"x": {"T": "missing", "dev": "cpu"}}})})
    with pytest.raises(CheckpointError, match="tensor 'missing'"):
        load(path)
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, str(path), metadata={
        "ember.format": "1", "ember.tree": "{not json"})
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load(path)
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, str(path), metadata={
        "ember.format": "1", "ember.tree": json.dumps({"__import__": "os"})})
    with pytest.raises(CheckpointError, match="unknown node tag"):
        load(path)
    safetensors.numpy.save_file({"a": np.ones(2, np.uint32)}, str(path))
    with pytest.raises(CheckpointError, match="uint32"):
        load(path)
    safetensors.numpy.save_file({"a": np.ones(2, np.float32)}, str(path), metadata={"ember.format": "99"})
    with pytest.raises(CheckpointError, match="format '99'"):
        load(path)


# ---- map_location -------------------------------------------------------------------------------------

def test_map_location_cpu_forms(tmp_path):
    obj = {"w": ember.randn(2, 3), "b": [ember.arange(3)]}
    path = tmp_path / "ck"
    save(obj, path)
    for ml in (None, "cpu", ember.device("cpu"), {"cpu": "cpu"}, {"cuda:0": "cpu"}):
        back = load(path, map_location=ml)
        assert_tree_equal(back, obj)
        assert back["w"].device == ember.device("cpu")
    seen = []

    def fn(t, location):
        seen.append(location)
        return t * 2

    back = load(path, map_location=fn)
    assert seen == ["cpu", "cpu"]
    assert_tensor_equal(back["w"], obj["w"] * 2)
    back = load(path, map_location=lambda t, loc: None)  # None: default placement
    assert_tree_equal(back, obj)
    with pytest.raises(TypeError, match="map_location"):
        load(path, map_location=3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        load(path, pickle_module=pickle)


def _has_cuda_backend():
    return ember.cuda.is_available()


def test_map_location_for_tensors_saved_on_cuda(tmp_path):
    """A checkpoint written on a GPU: map_location moves its tensors; without it they go back to cuda."""
    path = tmp_path / "gpu_ck"
    safetensors.numpy.save_file({"w": np.arange(4, dtype=np.float32)}, str(path), metadata={
        "ember.format": "1", "ember.tree": json.dumps({"D": {"w": {"T": "w", "dev": "cuda:0"}}})})
    for ml in ("cpu", {"cuda:0": "cpu"}, lambda t, loc: t if loc == "cuda:0" else None):
        back = load(path, map_location=ml)
        assert back["w"].device == ember.device("cpu") and back["w"].tolist() == [0, 1, 2, 3]
    if _has_cuda_backend():
        assert load(path)["w"].device == ember.device("cuda:0")
    else:
        with pytest.raises(RuntimeError, match="map_location='cpu'"):
            load(path)


def test_no_pickle_in_module_source():
    src = open(serialization.__file__).read()
    assert "import pickle" not in src and "pickle.load" not in src and "eval(" not in src


def test_module_state_dict_and_parameter_round_trip(tmp_path):
    import ember.nn as enn
    m = enn.Linear(3, 2)
    save(m.state_dict(), tmp_path / "model")
    sd = load(tmp_path / "model")
    assert type(sd) is OrderedDict and list(sd) == ["weight", "bias"]
    m2 = enn.Linear(3, 2)
    m2.load_state_dict(sd)
    assert_tensor_equal(m2.weight.detach(), m.weight.detach())
    assert_tensor_equal(m2.bias.detach(), m.bias.detach())
    save({"p": m.weight}, tmp_path / "param")
    p = load(tmp_path / "param")["p"]
    assert isinstance(p, enn.Parameter) and p.requires_grad
    assert_tensor_equal(p.detach(), m.weight.detach())


def test_saving_a_whole_module_or_optimizer_says_to_save_its_state_dict(tmp_path):
    m = ember.nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"cannot save the ember.nn.modules.linear.Linear itself at obj.*"
                                        r"model.state_dict\(\).*model.load_state_dict\(ember.load\(path\)\)"):
        ember.save(m, str(tmp_path / "m.safetensors"))
    opt = ember.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"at obj\['opt'\].*object.state_dict\(\)"):
        ember.save({"opt": opt}, str(tmp_path / "o.safetensors"))
    assert not (tmp_path / "m.safetensors").exists()


# ---- safe globals: objects of named classes ----------------------------------------------------------------

import dataclasses  # noqa: E402

from ember import serialization as _S  # noqa: E402


@dataclasses.dataclass
class _Cfg:
    lr: float
    layers: int
    name: str = "run"


def _net():
    ember.manual_seed(0)
    return ember.nn.Sequential(ember.nn.Linear(3, 4), ember.nn.GELU(approximate="tanh"),
                               ember.nn.Linear(4, 2, bias=False))


SAFE = [ember.nn.Sequential, ember.nn.Linear, ember.nn.GELU, _Cfg]


def test_whole_module_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(TypeError, match=r"Save `model.state_dict\(\)` instead.*add_safe_globals"):
        ember.save(_net(), tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match=r"add_safe_globals\(\[.*_Cfg\]\)"):
        ember.save({"cfg": _Cfg(0.1, 2)}, tmp_path / "c.safetensors")


def test_safe_globals_save_and_rebuild_modules_and_objects(tmp_path):
    net = _net().eval()
    path = tmp_path / "m.safetensors"
    with _S.safe_globals(SAFE):
        ember.save({"model": net, "cfg": _Cfg(0.1, 3)}, path)
        back = ember.load(path)
    model, cfg = back["model"], back["cfg"]
    assert type(model) is ember.nn.Sequential and cfg == _Cfg(0.1, 3)
    assert not model.training and model[1].approximate == "tanh" and model[2].bias is None
    assert all(isinstance(p, ember.nn.Parameter) and p.requires_grad for p in model.parameters())
    x = ember.randn(5, 3)
    np.testing.assert_array_equal(model(x).detach().numpy(), net(x).detach().numpy())
    assert list(model.state_dict()) == list(net.state_dict())
    model(x).sum().backward()           # a working module: its parameters take grads
    assert model[0].weight.grad is not None


def test_loading_an_object_needs_its_class_named_safe(tmp_path):
    path = tmp_path / "c.safetensors"
    _S.add_safe_globals([_Cfg])
    try:
        assert _Cfg in _S.get_safe_globals()
        ember.save({"cfg": _Cfg(0.5, 1)}, path)
    finally:
        _S.clear_safe_globals()
    assert _S.get_safe_globals() == []
    with pytest.raises(ember.serialization.CheckpointError,
                       match=r"object of class .*_Cfg, which is not a safe global here.*add_safe_globals\(\[_Cfg\]\)"):
        ember.load(path)
    with _S.safe_globals([_Cfg]):
        assert ember.load(path)["cfg"] == _Cfg(0.5, 1)
