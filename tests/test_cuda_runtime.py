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
    with pytest.raises(NotImplementedError, match="CUDA kernels"):
        g.t().clone()


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
