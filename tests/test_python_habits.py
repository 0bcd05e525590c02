"""Small habits of real PyTorch programs (issue 19): formatting a 0-d tensor like its number, and building a
tensor from any sequence, against torch."""
import collections

import pytest
import torch

import ember


@pytest.mark.parametrize("spec", ["", ".4f", "+.2f", ">10.3f", ".2e", "g", ".1%"])
def test_a_0d_float_tensor_formats_like_its_number(spec):
    for v in (1.23456, -0.5, 3.0):
        e, t = ember.tensor(v), torch.tensor(v)
        assert format(e, spec) == format(t, spec), (v, spec)
    loss = ember.tensor(0.25, requires_grad=True) * 2
    assert f"{loss:.4f}" == "0.5000" and "{:+.2f}".format(loss) == "+0.50"


def test_0d_int_and_bool_tensors_and_other_shapes():
    assert f"{ember.tensor(3):d}" == f"{torch.tensor(3):d}" == "3"
    assert f"{ember.tensor(7):>4}" == f"{torch.tensor(7):>4}"
    assert f"{ember.tensor(True)}" == f"{torch.tensor(True)}"
    assert f"{ember.ones(2)}" == str(ember.ones(2))                 # an empty spec: the tensor's str, as torch
    with pytest.raises(TypeError, match="unsupported format string passed to Tensor.__format__"):
        f"{ember.ones(2):.2f}"
    with pytest.raises(TypeError):
        f"{torch.ones(2):.2f}"


def test_tensor_from_any_sequence():
    for data in (collections.deque([1, 2, 3]), range(4), collections.deque([1.5, 2.0]),
                 [collections.deque([1, 2]), (3, 4)], collections.UserList([True, False])):
        e, t = ember.tensor(data), torch.tensor(data)
        assert e.tolist() == t.tolist() and str(e.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], data
    with pytest.raises(TypeError, match="could not infer dtype of list_iterator"):
        ember.tensor(iter([1, 2]))                                     # an iterator is not a sequence (torch: too)
