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
    copies = [k[0] for k in gpu.kernels if k[0].startswith(("Memcpy", "Memset"))]
    print(f"mode {gpu.mode}: {len(gpu.kernels)} kernels and copies ({copies}), launches {gpu.launches} "
          f"{gpu.launch_calls}, unowned {gpu.unowned}")
    orphans = sorted({k[0][:60] for k in gpu.kernels if k[5] is None})
    assert not orphans, f"{len(gpu.unowned)} kernels not tied to a range: {gpu.unowned[:10]}"
    by_id = {e.ident: e for e in sess.events}
    # every kernel belongs to an op (or an autograd node), not only to the user's range around the step
    outer = sorted({k[0][:60] for k in gpu.kernels if by_id[k[5]].kind == "user"})
    assert not outer, f"kernels tied only to record_function('step'): {outer[:10]}"
    total_gpu = sum(e.self_device_time_total for e in prof.events())
    assert total_gpu > 0
    assert "CUDA total" in prof.key_averages().table(sort_by="cuda_time_total", row_limit=5)
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    evs = json.loads(path.read_text())["traceEvents"]
    assert any(e.get("cat") == "kernel" for e in evs)
    if gpu.mode == "cupti":      # every launch became one kernel on the device
        n_kernels = sum(1 for k in gpu.kernels if not k[0].startswith(("Memcpy", "Memset")))
        assert n_kernels == gpu.launches, (n_kernels, gpu.launches, gpu.launch_calls)


@pytest.mark.parametrize("after_torch", [False, True])
def test_gpu_time_matches_cuda_events(after_torch):
    """The kernels' summed GPU time against CUDA events around the same steps, with the GPU kept busy (a
    model large enough that each step is GPU-bound, queued behind a preamble so that the host runs ahead):
    then the span between the events is the kernels' time plus the small gaps between them. after_torch:
    torch's profiler ran first in this process (its Kineto leaves CUPTI on its own timestamp source: TSC
    ticks, read as nanoseconds they doubled every duration ember reported)."""
    if after_torch:
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch without CUDA")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]):
            torch.ones(1000, device="cuda").sum().item()
    from ember.examples.reverse import ReversalTransformer
    ember.manual_seed(0)
    model = ReversalTransformer(vocab_size=64, seq_len=128, d_model=512, nhead=8, num_layers=2).cuda()
    opt = ember.optim.SGD(model.parameters(), lr=0.01)
    x = ember.randint(0, 64, (128, 128), device="cuda")

    def step():
        opt.zero_grad()
        out = model(x)
        ember.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), x.reshape(-1)).backward()
        opt.step()
    step()
    a = ember.randn(4096, 4096, device="cuda")
    ember.cuda.synchronize()
    start, end = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with record_function("preamble"):
            for _ in range(20):
                a = (a @ a).tanh_()
        start.record()
        for _ in range(3):
            step()
        end.record()
    span_us = start.elapsed_time(end) * 1000.0
    sess = prof._events_session()

    def in_preamble(e):
        while e is not None and e.name != "preamble":
            e = e.parent
        return e is not None
    pre = {e.ident for e in sess.events if in_preamble(e)}
    inside = [k for k in sess.gpu.kernels if k[5] not in pre]
    busy = sum(e - s for _, s, e, *_ in inside) / 1000.0
    print(f"{len(inside)} kernels, {busy:.0f} us busy, events {span_us:.0f} us: {busy / span_us:.3f}")
    assert 0.95 * span_us <= busy <= 1.01 * span_us, (busy, span_us)


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
