"""ember.profiler on the GPU (`pytest -m cuda`): kernels timed on the device and tied to the op
that launched them, for a training step of the reversal model."""
import json

import pytest

import ember

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]

from ember.profiler import ProfilerActivity, profile, record_function  # noqa: E402


def _step_fn():
    from ember.examples.reverse import ReversalTransformer
    ember.manual_seed(0)
    model = ReversalTransformer(vocab_size=36, seq_len=32, d_model=64, nhead=4, num_layers=2).cuda()
    opt = ember.optim.SGD(model.parameters(), lr=0.1)
    x = ember.randint(0, 36, (8, 32), device="cuda")

    def step():
        opt.zero_grad()
        out = model(x)
        loss = ember.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), x.reshape(-1))
        loss.backward()
        opt.step()
    return step


@pytest.mark.xfail(strict=True, reason="on the H100 run of 2026-12-07, 30 of 140 kernels of a step had no "
                   "external correlation id (not tied to any range, although record_function wraps the step); "
                   "not yet understood")
def test_kernels_are_timed_and_correlated(tmp_path):
    step = _step_fn()
    step()
    ember.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("step"):
            step()
    sess = prof._events_session()
    gpu = sess.gpu
    assert gpu is not None and gpu.kernels, "no GPU work recorded"
    owned = [k for k in gpu.kernels if k[5] is not None]
    assert len(owned) == len(gpu.kernels), f"{len(gpu.kernels) - len(owned)} kernels not tied to a range"
    total_gpu = sum(e.self_device_time_total for e in prof.events())
    assert total_gpu > 0
    assert "CUDA total" in prof.key_averages().table(sort_by="cuda_time_total", row_limit=5)
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    evs = json.loads(path.read_text())["traceEvents"]
    assert any(e.get("cat") == "kernel" for e in evs)
    if gpu.mode == "cupti":      # every launch became one kernel on the device
        n_kernels = sum(1 for k in gpu.kernels if k[0] not in ("Memcpy", "Memset"))
        assert n_kernels == gpu.launches, (n_kernels, gpu.launches)
    print(f"mode {gpu.mode}: {len(gpu.kernels)} kernels, {gpu.launches} launches, {total_gpu:.1f} us")


def test_gpu_time_matches_cuda_events():
    step = _step_fn()
    for _ in range(2):
        step()
    ember.cuda.synchronize()
    start, end = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        start.record()
        for _ in range(3):
            step()
        end.record()
    span_us = start.elapsed_time(end) * 1000.0
    busy = sum(e - s for _, s, e, *_ in prof._events_session().gpu.kernels) / 1000.0
    assert 0 < busy <= span_us * 1.05, (busy, span_us)


def test_memory_snapshot_of_a_training_step(tmp_path):
    from ember.cuda import memory as M
    from ember.cuda import memory_viz
    step = _step_fn()
    step()
    M._record_memory_history(max_entries=100000)
    try:
        step()
        ember.cuda.synchronize()
        path = tmp_path / "snap.json"
        M._dump_snapshot(str(path))
    finally:
        M._record_memory_history(None)
    snap = json.loads(path.read_text())
    trace = snap["device_traces"][0]
    allocs = [e for e in trace if e["action"] == "alloc"]
    assert allocs and any(e["op"] for e in allocs), "no allocation attributed to an op"
    ops = {e["op"] for e in allocs if e["op"]}
    print(f"{len(allocs)} allocations by {len(ops)} ops, e.g. {sorted(ops)[:8]}")
    memory_viz.main([str(path), "-o", str(tmp_path / "snap")])
    assert (tmp_path / "snap.png").stat().st_size > 100 and (tmp_path / "snap.html").stat().st_size > 100
