"""`ember.cuda.graphed_step` and `make_graphed_callables` refuse what they cannot capture, with a clear error,
on any machine (their GPU behaviour is in tests/test_cuda_graphs_api.py)."""
import pytest

import ember


def test_graphed_step_checks_its_options():
    with pytest.raises(TypeError, match="fn must be callable, got int"):
        ember.cuda.graphed_step(3)
    with pytest.raises(ValueError, match="warmup must be an int >= 0, got -1"):
        ember.cuda.graphed_step(lambda: None, warmup=-1)
    with pytest.raises(ValueError, match="max_graphs must be an int >= 1, got 0"):
        ember.cuda.graphed_step(lambda: None, max_graphs=0)


def test_graphed_step_refuses_cpu_tensors_and_unhashable_arguments():
    step = ember.cuda.graphed_step(lambda x, **kw: x)
    with pytest.raises(ValueError, match="argument 0 is a tensor on cpu.*must be on a CUDA device"):
        step(ember.ones(3))
    with pytest.raises(TypeError, match="argument 'opts' of type dict is neither a tensor nor hashable"):
        step(1, opts={})


def test_make_graphed_callables_refuses_cpu_samples():
    with pytest.raises(TypeError, match="sample argument 0 of callable 0 must be a CUDA tensor, got a tensor on cpu"):
        ember.cuda.make_graphed_callables(ember.nn.Linear(2, 2), (ember.ones(2),))
    with pytest.raises(ValueError, match="one tuple of sample arguments per callable"):
        ember.cuda.make_graphed_callables((ember.nn.Linear(2, 2), ember.nn.Linear(2, 2)), ((ember.ones(2),),))
