"""Samples of the random ops (src/ember/ops/random.py): rand, randn, randint, randperm, the in-place
fills normal_, uniform_, random_, exponential_, bernoulli_, and bernoulli, multinomial,
native_dropout, native_dropout_backward.

ember's streams never match torch's (NumPy's PCG64 on the CPU, Philox on CUDA), even for one seed,
so random results are compared by shape and dtype only (`values=False`); a sample passing a seeded
`ember.Generator` checks that the generator argument goes through. native_dropout_backward is
deterministic, and so are the float64 samples of native_dropout (eval, or p = 0), which gradcheck.
"""
import torch
from helpers import make_pair

import ember

from ._core import ErrorSample, OpInfo, Sample, register

NO_GRAD = "random values: no gradient"
FILL = "an in-place random fill: no gradient"


def T(shape, dtype="float32", layout="contiguous", seed=0, low=-3.0, high=3.0):
    return make_pair(shape, dtype, low=low, high=high, seed=seed, layout=layout)[0]


def gen(seed=0):
    return ember.Generator().manual_seed(seed)


# ---- factories ---------------------------------------------------------------------------------------

def float_factory_samples():
    return [
        Sample((2, 3), desc="default dtype"),
        Sample(((4,),), {"dtype": ember.float64, "generator": gen()}, desc="a tuple, float64, a generator"),
        Sample((3,), {"dtype": ember.float16, "device": "cpu"}, desc="float16, device"),
        Sample((2, 2), {"dtype": ember.bfloat16}, desc="bfloat16"),
        Sample(((),), desc="0-d"),
        Sample((0, 3), desc="empty"),
    ]


def float_factory_errors(kernel):
    return [ErrorSample((2, -1), {}, RuntimeError, r"negative dimension", desc="a size of -1"),
            ErrorSample((2,), {"dtype": ember.int64}, NotImplementedError, kernel, desc="int64"),
            ErrorSample((2,), {"dtype": ember.bool}, NotImplementedError, kernel, desc="bool")]


def randint_samples():
    return [
        Sample((0, 5, (2, 3)), desc="default int64"),
        Sample((-3, 3, (4,)), {"dtype": ember.int8, "generator": gen()}, desc="int8, a generator"),
        Sample((0, 2, (3,)), {"dtype": ember.bool}, desc="bool"),
        Sample((0, 7, (2,)), {"dtype": ember.float16, "device": "cpu"}, desc="float16, device"),
        Sample((1, 1 << 40, (2,)), desc="a 64-bit range"),
        Sample((0, 3, ()), desc="0-d"),
        Sample((0, 3, (0, 2)), {"dtype": ember.uint8}, desc="empty uint8"),
    ]


def randint_errors():
    return [ErrorSample((3, 3, (2,)), {}, RuntimeError, r"random_ expects 'from' to be less than 'to'",
                        desc="low == high"),
            ErrorSample((0, 300, (2,)), {"dtype": ember.uint8}, RuntimeError, r"to - 1 is out of bounds",
                        desc="300 for uint8"),
            ErrorSample((0, 3, (-1,)), {}, RuntimeError, r"negative dimension", desc="a size of -1")]


def randperm_samples():
    return [
        Sample((5,), desc="default int64"),
        Sample((4,), {"dtype": ember.int32, "generator": gen()}, desc="int32, a generator"),
        Sample((3,), {"dtype": ember.float32, "device": "cpu"}, desc="float32, device"),
        Sample((1,), {"dtype": ember.uint8}, desc="one element, uint8"),
        Sample((0,), desc="empty"),
    ]


def randperm_errors():
    return [ErrorSample((-1,), {}, RuntimeError, r"negative dimension", desc="n -1"),
            ErrorSample((3,), {"dtype": ember.bool}, NotImplementedError, r"randperm", desc="bool")]


register(OpInfo("rand", float_factory_samples, lambda: float_factory_errors("check_uniform_bounds"), ref=torch.rand,
                values=False, grad=NO_GRAD))
register(OpInfo("randn", float_factory_samples, lambda: float_factory_errors("normal_kernel_cpu"), ref=torch.randn,
                values=False, grad=NO_GRAD))
register(OpInfo("randint", randint_samples, randint_errors, ref=torch.randint, values=False, grad=NO_GRAD))
register(OpInfo("randperm", randperm_samples, randperm_errors, ref=torch.randperm, values=False, grad=NO_GRAD))


# ---- in-place fills -----------------------------------------------------------------------------------

def float_fill_samples(*args):
    return [
        Sample((T((2, 3)),) + args, desc="float32"),
        Sample((T((3, 4), "float64", layout="transposed"),) + args, {"generator": gen()},
               desc="transposed float64, a generator"),
        Sample((T((2, 4), "float16", layout="sliced"),) + args, desc="sliced float16"),
        Sample((T((2, 2), "bfloat16"),) + args, desc="bfloat16"),
        Sample((T(()),) + args, desc="0-d"),
        Sample((T((0, 2)),) + args, desc="empty"),
    ]


def fill_errors(name, bad_args, bad_match, kernel, int_exc=NotImplementedError):
    return [ErrorSample((T((2, 3)),) + bad_args, {}, RuntimeError, bad_match, desc="bad parameters"),
            ErrorSample((T((2, 3), "int64"),), {}, int_exc, kernel, desc="an int64 tensor"),
            ErrorSample((T((2, 3), "bool"),), {}, int_exc, kernel, desc="a bool tensor")]


def random_samples():
    return [
        Sample((T((2, 3)),), desc="float32, [0, 2^24)"),
        Sample((T((3, 4), "int64", layout="transposed"), -5, 5), desc="transposed int64, [-5, 5)"),
        Sample((T((2, 4), "uint8", layout="sliced"),), {"from_": 10, "to": 20, "generator": gen()},
               desc="sliced uint8, keywords, a generator"),
        Sample((T((4,), "bool"),), desc="bool"),
        Sample((T((2, 2), "float16"), 7), desc="one number: the end (random_(to))"),
        Sample((T((2, 2), "bfloat16"), 0, 100), desc="bfloat16"),
        Sample((T((), "int32"),), desc="0-d int32"),
        Sample((T((0, 2), "int8"),), desc="empty int8"),
    ]


def random_ref(x, *args, from_=None, to=None, generator=None):
    if from_ is not None or to is not None:
        args = (0 if from_ is None else from_, to)
    return x.random_(*args, generator=generator)


def random_errors():
    return [ErrorSample((T((2, 3)), 3, 3), {}, RuntimeError, r"random_ expects 'from' to be less than 'to'",
                        desc="from == to"),
            ErrorSample((T((2, 3), "uint8"), -3, 5), {}, RuntimeError, r"from is out of bounds", desc="uint8 from -3"),
            ErrorSample((T((2,), "bool"), 0, 3), {}, RuntimeError, r"to - 1 is out of bounds", desc="bool to 3")]


def bernoulli__samples():
    return [
        Sample((T((2, 3)),), desc="p 0.5"),
        Sample((T((3, 4), "float64", layout="transposed"), 0.2), {"generator": gen()}, desc="float64, a generator"),
        Sample((T((2, 4), "int64", layout="sliced"), T((4,), low=0, high=1)), desc="tensor p broadcast, int64"),
        Sample((T((3,), "bool"), T((), "float64", low=0, high=1)), desc="0-d tensor p, bool"),
        Sample((T((2, 2), "float16"), 1.0), desc="float16, p 1"),
        Sample((T((2, 2), "bfloat16"), 0), desc="bfloat16, p 0"),
        Sample((T(()), 0.7), desc="0-d"),
        Sample((T((0, 2)),), desc="empty"),
    ]


def bernoulli__errors():
    return [ErrorSample((T((2, 3)), 1.5), {}, RuntimeError, r"bernoulli_ expects p to be in \[0, 1\]", desc="p 1.5"),
            ErrorSample((T((3,)), T((2,), low=0, high=1)), {}, RuntimeError, r"cannot be expanded",
                        desc="a p of another size")]


register(OpInfo("normal_", lambda: float_fill_samples(1.0, 2.0),
                lambda: fill_errors("normal_", (0.0, -1.0), r"normal_ expects std >= 0.0", "normal_kernel_cpu"),
                ref=torch.Tensor.normal_, values=False, grad=FILL))
register(OpInfo("uniform_", lambda: float_fill_samples(-1.0, 1.0),
                lambda: fill_errors("uniform_", (2.0, 1.0), r"uniform_ expects to return a \[from, to\) range",
                                    "check_uniform_bounds"),
                ref=lambda x, from_=0.0, to=1.0, generator=None: x.uniform_(from_, to, generator=generator),
                values=False, grad=FILL))
register(OpInfo("exponential_", lambda: float_fill_samples(2.0),
                lambda: fill_errors("exponential_", (0.0,), r"exponential_ expects lambda > 0.0",
                                    "dtype must be a floating point", RuntimeError),
                ref=torch.Tensor.exponential_, values=False, grad=FILL))
register(OpInfo("random_", random_samples, random_errors, ref=random_ref, values=False, grad=FILL))
register(OpInfo("bernoulli_", bernoulli__samples, bernoulli__errors, ref=torch.Tensor.bernoulli_, values=False,
                grad=FILL))


# ---- bernoulli, multinomial -----------------------------------------------------------------------

def bernoulli_samples():
    return [
        Sample((T((2, 3), low=0, high=1),), desc="probabilities from the tensor"),
        Sample((T((3, 4), "float64", layout="transposed", low=0, high=1),), {"generator": gen()},
               desc="transposed float64, a generator"),
        Sample((T((2, 4), "float16", layout="sliced", low=0, high=1),), desc="sliced float16"),
        Sample((T((2, 2), "int64"), 0.3), desc="a scalar p, int64"),
        Sample((T((2,), "bool"), 0.5), desc="a scalar p, bool"),
        Sample((T((2, 2), "bfloat16", low=0, high=1),), desc="bfloat16"),
        Sample((T((), low=0, high=1),), desc="0-d"),
        Sample((T((0, 2)),), desc="empty"),
    ]


def bernoulli_errors():
    return [ErrorSample((T((2, 3)), 1.5), {}, RuntimeError, r"bernoulli_ expects p to be in \[0, 1\]", desc="p 1.5"),
            ErrorSample((T((2, 3), "bool"),), {}, NotImplementedError, r"bernoulli_tensor_cpu_p_",
                        desc="probabilities from a bool tensor")]


def multinomial_samples():
    w = T((2, 5), low=0.1, high=1.0)
    return [
        Sample((w, 3), desc="rows, without replacement"),
        Sample((T((4, 3), "float64", layout="transposed", low=0.1, high=1), 6, True), {"generator": gen()},
               desc="with replacement, transposed float64, a generator"),
        Sample((T((6,), "float16", layout="sliced", low=0.1, high=1), 2), desc="1-D sliced float16"),
        Sample((T((4,), "bfloat16", low=0.1, high=1), 4), desc="every category, bfloat16"),
        Sample((T((0, 3), low=0.1, high=1), 2), desc="no rows"),
    ]


def multinomial_errors():
    w = T((2, 5), low=0.1, high=1.0)
    return [ErrorSample((T((2, 2, 2), low=0.1, high=1), 1), {}, RuntimeError, r"prob_dist must be 1 or 2 dim",
                        desc="3-D"),
            ErrorSample((T((3,), "int64", low=1, high=3), 1), {}, RuntimeError, r"only supports floating-point dtypes",
                        desc="int64 weights"),
            ErrorSample((w, 0), {}, RuntimeError, r"cannot sample n_sample <= 0 samples", desc="0 samples"),
            ErrorSample((w, 6), {}, RuntimeError, r"cannot sample n_sample > prob_dist.size\(-1\) samples without "
                        r"replacement", desc="6 of 5 without replacement")]


register(OpInfo("bernoulli", bernoulli_samples, bernoulli_errors, ref=torch.bernoulli, values=False, grad=NO_GRAD))
register(OpInfo("multinomial", multinomial_samples, multinomial_errors, ref=torch.multinomial, values=False,
                grad=NO_GRAD))


# ---- dropout -------------------------------------------------------------------------------------------

def native_dropout_samples():
    return [
        Sample((T((3, 4), "float64", layout="transposed"), 0.5, False), desc="eval: the identity, float64"),
        Sample((T((2, 3), "float64"), 0.0, True), desc="p 0 keeps everything, float64"),
        Sample((T((4, 5)), 0.3, True), desc="training"),
        Sample((T((2, 4), "float16", layout="sliced"), 0.5, None), desc="train None means training, sliced float16"),
        Sample((T((2, 2), "bfloat16"), 1.0, True), desc="p 1 drops everything, bfloat16"),
        Sample((T((2, 3), "int64"), 0.5, False), desc="eval accepts integers"),
        Sample((T(()), 0.5, True), desc="0-d"),
        # no empty input: torch then returns a mask of the input's dtype (an early return), ember a bool one
    ]


def native_dropout_errors():
    return [ErrorSample((T((2, 3)), 1.5, True), {}, RuntimeError, r"p must be in \[0, 1\]", desc="p 1.5"),
            ErrorSample((T((2, 3), "int64"), 0.5, True), {}, RuntimeError, r"can't be cast",
                        desc="training on int64")]


def native_dropout_backward_samples():
    mask = T((3, 4), "bool")
    return [
        Sample((T((3, 4)), mask, 2.0), desc="float32"),
        Sample((T((3, 4), "float64", layout="transposed"), T((3, 4), "bool", seed=1), 1.25), desc="transposed float64"),
        Sample((T((2, 4), "float16", layout="sliced"), T((4,), "bool"), 2.0), desc="a broadcast mask, float16"),
        Sample((T((3, 4), "bfloat16"), mask, 0.0), desc="scale 0, bfloat16"),
        Sample((T((3, 4), "int64"), mask, 2.0), desc="an integer grad gives the default float"),
        Sample((T(()), T((), "bool"), 3.0), desc="0-d"),
        Sample((T((0, 2)), T((0, 2), "bool"), 2.0), desc="empty"),
    ]


def native_dropout_backward_errors():
    g = T((2, 3))
    return [ErrorSample((g, T((2, 3, 2), "bool"), 2.0), {}, RuntimeError, r"does not broadcast",
                        desc="a larger mask"),
            ErrorSample((g, T((2, 3)), 2.0), {}, RuntimeError, r"Mask should be Bool", torch_raises=False,
                        desc="a float mask (torch's CUDA kernel refuses it; its CPU composite does not)")]


register(OpInfo("native_dropout", native_dropout_samples, native_dropout_errors, ref=torch.native_dropout,
                values=False))
register(OpInfo("native_dropout_backward", native_dropout_backward_samples, native_dropout_backward_errors,
                ref=lambda g, mask, scale: torch.ops.aten.native_dropout_backward(g, mask, scale)))
