"""ember.nn modules against torch.nn: Parameter, Module machinery, containers and layers."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
import torch

import ember
import ember.nn as nn
import ember.nn.functional as F
from helpers import assert_same, from_torch, make_pair, to_torch

pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched")

TOL = {"float32": (2e-5, 2e-5), "float64": (1e-10, 1e-10)}


def copy_from_torch(em, tm, strict=True):
    """Loads torch module `tm`'s state dict into ember module `em` (keys must be interchangeable)."""
    return em.load_state_dict(OrderedDict((k, from_torch(v)) for k, v in tm.state_dict().items()), strict=strict)


def compare_grads(em, tm, rtol, atol):
    tgrads = dict(tm.named_parameters())
    n = 0
    for name, p in em.named_parameters():
        tp = tgrads[name]
        assert (p.grad is None) == (tp.grad is None), name
        if tp.grad is not None:
            assert_same(p.grad, tp.grad, rtol=rtol, atol=atol)
            n += 1
    return n


def run_both(em, tm, inputs_shapes, dtype, call_e=None, call_t=None, seed=0, grad_inputs=True):
    """Same leaves into both modules; compares outputs, input grads and parameter grads."""
    rtol, atol = TOL[dtype]
    es, ts = [], []
    for i, s in enumerate(inputs_shapes):
        e, t = make_pair(s, dtype, seed=seed + i)
        if grad_inputs:
            e.requires_grad_()
            t.requires_grad_()
        es.append(e)
        ts.append(t)
    ye = (call_e or (lambda m, *a: m(*a)))(em, *es)
    yt = (call_t or (lambda m, *a: m(*a)))(tm, *ts)
    ye0 = ye[0] if isinstance(ye, tuple) else ye
    yt0 = yt[0] if isinstance(yt, tuple) else yt
    assert_same(ye0, yt0, rtol=rtol, atol=atol)
    ge, gt = make_pair(tuple(yt0.shape), dtype, seed=seed + 50)
    ye0.backward(ge)
    yt0.backward(gt)
    if grad_inputs:
        for e, t in zip(es, ts):
            if t.grad is not None:
                assert_same(e.grad, t.grad, rtol=rtol, atol=atol)
    assert compare_grads(em, tm, rtol, atol) > 0
    return ye, yt


# ---- Parameter --------------------------------------------------------------------------------

def test_parameter_shares_data_and_is_a_tensor():
    t = ember.tensor([1.0, 2.0, 3.0])
    p = nn.Parameter(t)
    assert isinstance(p, ember.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert p.data_ptr() == t.data_ptr()
    with ember.no_grad():
        p.mul_(2)
    assert t.tolist() == [2.0, 4.0, 6.0]
    assert repr(p) == "Parameter containing:\ntensor([2., 4., 6.], requires_grad=True)"
    q = nn.Parameter(ember.tensor([1.0]), requires_grad=False)
    assert repr(q) == "Parameter containing:\ntensor([1.])"
    assert repr(q) == repr(torch.nn.Parameter(torch.tensor([1.0]), requires_grad=False))


def test_parameter_detaches_graph_and_ops_give_tensors():
    x = ember.randn(3).requires_grad_()
    y = x * 2
    p = nn.Parameter(y)
    assert p.grad_fn is None and p.is_leaf
    z = p * 3 + p.sum()
    assert type(z) is ember.Tensor
    assert type(p.detach()) is ember.Tensor and type(p.data) is ember.Tensor and type(p[0]) is ember.Tensor
    z.sum().backward()
    assert_same(p.grad, torch.full((3,), 6.0))
    assert x.grad is None


def test_parameter_default_and_int_dtype():
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(ember.tensor([1, 2]))
    p = nn.Parameter(ember.tensor([1, 2]), requires_grad=False)
    assert p.dtype is ember.int64 and not p.requires_grad


def test_parameter_deepcopy_and_pickle():
    import pickle
    p = nn.Parameter(ember.randn(2, 2))
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad
    assert q.data_ptr() != p.data_ptr()
    assert np.array_equal(q.detach().numpy(), p.detach().numpy())
    r = pickle.loads(pickle.dumps(p))
    assert type(r) is nn.Parameter and np.array_equal(r.detach().numpy(), p.detach().numpy())


# ---- Module machinery -------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(3, 2, bias=False)
        self.register_buffer("running", ember.zeros(2))
        self.register_buffer("scratch", ember.ones(1), persistent=False)
        self.scale = nn.Parameter(ember.ones(1))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale + self.running


class TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 3)
        self.act = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(3, 2, bias=False)
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("scratch", torch.ones(1), persistent=False)
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale + self.running


def test_registration_and_iteration_match_torch():
    em, tm = Net(), TNet()
    assert [n for n, _ in em.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in em.named_buffers()] == [n for n, _ in tm.named_buffers()]
    assert [n for n, _ in em.named_modules()] == [n for n, _ in tm.named_modules()]
    assert [n for n, _ in em.named_children()] == [n for n, _ in tm.named_children()]
    assert list(em.state_dict()) == list(tm.state_dict())
    assert len(list(em.parameters())) == 4 and len(list(em.modules())) == 4
    assert [n for n, _ in em.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in em.named_parameters(prefix="net")][0] == "net.scale"
    assert em.fc1.weight is em._modules["fc1"]._parameters["weight"]
    assert em.running is em._buffers["running"]


def test_shared_parameters_are_deduplicated():
    em = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    em[1].weight = em[0].weight
    assert len(list(em.parameters())) == 3
    assert len(list(em.named_parameters(remove_duplicate=False))) == 4
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, shared)
    assert len(list(seq.modules())) == 2 and len(list(seq.named_modules(remove_duplicate=False))) == 3


def test_setattr_getattr_delattr_dir():
    m = nn.Module()
    m.w = nn.Parameter(ember.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("b", ember.zeros(1))
    m.plain = 3
    assert "w" in m._parameters and "sub" in m._modules and "b" in m._buffers and m.plain == 3
    assert {"w", "sub", "b", "plain", "forward"} <= set(dir(m))
    m.b = ember.ones(1)  # re-assigning a buffer name keeps it a buffer
    assert m._buffers["b"].tolist() == [1.0]
    m.w = None  # None is allowed for a registered parameter
    assert m._parameters["w"] is None and m.w is None
    with pytest.raises(TypeError, match="cannot assign 'ember.Tensor' as parameter 'w'"):
        m.w = ember.ones(2)
    with pytest.raises(TypeError, match="as child module 'sub'"):
        m.sub = 3
    with pytest.raises(TypeError, match="as buffer 'b'"):
        m.b = 3
    del m.sub, m.b, m.plain
    assert "sub" not in m._modules and "b" not in m._buffers
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'sub'"):
        m.sub


def test_buffer_marker_registers_buffers():
    m = nn.Module()
    m.a = nn.Buffer(ember.ones(2))
    m.b = nn.Buffer(ember.zeros(3), persistent=False)
    assert type(m.a) is ember.Tensor and "a" in m._buffers and "b" in m._buffers
    assert list(m.state_dict()) == ["a"]
    tm = torch.nn.Module()
    tm.a = torch.nn.Buffer(torch.ones(2))
    tm.b = torch.nn.Buffer(torch.zeros(3), persistent=False)
    assert list(tm.state_dict()) == ["a"]


def test_registration_errors():
    m = nn.Module()
    m.x = 1
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("x", ember.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", nn.Parameter(ember.zeros(1)))
    with pytest.raises(TypeError, match="ember.nn.Parameter or None required"):
        m.register_parameter("p", ember.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("k", 3)
    with pytest.raises(TypeError, match="buffer"):
        m.register_buffer("q", [1.0])


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test compares type and message with torch's
        return type(e), str(e).replace("torch.", "ember.").replace("ember.nn.Parameter", "nn.Parameter")
    raise AssertionError("no error raised")


@pytest.mark.parametrize("call", [
    lambda lib, m: m.register_buffer("x", None), lambda lib, m: m.register_buffer("a.b", None),
    lambda lib, m: m.register_buffer("", None), lambda lib, m: m.register_buffer(3, None),
    lambda lib, m: m.register_parameter("x", None), lambda lib, m: m.register_parameter("a.b", None),
    lambda lib, m: m.register_parameter("", None), lambda lib, m: m.register_parameter(3, None),
    lambda lib, m: lib.nn.Module.register_buffer(object.__new__(lib.nn.Module), "b", None),
    lambda lib, m: lib.nn.Module.register_parameter(object.__new__(lib.nn.Module), "p", None),
    lambda lib, m: m.get_parameter("lin.nothing"), lambda lib, m: m.get_parameter("lin.x"),
    lambda lib, m: m.get_parameter("buf"), lambda lib, m: m.get_buffer("lin.weight"),
    lambda lib, m: m.get_buffer("none.buf"), lambda lib, m: m.to(copy=False),
    lambda lib, m: m.to(lib.float64, copy=True),
])
def test_registration_and_lookup_errors_match_torch(call):
    def build(lib):
        m = lib.nn.Module()
        m.x = 1
        m.lin = lib.nn.Linear(2, 2)
        m.lin.x = 2
        m.register_buffer("buf", lib.zeros(1))
        return m
    assert _error(lambda: call(ember, build(ember))) == _error(lambda: call(torch, build(torch)))


def test_registering_a_member_drops_other_kinds_of_the_same_name():
    m = nn.Module()
    m.register_buffer("a", ember.zeros(1), persistent=False)
    m.a = nn.Parameter(ember.ones(1))
    assert "a" in m._parameters and "a" not in m._buffers and "a" not in m._non_persistent_buffers_set
    m.register_buffer("c", ember.zeros(1), persistent=False)
    m.c = nn.Linear(1, 1)
    assert "c" in m._modules and "c" not in m._buffers and "c" not in m._non_persistent_buffers_set
    m.__dict__["b"] = 3
    m.b = nn.Buffer(ember.zeros(2))
    assert "b" not in m.__dict__ and m.b.shape == (2,)
    m.b = nn.Parameter(ember.ones(1))
    assert "b" in m._parameters and "b" not in m._buffers
    with pytest.raises(ValueError, match="non-leaf"):
        m.register_parameter("r", _nonleaf_param())

    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(1, 1)
    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def _nonleaf_param():
    p = nn.Parameter(ember.zeros(1))
    p._grad_fn = (ember.zeros(1, requires_grad=True) * 2).grad_fn  # simulate a non-leaf
    return p


def test_state_dict_contents_and_keep_vars():
    em = Net()
    sd = em.state_dict()
    assert list(sd) == ["scale", "running", "fc1.weight", "fc1.bias", "fc2.weight"]
    assert type(sd["scale"]) is ember.Tensor and not sd["scale"].requires_grad
    assert sd["fc1.weight"].data_ptr() == em.fc1.weight.data_ptr()  # detached views, no copies
    sdv = em.state_dict(keep_vars=True)
    assert sdv["scale"] is em.scale
    assert list(em.state_dict(prefix="model.")) == ["model." + k for k in sd]


def test_load_state_dict_roundtrip_and_torch_checkpoint():
    tm = TNet()
    with torch.no_grad():
        tm.running.copy_(torch.tensor([0.5, -1.0]))
    em = Net()
    res = copy_from_torch(em, tm)
    assert res.missing_keys == [] and res.unexpected_keys == []
    x_e, x_t = make_pair((5, 4), "float32")
    assert_same(em(x_e), tm(x_t), rtol=1e-6, atol=1e-6)
    em2 = Net()
    em2.load_state_dict(em.state_dict())
    assert_same(em2(x_e), tm(x_t), rtol=1e-6, atol=1e-6)
    # the parameters are the same objects afterwards (copied into)
    w = em2.fc1.weight
    em2.load_state_dict(em.state_dict())
    assert em2.fc1.weight is w


def test_load_state_dict_accepts_arrays():
    em = nn.Linear(2, 3)
    tm = torch.nn.Linear(2, 3)
    em.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    assert_same(em.weight.detach(), tm.weight.detach())


def test_load_state_dict_errors_list_missing_unexpected_and_shapes():
    em = Net()
    sd = dict(em.state_dict())
    del sd["fc2.weight"]
    sd["extra.weight"] = ember.zeros(1)
    sd["fc1.bias"] = ember.zeros(5)
    with pytest.raises(RuntimeError) as ei:
        em.load_state_dict(sd)
    msg = str(ei.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:\n\t")
    lines = msg.split("\n\t")
    assert lines[1] == 'Missing key(s) in state_dict: "fc2.weight". '
    assert lines[2] == 'Unexpected key(s) in state_dict: "extra.weight". '
    assert lines[3] == ("size mismatch for fc1.bias: copying a param with shape ember.Size([5]) from checkpoint, "
                        "the shape in current model is ember.Size([3]).")
    # the same text as torch (modulo the module's name for Size)
    tm = TNet()
    tsd = dict(tm.state_dict())
    del tsd["fc2.weight"]
    tsd["extra.weight"] = torch.zeros(1)
    tsd["fc1.bias"] = torch.zeros(5)
    with pytest.raises(RuntimeError) as ti:
        tm.load_state_dict(tsd)
    assert str(ti.value).replace("TNet", "Net").replace("torch.", "ember.") == msg
    # strict=False: no error for missing/unexpected, still for shapes
    del sd["fc1.bias"]
    del tsd["fc1.bias"]
    res = em.load_state_dict(sd, strict=False)
    tres = tm.load_state_dict(tsd, strict=False)
    assert res.missing_keys == tres.missing_keys == ["fc1.bias", "fc2.weight"]
    assert res.unexpected_keys == tres.unexpected_keys == ["extra.weight"]
    sd["fc1.bias"] = ember.zeros(5)
    with pytest.raises(RuntimeError, match="size mismatch"):
        em.load_state_dict(sd, strict=False)
    with pytest.raises(TypeError, match="dict-like"):
        em.load_state_dict([1, 2])


def test_load_state_dict_strict_returns_keys_namedtuple():
    em = nn.Linear(2, 2)
    res = em.load_state_dict(em.state_dict())
    assert repr(res) == "<All keys matched successfully>"
    res = em.load_state_dict({"weight": ember.zeros(2, 2), "foo": ember.zeros(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["foo"]
    assert em.weight.sum().item() == 0.0


def test_load_state_dict_assign():
    em = nn.Linear(2, 2)
    new_w = ember.ones(2, 2)
    em.load_state_dict({"weight": new_w, "bias": ember.zeros(2)}, assign=True)
    assert isinstance(em.weight, nn.Parameter) and em.weight.data_ptr() == new_w.data_ptr()


def test_forward_pre_hook_and_forward_hook():
    em = nn.Linear(3, 2)
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return (args[0] * 0,)

    def post(mod, args, out):
        calls.append("post")
        return out + 1

    h1 = em.register_forward_pre_hook(pre)
    h2 = em.register_forward_hook(post)
    x = ember.randn(4, 3)
    y = em(x)
    assert calls == ["pre", "post"]
    expected = em.bias.detach() + 1
    np.testing.assert_allclose(y.detach().numpy(), np.broadcast_to(expected.numpy(), (4, 2)), rtol=1e-6)
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(em(x).detach().numpy(), F.linear(x, em.weight, em.bias).detach().numpy())
    # a pre-hook returning a non-tuple, prepend order, hooks with kwargs, context-manager handle
    order = []
    em.register_forward_hook(lambda m, a, o: order.append("b"))
    em.register_forward_hook(lambda m, a, o: order.append("a"), prepend=True)
    with em.register_forward_pre_hook(lambda m, a, kw: ((a[0] * 2,), kw), with_kwargs=True):
        em(x)
    assert order == ["a", "b"]
    with em.register_forward_pre_hook(lambda m, a: a[0] * 0):
        assert np.allclose(em(x).detach().numpy(), em.bias.detach().numpy())
    assert len(em._forward_pre_hooks) == 0


def test_forward_hook_always_call_on_error():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    m = Boom()
    seen = []
    m.register_forward_hook(lambda mod, a, o: seen.append(o), always_call=True)
    with pytest.raises(ValueError, match="boom"):
        m(1)
    assert seen == [None]


def test_train_eval_and_dropout():
    em = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert em.training and em[1].training
    em.eval()
    assert not em.training and not em[1].training
    x = ember.randn(8, 4)
    np.testing.assert_array_equal(em(x).detach().numpy(), em[0](x).detach().numpy())
    em.train()
    ember.manual_seed(0)
    y = em(ember.ones(200, 4)).detach().numpy()
    ref = em[0](ember.ones(200, 4)).detach().numpy()
    zero = y == 0
    assert 0.4 < zero.mean() < 0.6
    np.testing.assert_allclose(y[~zero], 2 * ref[~zero], rtol=1e-6)
    with pytest.raises(ValueError, match="boolean"):
        em.train("yes")


def test_zero_grad_requires_grad_apply():
    em = Net()
    em(ember.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in em.parameters())
    em.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0.0 for p in em.parameters())
    em.zero_grad()
    assert all(p.grad is None for p in em.parameters())
    em.requires_grad_(False)
    assert not any(p.requires_grad for p in em.parameters())
    seen = []
    em.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Net"]


def test_to_dtype_keeps_parameter_identity_and_integer_buffers():
    em = Net()
    em.register_buffer("steps", ember.tensor([3]))
    w = em.fc1.weight
    em.fc1(ember.randn(1, 4)).sum().backward()
    r = em.to(ember.float64)
    assert r is em
    assert em.fc1.weight is w and w.dtype is ember.float64 and isinstance(w, nn.Parameter)
    assert w.grad.dtype is ember.float64
    assert em.running.dtype is ember.float64 and em.steps.dtype is ember.int64
    em.float()
    assert w.dtype is ember.float32
    em.half()
    assert em.fc2.weight.dtype is ember.float16
    em.bfloat16()
    assert em.scale.dtype is ember.bfloat16
    em.double()
    assert em.scale.dtype is ember.float64
    em.to("cpu")
    em.cpu()
    em.to(ember.zeros(1, dtype=ember.float32))
    assert em.fc1.bias.dtype is ember.float32
    with pytest.raises(TypeError, match="floating point"):
        em.to(ember.int32)
    y = em(ember.randn(2, 4))
    assert y.dtype is ember.float32


def test_module_repr_matches_torch():
    em, tm = Net(), TNet()
    assert repr(em) == repr(tm).replace("TNet", "Net")
    em = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                       nn.Linear(8, 4), nn.Embedding(10, 3, padding_idx=0), nn.GELU("tanh"), nn.Softmax(dim=-1),
                       nn.Dropout(0.2), nn.LayerNorm(8, bias=False), nn.RMSNorm([2, 3]), nn.SiLU(), nn.Tanh(),
                       nn.Identity(), nn.ModuleDict({"a": nn.ReLU()}), nn.CrossEntropyLoss(), nn.MSELoss(),
                       nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU()]),
                       nn.MultiheadAttention(8, 2), nn.TransformerEncoderLayer(8, 2, 16))
    T = torch.nn
    tm = T.Sequential(T.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), T.ReLU(), T.Flatten(), T.Linear(8, 4),
                      T.Embedding(10, 3, padding_idx=0), T.GELU("tanh"), T.Softmax(dim=-1), T.Dropout(0.2),
                      T.LayerNorm(8, bias=False), T.RMSNorm([2, 3]), T.SiLU(), T.Tanh(), T.Identity(),
                      T.ModuleDict({"a": T.ReLU()}), T.CrossEntropyLoss(), T.MSELoss(),
                      T.ModuleList([T.Linear(2, 2) for _ in range(3)] + [T.ReLU()]), T.MultiheadAttention(8, 2),
                      T.TransformerEncoderLayer(8, 2, 16))
    assert repr(em) == repr(tm)


@pytest.mark.parametrize("spec", [
    "LeakyReLU(0.2, inplace=True)", "Softplus(beta=2.0)", "ELU(alpha=0.5)", "Hardtanh(-2.0, 2.0)", "ReLU6()",
    "Mish()", "Sigmoid()", "LogSoftmax(dim=1)", "Bilinear(3, 4, 5)", "Conv1d(4, 6, 3, stride=2, padding=1, groups=2)",
    "Conv2d(4, 8, (3, 5), stride=(2, 1), dilation=2, padding=1, padding_mode='reflect')",
    "Conv2d(4, 8, 3, padding='same')", "GroupNorm(2, 4)", "NLLLoss()", "BCEWithLogitsLoss()",
    "Unflatten(1, (2, 3))", "Embedding(10, 4, max_norm=1.0)", "ReLU(inplace=True)", "Softmax()",
    "MultiheadAttention(8, 2, kdim=4, vdim=6)", "ModuleList()", "Sequential()", "Identity(3, foo=4)",
    "RMSNorm(4, eps=1e-6)", "LayerNorm([2, 3], elementwise_affine=False)",
])
def test_layer_repr_matches_torch(spec):
    assert repr(eval("nn." + spec)) == repr(eval("torch.nn." + spec))


def test_parameter_list_repr_and_registration():
    em = nn.ParameterList([nn.Parameter(ember.zeros(2, 3)), ember.zeros(4)])
    tm = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2, 3)), torch.zeros(4)])
    assert repr(em) == repr(tm).replace("torch.", "ember.")
    assert [n for n, _ in em.named_parameters()] == ["0", "1"]
    assert isinstance(em[1], nn.Parameter) and len(em) == 2
    em.append(ember.ones(1))
    assert len(list(em.parameters())) == 3


def test_deepcopy_module_keeps_structure_and_sharing():
    em = Net()
    em.fc2.weight = nn.Parameter(em.fc2.weight.detach().clone())
    em.tied = em.fc1  # the same child twice
    cp = copy.deepcopy(em)
    assert cp.tied is cp.fc1 and cp.fc1 is not em.fc1
    assert isinstance(cp.fc1.weight, nn.Parameter)
    x = ember.randn(2, 4)
    np.testing.assert_array_equal(cp(x).detach().numpy(), em(x).detach().numpy())
    with ember.no_grad():
        cp.fc1.weight.fill_(0)
    assert float(em.fc1.weight.abs().sum()) > 0


# ---- containers -------------------------------------------------------------------------------

def test_sequential_indexing_slicing_append():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    s = nn.Sequential(*layers)
    assert len(s) == 3 and s[0] is layers[0] and s[-1] is layers[2]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is layers[1]
    assert list(sub._modules) == ["1", "2"]  # PyTorch keeps the names when slicing
    s.append(nn.Tanh())
    assert len(s) == 4 and isinstance(s[3], nn.Tanh)
    x = ember.randn(5, 2)
    ref = layers[2](layers[1](layers[0](x))).tanh()
    np.testing.assert_allclose(s(x).detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    del s[1]
    assert list(s._modules) == ["0", "1", "2"]
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    with pytest.raises(IndexError):
        s[10]
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert [n for n, _ in named.named_children()] == ["enc", "act"]
    assert named.enc is named[0]


def test_modulelist_and_moduledict():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Tanh())
    ml.extend([nn.Identity()])
    ml.insert(0, nn.Sigmoid())
    assert [type(m).__name__ for m in ml] == ["Sigmoid", "Linear", "ReLU", "Tanh", "Identity"]
    assert len(ml[1:3]) == 2 and isinstance(ml[-1], nn.Identity)
    assert len(list(ml.parameters())) == 2
    md = nn.ModuleDict({"a": nn.Linear(1, 1)})
    md["b"] = nn.ReLU()
    md.update([("c", nn.Tanh())])
    assert list(md.keys()) == ["a", "b", "c"] and "b" in md and len(md) == 3
    assert md.pop("b").__class__ is nn.ReLU and list(md) == ["a", "c"]
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]


def test_identity():
    x = ember.randn(3)
    assert nn.Identity(54, unused="x")(x) is x


# ---- layers: initialisation statistics ------------------------------------------------------

def test_linear_init_distribution():
    ember.manual_seed(0)
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = m.weight.detach().numpy()
    assert w.shape == (300, 400) and np.abs(w).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    b = m.bias.detach().numpy()
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.8 * bound
    assert m.weight.requires_grad and m.weight.grad_fn is None


def test_embedding_layernorm_rmsnorm_conv_init():
    ember.manual_seed(0)
    e = nn.Embedding(500, 64, padding_idx=3)
    w = e.weight.detach().numpy()
    assert np.all(w[3] == 0)
    assert abs(w.std() - 1.0) < 0.02 and abs(w.mean()) < 0.02
    ln = nn.LayerNorm((4, 5))
    assert ln.weight.shape == (4, 5) and float(ln.weight.sum()) == 20 and float(ln.bias.abs().sum()) == 0
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    assert nn.LayerNorm(4, bias=False).bias is None
    rms = nn.RMSNorm(6)
    assert float(rms.weight.sum()) == 6 and rms.eps is None
    conv = nn.Conv2d(8, 16, 3, groups=2)
    fan_in = 4 * 9
    bound = 1 / math.sqrt(fan_in)
    cw = conv.weight.detach().numpy()
    assert cw.shape == (16, 4, 3, 3) and np.abs(cw).max() <= bound
    assert np.abs(conv.bias.detach().numpy()).max() <= bound


def test_mha_init():
    ember.manual_seed(0)
    m = nn.MultiheadAttention(32, 4)
    a = math.sqrt(6.0 / (32 + 96))
    w = m.in_proj_weight.detach().numpy()
    assert w.shape == (96, 32) and np.abs(w).max() <= a and np.abs(w).max() > 0.9 * a
    assert float(m.in_proj_bias.abs().sum()) == 0 and float(m.out_proj.bias.abs().sum()) == 0
    assert m.out_proj.weight.shape == (32, 32)


def test_factory_kwargs_dtype():
    m = nn.Linear(3, 2, dtype=ember.float64)
    assert m.weight.dtype is ember.float64 and m.bias.dtype is ember.float64
    assert nn.MultiheadAttention(4, 2, dtype=ember.float64).in_proj_weight.dtype is ember.float64


# ---- layers against torch with copied weights ------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_matches_torch(dtype):
    tm = torch.nn.Linear(5, 3).to(getattr(torch, dtype))
    em = nn.Linear(5, 3, dtype=getattr(ember, dtype))
    copy_from_torch(em, tm)
    run_both(em, tm, [(2, 4, 5)], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_matches_torch(dtype):
    tm = torch.nn.Embedding(7, 4, padding_idx=1).to(getattr(torch, dtype))
    em = nn.Embedding(7, 4, padding_idx=1, dtype=getattr(ember, dtype))
    copy_from_torch(em, tm)
    idx = torch.tensor([[1, 2, 6], [0, 1, 2]])
    run_both(em, tm, [], dtype, call_e=lambda m: m(from_torch(idx)), call_t=lambda m: m(idx))
    assert float(em.weight.grad[1].abs().sum()) == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["layernorm", "layernorm_nobias", "rmsnorm", "groupnorm"])
def test_norm_layers_match_torch(dtype, kind):
    d = getattr(torch, dtype)
    if kind == "layernorm":
        tm, em, shape = torch.nn.LayerNorm(6, eps=1e-4), nn.LayerNorm(6, eps=1e-4), (3, 2, 6)
    elif kind == "layernorm_nobias":
        tm, em, shape = torch.nn.LayerNorm((2, 6), bias=False), nn.LayerNorm((2, 6), bias=False), (3, 2, 6)
    elif kind == "rmsnorm":
        tm, em, shape = torch.nn.RMSNorm(6), nn.RMSNorm(6), (3, 2, 6)
    else:
        tm, em, shape = torch.nn.GroupNorm(2, 4), nn.GroupNorm(2, 4), (2, 4, 3)
    tm = tm.to(d)
    with torch.no_grad():
        for p in tm.parameters():
            p.uniform_(0.5, 1.5)
    em.to(getattr(ember, dtype))
    copy_from_torch(em, tm)
    run_both(em, tm, [shape], dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(groups=2, dilation=2, padding="same"),
                                dict(stride=4, kernel_size=4), dict(padding=2, padding_mode="reflect"),
                                dict(padding=1, padding_mode="circular", bias=False)])
def test_conv2d_matches_torch(dtype, kw):
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    tm = torch.nn.Conv2d(4, 6, k, **kw).to(getattr(torch, dtype))
    em = nn.Conv2d(4, 6, k, dtype=getattr(ember, dtype), **kw)
    copy_from_torch(em, tm)
    run_both(em, tm, [(2, 4, 8, 8)], dtype)


def test_conv1d_matches_torch():
    tm = torch.nn.Conv1d(3, 4, 3, padding=1, stride=2).double()
    em = nn.Conv1d(3, 4, 3, padding=1, stride=2, dtype=ember.float64)
    copy_from_torch(em, tm)
    run_both(em, tm, [(2, 3, 10)], "float64")


def test_bilinear_matches_torch():
    tm = torch.nn.Bilinear(3, 4, 2).double()
    em = nn.Bilinear(3, 4, 2, dtype=ember.float64)
    copy_from_torch(em, tm)
    run_both(em, tm, [(5, 3), (5, 4)], "float64")


def test_activation_modules_match_torch():
    pairs = [(nn.ReLU(), torch.nn.ReLU()), (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
             (nn.SiLU(), torch.nn.SiLU()), (nn.Tanh(), torch.nn.Tanh()), (nn.Softmax(dim=1), torch.nn.Softmax(dim=1)),
             (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)), (nn.Sigmoid(), torch.nn.Sigmoid()),
             (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1)), (nn.Flatten(), torch.nn.Flatten()),
             (nn.Mish(), torch.nn.Mish())]
    for em, tm in pairs:
        e, t = make_pair((2, 3, 4), "float64")
        e.requires_grad_()
        t.requires_grad_()
        ye, yt = em(e), tm(t)
        assert_same(ye, yt)
        g = torch.randn(yt.shape, dtype=torch.float64)
        ye.backward(from_torch(g))
        yt.backward(g)
        assert_same(e.grad, t.grad)


@pytest.mark.parametrize("name", ["ReLU", "SiLU", "Mish"])
def test_inplace_activation_modules_match_torch(name):
    em, tm = getattr(nn, name)(inplace=True), getattr(torch.nn, name)(inplace=True)
    e, t = make_pair((3, 4), "float64")
    assert em(e) is e and tm(t) is t
    assert_same(e, t)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_losses_match_torch(dtype):
    x_e, x_t = make_pair((6, 4), dtype)
    tgt = torch.tensor([0, 3, 1, -100, 2, 2])
    w = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=getattr(torch, dtype))
    cases = [(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
             (nn.CrossEntropyLoss(weight=from_torch(w), label_smoothing=0.1),
              torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)),
             (nn.CrossEntropyLoss(reduction="sum"), torch.nn.CrossEntropyLoss(reduction="sum"))]
    for em, tm in cases:
        e = x_e.detach().requires_grad_()
        t = x_t.detach().requires_grad_()
        ye, yt = em(e, from_torch(tgt)), tm(t, tgt)
        assert_same(ye, yt, *TOL[dtype])
        ye.backward()
        yt.backward()
        assert_same(e.grad, t.grad, *TOL[dtype])
    assert [n for n, _ in cases[1][0].named_buffers()] == [n for n, _ in cases[1][1].named_buffers()] == ["weight"]
    y_e, y_t = make_pair((6, 4), dtype, seed=3)
    e = x_e.detach().requires_grad_()
    t = x_t.detach().requires_grad_()
    ye, yt = nn.MSELoss()(e, y_e), torch.nn.MSELoss()(t, y_t)
    assert_same(ye, yt, *TOL[dtype])
    ye.backward()
    yt.backward()
    assert_same(e.grad, t.grad, *TOL[dtype])
    assert_same(nn.MSELoss(reduction="none")(x_e, y_e), torch.nn.MSELoss(reduction="none")(x_t, y_t))


# ---- attention and transformer ------------------------------------------------------------------

def _mha_pair(dtype, **kw):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, **kw).to(getattr(torch, dtype))
    if tm.in_proj_bias is not None:
        with torch.no_grad():
            tm.in_proj_bias.uniform_(-0.5, 0.5)
            tm.out_proj.bias.uniform_(-0.5, 0.5)
    em = nn.MultiheadAttention(8, 2, dtype=getattr(ember, dtype), **kw)
    copy_from_torch(em, tm)
    return em, tm


def test_mha_state_dict_keys_match_torch():
    for kw in [dict(), dict(bias=False), dict(kdim=4, vdim=6), dict(add_bias_kv=True)]:
        em, tm = nn.MultiheadAttention(8, 2, **kw), torch.nn.MultiheadAttention(8, 2, **kw)
        assert list(em.state_dict()) == list(tm.state_dict())
        assert [(n, tuple(p.shape)) for n, p in em.named_parameters()] == \
            [(n, tuple(p.shape)) for n, p in tm.named_parameters()]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights,average", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("masks", ["none", "kpm", "attn_bool", "attn_float", "both"])
def test_mha_self_attention_matches_torch(dtype, batch_first, need_weights, average, masks):
    em, tm = _mha_pair(dtype, batch_first=batch_first)
    B, L = 3, 5
    shape = (B, L, 8) if batch_first else (L, B, 8)
    kpm = torch.zeros(B, L, dtype=torch.bool)
    kpm[1, 3:] = True
    kpm[2, 0] = True
    am_bool = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    am_float = torch.randn(L, L, dtype=getattr(torch, dtype), generator=torch.Generator().manual_seed(3))
    kw_t = {}
    if masks in ("kpm", "both"):
        kw_t["key_padding_mask"] = kpm
    if masks == "attn_bool":
        kw_t["attn_mask"] = am_bool
    if masks in ("attn_float", "both"):
        kw_t["attn_mask"] = am_float
    kw_e = {k: from_torch(v) for k, v in kw_t.items()}
    ye, yt = run_both(em, tm, [shape], dtype,
                      call_e=lambda m, x: m(x, x, x, need_weights=need_weights, average_attn_weights=average, **kw_e),
                      call_t=lambda m, x: m(x, x, x, need_weights=need_weights, average_attn_weights=average, **kw_t))
    if need_weights:
        assert_same(ye[1], yt[1], *TOL[dtype])
    else:
        assert ye[1] is None and yt[1] is None


@pytest.mark.parametrize("kw", [dict(kdim=4, vdim=6), dict(bias=False), dict(add_bias_kv=True, add_zero_attn=True)])
def test_mha_cross_attention_variants_match_torch(kw):
    em, tm = _mha_pair("float64", **kw)
    kd, vd = kw.get("kdim", 8), kw.get("vdim", 8)
    run_both(em, tm, [(4, 2, 8), (6, 2, kd), (6, 2, vd)], "float64",
             call_e=lambda m, q, k, v: m(q, k, v), call_t=lambda m, q, k, v: m(q, k, v))


def test_mha_key_is_value_and_unbatched():
    em, tm = _mha_pair("float64")
    q_e, q_t = make_pair((4, 8), "float64", seed=1)
    kv_e, kv_t = make_pair((6, 8), "float64", seed=2)
    ye, yt = em(q_e, kv_e, kv_e), tm(q_t, kv_t, kv_t)
    assert_same(ye[0], yt[0])
    assert_same(ye[1], yt[1])


def test_mha_is_causal_hint():
    em, tm = _mha_pair("float64")
    x_e, x_t = make_pair((5, 2, 8), "float64")
    m = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    ye = em(x_e, x_e, x_e, attn_mask=from_torch(m), is_causal=True, need_weights=False)
    yt = tm(x_t, x_t, x_t, attn_mask=m, is_causal=True, need_weights=False)
    assert_same(ye[0], yt[0])


def test_mha_dropout_only_in_training():
    em = nn.MultiheadAttention(8, 2, dropout=0.5)
    x = ember.randn(4, 2, 8)
    ember.manual_seed(0)
    a = em(x, x, x)[1]
    ember.manual_seed(1)
    b = em(x, x, x)[1]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())
    em.eval()
    a = em(x, x, x)[1]
    b = em(x, x, x)[1]
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_allclose(a.detach().numpy().sum(-1), 1.0, rtol=1e-5)


def _encoder_layer_pair(dtype, **kw):
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoderLayer(8, 2, 16, **kw).to(getattr(torch, dtype))
    with torch.no_grad():
        for n, p in tm.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.uniform_(0.5, 1.5) if n.endswith("weight") else p.uniform_(-0.3, 0.3)
    em = nn.TransformerEncoderLayer(8, 2, 16, dtype=getattr(ember, dtype), **kw)
    copy_from_torch(em, tm)
    return em, tm


def test_transformer_encoder_layer_state_dict_keys_match_torch():
    for kw in [dict(), dict(norm_first=True, activation="gelu"), dict(bias=False)]:
        em, tm = nn.TransformerEncoderLayer(8, 2, 16, **kw), torch.nn.TransformerEncoderLayer(8, 2, 16, **kw)
        assert list(em.state_dict()) == list(tm.state_dict())
        assert [n for n, _ in em.named_modules()] == [n for n, _ in tm.named_modules()]
        assert {k: tuple(v.shape) for k, v in em.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in tm.state_dict().items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True), dict(activation="gelu", batch_first=True),
                                dict(norm_first=True, activation="gelu", layer_norm_eps=1e-6, batch_first=True)])
def test_transformer_encoder_layer_matches_torch(dtype, kw):
    em, tm = _encoder_layer_pair(dtype, dropout=0.0, **kw)
    shape = (2, 5, 8) if kw.get("batch_first") else (5, 2, 8)
    run_both(em, tm, [shape], dtype)


def test_transformer_encoder_layer_masks_match_torch():
    em, tm = _encoder_layer_pair("float64", dropout=0.0, batch_first=True)
    kpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    run_both(em, tm, [(2, 5, 8)], "float64",
             call_e=lambda m, x: m(x, src_mask=from_torch(causal), src_key_padding_mask=from_torch(kpm)),
             call_t=lambda m, x: m(x, src_mask=causal, src_key_padding_mask=kpm))


def test_transformer_encoder_layer_eval_with_torch_state_dict_and_dropout():
    em, tm = _encoder_layer_pair("float32", dropout=0.3)
    em.eval()
    tm.eval()
    x_e, x_t = make_pair((5, 2, 8), "float32")
    with torch.no_grad():
        yt = tm(x_t)
    with ember.no_grad():
        ye = em(x_e)
    assert_same(ye, yt, *TOL["float32"])
    em.train()
    ember.manual_seed(0)
    a = em(x_e)
    ember.manual_seed(1)
    b = em(x_e)
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())


def test_transformer_encoder_matches_torch():
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).double()
    tm = torch.nn.TransformerEncoder(tl, 2, norm=torch.nn.LayerNorm(8).double(), enable_nested_tensor=False)
    el = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, dtype=ember.float64)
    em = nn.TransformerEncoder(el, 2, norm=nn.LayerNorm(8, dtype=ember.float64))
    assert list(em.state_dict()) == list(tm.state_dict())
    copy_from_torch(em, tm)
    assert em.layers[0] is not em.layers[1] and em.layers[0].linear1.weight is not em.layers[1].linear1.weight
    run_both(em, tm, [(2, 4, 8)], "float64")
    assert repr(em).replace("ember", "torch") == repr(tm)


def test_tiny_training_step_matches_torch():
    """A few SGD steps of a small classifier give the same weights in ember and torch."""
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                             torch.nn.Linear(8, 3)).double()
    em = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 3)).double()
    copy_from_torch(em, tm)
    x_e, x_t = make_pair((10, 6), "float64")
    y = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1, 0, 0])
    for _ in range(3):
        le = F.cross_entropy(em(x_e), from_torch(y))
        lt = torch.nn.functional.cross_entropy(tm(x_t), y)
        assert_same(le, lt)
        em.zero_grad()
        tm.zero_grad()
        le.backward()
        lt.backward()
        with ember.no_grad():
            for p in em.parameters():
                p.sub_(p.grad * 0.5)
        with torch.no_grad():
            for p in tm.parameters():
                p.sub_(p.grad * 0.5)
    for (n, p), (_, tp) in zip(em.named_parameters(), tm.named_parameters()):
        assert_same(p.detach(), tp.detach())
    assert to_torch(em[0].weight.detach()).shape == (8, 6)


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.LayerNorm(4), lambda lib: lib.nn.LayerNorm(4, elementwise_affine=False),
    lambda lib: lib.nn.LayerNorm((2, 3), bias=False), lambda lib: lib.nn.GroupNorm(2, 4),
    lambda lib: lib.nn.GroupNorm(2, 4, affine=False), lambda lib: lib.nn.GroupNorm(2, 4, bias=False),
])
def test_norm_affine_parameters_match_torch(make):
    em, tm = make(ember), make(torch)
    assert repr(em) == repr(tm)
    assert [(k, v is None) for k, v in em._parameters.items()] == [(k, v is None) for k, v in tm._parameters.items()]
    for (k, v), (tk, tv) in zip(em.named_parameters(), tm.named_parameters()):
        assert k == tk and v.shape == tuple(tv.shape)
        np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())


@pytest.mark.parametrize("n,padding_idx", [(4, 3), (4, 4), (4, -4), (4, -5), (4, 0), (0, 0), (4, None)])
def test_embedding_padding_idx_matches_torch(n, padding_idx):
    def build(lib):
        try:
            return lib.nn.Embedding(n, 2, padding_idx=padding_idx).padding_idx
        except (AssertionError, IndexError) as e:
            return type(e), str(e)
    assert build(ember) == build(torch)
    if n:
        w = ember.randn(n, 2)
        tw = to_torch(w)
        try:
            expect = _torch_embedding_grad(tw, padding_idx)
        except AssertionError as e:
            with pytest.raises(AssertionError, match=str(e)):
                F.embedding(ember.tensor([0]), w, padding_idx=padding_idx)
            return
        w.requires_grad_()
        F.embedding(ember.arange(n), w, padding_idx=padding_idx).sum().backward()
        np.testing.assert_array_equal(w.grad.numpy(), expect)


def _torch_embedding_grad(tw, padding_idx):
    tw = tw.clone().requires_grad_()
    torch.nn.functional.embedding(torch.arange(tw.shape[0]), tw, padding_idx=padding_idx).sum().backward()
    return tw.grad.numpy()


@pytest.mark.parametrize("spec", ["Linear(3, 2)", "Linear(3, 2, bias=False)", "Bilinear(2, 3, 4, bias=False)",
                                  "Conv1d(2, 4, 3)", "Conv2d(4, 6, 3, groups=2, bias=False)"])
def test_weight_and_bias_parameters_match_torch(spec):
    em, tm = eval("nn." + spec), eval("torch.nn." + spec)
    assert [(k, None if v is None else tuple(v.shape)) for k, v in em._parameters.items()] == \
        [(k, None if v is None else tuple(v.shape)) for k, v in tm._parameters.items()]
    assert list(em.state_dict()) == list(tm.state_dict())


def test_layer_with_no_inputs_gets_a_zero_bias():
    # fan_in 0: torch's Linear zeros the bias (its Conv leaves it uninitialised; ember's Conv zeros it too)
    with pytest.warns(UserWarning, match="zero-element"):
        em, tm, conv = nn.Linear(0, 3), torch.nn.Linear(0, 3), nn.Conv1d(0, 3, 2)
    assert np.array_equal(em.bias.detach().numpy(), tm.bias.detach().numpy())
    assert np.array_equal(conv.bias.detach().numpy(), np.zeros(3, np.float32))
