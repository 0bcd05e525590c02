"""The CUDA runtime on a real GPU (`pytest -m cuda` on the GPU machine; skipped elsewhere)."""
import gc

import pytest

import ember
from helpers import DTYPES

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not ember.cuda.is_available(), reason="needs an NVIDIA GPU and cuda-bindings")]


def test_device_queries():
    assert ember.cuda.device_count() >= 1
    p = ember.cuda.get_device_properties(0)
    assert p.total_memory > 1 << 30 and p.multi_processor_count > 0 and p.major >= 7
    free, total = ember.cuda.mem_get_info()
    assert 0 < free <= total
    with ember.cuda.device(0):
        assert ember.cuda.current_device() == 0
    with pytest.raises(RuntimeError, match="does not exist"):
        ember.cuda.set_device(999)


@pytest.mark.parametrize("name", list(DTYPES))
def test_round_trip_every_dtype(name):
    e_dt, _ = DTYPES[name]
    x = ember.arange(24).reshape(2, 3, 4).to(e_dt)
    g = x.cuda()
    assert g.device == ember.device("cuda:0") and g.is_cuda and g.dtype is e_dt
    back = g.cpu()
    assert back.device.type == "cpu" and back.tolist() == x.tolist()


def test_strided_copies_both_ways():
    x = ember.arange(60.0).reshape(3, 4, 5)
    v = x.transpose(0, 2)[1:, ::2]
    g = v.cuda()                         # a non-contiguous source becomes a contiguous CUDA tensor
    assert g.tolist() == v.tolist()
    gx = x.cuda()
    gv = gx.transpose(0, 2)[1:, ::2]     # a strided CUDA view copied back
    assert gv._base is not None and gv.cpu().tolist() == v.tolist()
    assert gx[1, 2, 3].item() == x[1, 2, 3].item()


def test_factories_and_fills_on_cuda():
    for dt in (ember.float32, ember.float64, ember.float16, ember.bfloat16, ember.int64, ember.int8, ember.bool):
        assert ember.zeros(3, 2, dtype=dt, device="cuda").cpu().tolist() == ember.zeros(3, 2, dtype=dt).tolist()
        assert ember.ones(5, dtype=dt, device="cuda").cpu().tolist() == ember.ones(5, dtype=dt).tolist()
    assert ember.full((2, 2), 7.5, device="cuda").cpu().tolist() == [[7.5, 7.5], [7.5, 7.5]]
    assert ember.full((3,), -3, dtype=ember.int64, device="cuda").tolist() == [-3, -3, -3]
    assert ember.arange(5, device="cuda").tolist() == [0, 1, 2, 3, 4]
    assert ember.eye(2, device="cuda").tolist() == [[1.0, 0.0], [0.0, 1.0]]
    ember.manual_seed(0)
    r = ember.randn(100, device="cuda")
    assert r.device.type == "cuda" and r.shape == (100,)
    z = ember.ones(4, device="cuda")
    z.zero_()
    z.fill_(2.0)
    assert z.tolist() == [2.0] * 4 and z._version == 2


def test_copy_across_devices_and_dtypes():
    g = ember.zeros(2, 3, device="cuda")
    g.copy_(ember.tensor([1, 2, 3]))                      # host int64 -> device float32, broadcast
    assert g.tolist() == [[1.0, 2.0, 3.0]] * 2
    h = ember.zeros(2, 3, dtype=ember.float64)
    h.copy_(g)                                            # device -> host with a cast
    assert h.tolist() == [[1.0, 2.0, 3.0]] * 2
    g2 = ember.empty(2, 3, device="cuda")
    g2.copy_(g)                                           # device -> device
    assert g2.tolist() == g.tolist()
    c = g.clone()
    assert c.data_ptr() != g.data_ptr() and c.tolist() == g.tolist()
    assert g.t().clone().tolist() == g.cpu().t().tolist()   # a strided clone (Triton copy kernel)


def test_pinned_memory_and_non_blocking():
    x = ember.arange(1000.0)
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.tolist() == x.tolist()
    s = ember.cuda.Stream()
    with ember.cuda.stream(s):
        g = p.to("cuda", non_blocking=True)
        back = g.to("cpu", non_blocking=True)
    s.synchronize()
    assert back.is_pinned() and back.tolist() == x.tolist()


def test_streams_and_events():
    s1, s2 = ember.cuda.Stream(), ember.cuda.Stream(priority=-1)
    assert s1 != s2 and ember.cuda.current_stream() == ember.cuda.default_stream()
    with ember.cuda.stream(s1):
        assert ember.cuda.current_stream() == s1
        big = ember.empty(64 << 20, dtype=ember.uint8, device="cuda")
        big.zero_()
        ev = ember.cuda.Event()
        ev.record()
    assert ember.cuda.current_stream() == ember.cuda.default_stream()
    s2.wait_event(ev)
    s2.wait_stream(s1)
    ev.synchronize()
    assert ev.query() and s1.query()
    t0, t1 = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    t0.record()
    big.fill_(1)
    t1.record()
    t1.synchronize()
    assert t0.elapsed_time(t1) >= 0.0
    ext = ember.cuda.ExternalStream(s1.cuda_stream)
    assert ext == s1


def test_allocator_statistics_and_cache():
    ember.cuda.synchronize()
    ember.cuda.empty_cache()
    ember.cuda.reset_peak_memory_stats()
    base = ember.cuda.memory_allocated()
    x = ember.empty(1 << 20, device="cuda")              # 4 MiB
    assert ember.cuda.memory_allocated() - base == 4 << 20
    assert ember.cuda.memory_reserved() >= ember.cuda.memory_allocated()
    ptr = x.data_ptr()
    del x
    gc.collect()
    assert ember.cuda.memory_allocated() == base
    y = ember.empty(1 << 20, device="cuda")              # the cached block is reused at once
    assert y.data_ptr() == ptr
    assert ember.cuda.max_memory_allocated() >= base + (4 << 20)
    stats = ember.cuda.memory_stats()
    assert stats["allocated_bytes.all.current"] == ember.cuda.memory_allocated()
    assert "Allocated memory" in ember.cuda.memory_summary() or "allocated" in ember.cuda.memory_summary().lower()
    segs = ember.cuda.memory_snapshot()
    assert any(b["address"] == ptr for s in segs for b in s["blocks"])
    del y
    gc.collect()
    reserved = ember.cuda.memory_reserved()
    ember.cuda.empty_cache()
    assert ember.cuda.memory_reserved() < reserved


def test_record_stream_defers_reuse_on_other_streams():
    s = ember.cuda.Stream()
    x = ember.empty(32 << 20, dtype=ember.uint8, device="cuda")
    ptr = x.data_ptr()
    with ember.cuda.stream(s):
        for _ in range(20):
            x.fill_(3)                                    # queue work that reads/writes x on s
    x.record_stream(s)
    del x
    gc.collect()
    y = ember.empty(32 << 20, dtype=ember.uint8, device="cuda")
    if not s.query():                                     # still busy: the block must not be handed out
        assert y.data_ptr() != ptr
    s.synchronize()
    del y
    gc.collect()


def test_out_of_memory_error_names_sizes():
    free, total = ember.cuda.mem_get_info()
    with pytest.raises(ember.cuda.OutOfMemoryError, match=r"Tried to allocate"):
        ember.empty(total * 2, dtype=ember.uint8, device="cuda")
    ember.cuda.set_per_process_memory_fraction(0.01)
    try:
        with pytest.raises(ember.cuda.OutOfMemoryError):
            ember.empty(int(total * 0.05), dtype=ember.uint8, device="cuda")
    finally:
        ember.cuda.set_per_process_memory_fraction(1.0)
    assert ember.cuda.memory_stats()["num_ooms"] >= 2


def test_cuda_graph_capture_and_replay():
    src = ember.zeros(1000, device="cuda")
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        out = src.clone()                                 # allocated from the graph's private pool
        copy2 = ember.empty(1000, device="cuda")
        copy2.copy_(out)
    src.copy_(ember.arange(1000.0))
    g.replay()
    ember.cuda.synchronize()
    assert copy2.tolist() == list(map(float, range(1000)))
    src.copy_(ember.full((1000,), 2.0))
    g.replay()
    assert copy2.cpu().tolist() == [2.0] * 1000
    assert g.pool() is not None
    g2 = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g2, pool=g.pool()):             # a second graph sharing the first one's pool
        z = src.clone()
    g2.replay()
    assert z.tolist() == [2.0] * 1000
    g.reset()
    g2.reset()


def test_sync_during_capture_raises_naming_the_operation():
    x = ember.ones(4, device="cuda")
    g = ember.cuda.CUDAGraph()
    with pytest.raises(ember.cuda.CaptureError, match=r"\.cpu\(\)"):
        with ember.cuda.graph(g):
            x.cpu()
    with pytest.raises(ember.cuda.CaptureError, match="synchronize"):
        with ember.cuda.graph(ember.cuda.CUDAGraph()):
            ember.cuda.synchronize()
    with pytest.raises(ember.cuda.CaptureError, match="copying CPU data to a CUDA tensor .* replayed from host memory"):
        with ember.cuda.graph(ember.cuda.CUDAGraph()):
            ember.tensor([1.0, 2.0], device="cuda")
    assert not ember.cuda.is_current_stream_capturing()


def test_cuda_errors_carry_name_and_call():
    from ember.backends.cuda.driver import check, driver
    d = driver()
    with pytest.raises(ember.cuda.CudaError) as ei:
        check(d.cuMemFree(d.CUdeviceptr(12345)), "cuMemFree")
    assert ei.value.call == "cuMemFree" and ei.value.name.startswith("CUDA_ERROR")


def test_launch_a_triton_kernel_through_ember():
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from _triton_kernels import add_kernel
    from ember.backends.cuda.launch import launch_triton
    src = ASTSource(fn=add_kernel, signature={"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"},
                    constexprs={"BLOCK": 256})
    major, minor = ember.cuda.get_device_capability()
    compiled = triton.compile(src, target=GPUTarget("cuda", major * 10 + minor, 32))
    n = 1000
    x = ember.arange(float(n)).cuda()
    y = ember.full((n,), 0.5).cuda()
    out = ember.empty(n, device="cuda")
    launch_triton(compiled, ((n + 255) // 256,), [x.data_ptr(), y.data_ptr(), out.data_ptr(), n])
    assert out.tolist() == [i + 0.5 for i in range(n)]


# ---- with Triton kernels launched through ember ----------------------------------------------------

def _compile(fn, signature, constexprs):
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    major, minor = ember.cuda.get_device_capability()
    return triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                          target=GPUTarget("cuda", major * 10 + minor, 32))


def _slow_scale(iters=20000):
    from _triton_kernels import slow_scale_kernel
    return _compile(slow_scale_kernel, {"x_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32", "scale": "fp32"},
                    {"ITERS": iters, "BLOCK": 256})


def _run_scale(k, x, out, scale, stream=None):
    import ctypes
    from ember.backends.cuda.launch import launch_triton
    n = x.numel()
    launch_triton(k, ((n + 255) // 256,), [x.data_ptr(), out.data_ptr(), ctypes.c_int32(n), ctypes.c_float(scale)],
                  stream=stream)


def test_stream_ordering_with_wait_stream():
    k = _slow_scale()
    n = 1 << 16
    x = ember.arange(float(n)).cuda()
    out = ember.zeros(n, device="cuda")
    ember.cuda.synchronize()
    s1, s2 = ember.cuda.Stream(), ember.cuda.Stream()
    _run_scale(k, x, out, 3.0, stream=s1)          # long kernel on s1
    s2.wait_stream(s1)
    with ember.cuda.stream(s2):                    # the dependent copy on s2
        copy = ember.empty(n, device="cuda")
        copy.copy_(out)
    s2.synchronize()
    assert copy.cpu().tolist()[-5:] == [3.0 * v for v in range(n - 5, n)]


def test_cross_stream_reuse_is_safe_with_record_stream():
    k = _slow_scale(40000)
    n = 1 << 20
    reader = ember.cuda.Stream()
    x = ember.full((n,), 2.0, device="cuda")
    y = ember.zeros(n, device="cuda")
    ember.cuda.synchronize()
    _run_scale(k, x, y, 1.0, stream=reader)         # `reader` still reads x for a while
    x.record_stream(reader)
    del x                                            # freed on the default stream while `reader` reads it
    gc.collect()
    for _ in range(4):                               # allocations on the default stream overwrite freed memory
        z = ember.empty(n, device="cuda")
        z.fill_(-1.0)
    reader.synchronize()
    vals = y.cpu()
    assert vals.min().item() == 2.0 and vals.max().item() == 2.0


def test_statistics_match_mem_get_info_deltas():
    ember.cuda.synchronize()
    ember.cuda.empty_cache()
    free0, _ = ember.cuda.mem_get_info()
    r0 = ember.cuda.memory_reserved()
    x = ember.empty(256 << 20, dtype=ember.uint8, device="cuda")   # a new 256 MiB segment
    free1, _ = ember.cuda.mem_get_info()
    grown = ember.cuda.memory_reserved() - r0
    assert grown >= 256 << 20
    assert abs((free0 - free1) - grown) <= 4 << 20   # the driver saw the same growth (page granularity aside)
    del x
    gc.collect()
    ember.cuda.empty_cache()
    free2, _ = ember.cuda.mem_get_info()
    assert abs(free2 - free0) <= 4 << 20


def test_allocator_works_after_oom():
    _, total = ember.cuda.mem_get_info()
    with pytest.raises(ember.cuda.OutOfMemoryError) as ei:
        ember.empty(total + (1 << 30), dtype=ember.uint8, device="cuda")
    msg = str(ei.value)
    assert "Tried to allocate" in msg and "GiB" in msg
    x = ember.ones(1000, device="cuda")
    assert x.cpu().tolist() == [1.0] * 1000


def test_events_time_a_known_kernel():
    k = _slow_scale(20000)
    n = 1 << 16
    x = ember.ones(n, device="cuda")
    y = ember.empty(n, device="cuda")
    _run_scale(k, x, y, 1.0)                        # warm up (module load)
    t0, t1 = ember.cuda.Event(enable_timing=True), ember.cuda.Event(enable_timing=True)
    t0.record()
    _run_scale(k, x, y, 1.0)
    t1.record()
    t1.synchronize()
    one = t0.elapsed_time(t1)
    t0.record()
    for _ in range(4):
        _run_scale(k, x, y, 1.0)
    t1.record()
    t1.synchronize()
    four = t0.elapsed_time(t1)
    assert 0.01 < one < 1000.0
    assert 2.5 * one < four < 6.0 * one             # four launches take about four times as long


def test_graph_of_several_launches_replays_with_new_inputs():
    from _triton_kernels import add_kernel
    from ember.backends.cuda.launch import launch_triton
    k = _compile(add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}, {"BLOCK": 256})
    n = 4096
    grid = ((n + 255) // 256,)
    x = ember.zeros(n, device="cuda")
    y = ember.ones(n, device="cuda")
    a = ember.empty(n, device="cuda")
    launch_triton(k, grid, [x.data_ptr(), y.data_ptr(), a.data_ptr(), n])  # load the module before capture
    ember.cuda.synchronize()
    g = ember.cuda.CUDAGraph()
    with ember.cuda.graph(g):
        launch_triton(k, grid, [x.data_ptr(), y.data_ptr(), a.data_ptr(), n])        # a = x + 1
        b = ember.empty(n, device="cuda")
        launch_triton(k, grid, [a.data_ptr(), a.data_ptr(), b.data_ptr(), n])        # b = 2a
        c = ember.empty(n, device="cuda")
        launch_triton(k, grid, [b.data_ptr(), y.data_ptr(), c.data_ptr(), n])        # c = 2a + 1
    for i in range(20):
        x.copy_(ember.full((n,), float(i)))
        g.replay()
        assert c.cpu()[:3].tolist() == [2 * (i + 1) + 1.0] * 3
    g.reset()


def test_dataloader_pin_memory():
    from ember.utils.data import DataLoader, TensorDataset
    ds = TensorDataset(ember.arange(40.0).reshape(20, 2), ember.arange(20))
    batches = list(DataLoader(ds, batch_size=8, pin_memory=True))
    assert all(b[0].is_pinned() and b[1].is_pinned() for b in batches)
    assert batches[0][0].to("cuda", non_blocking=True).cpu().tolist() == ember.arange(16.0).reshape(8, 2).tolist()
