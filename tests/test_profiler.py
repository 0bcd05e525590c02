"""ember.profiler on the CPU: op ranges (with shapes), their nesting under record_function, autograd
node ranges linked to their forward op, memory events, key_averages and its table, the Chrome trace,
schedules, and that the profiler costs nothing once it stops."""
import json
import threading

import pytest

import ember
from ember.dispatch import PROFILER
from ember.profiler import ProfilerAction, ProfilerActivity, profile, record_function, schedule


def _cpu(**kw):
    return profile(activities=[ProfilerActivity.CPU], **kw)


def test_op_calls_are_ranges_and_counts_match():
    a, b = ember.ones(3), ember.ones(3)
    with _cpu() as prof:
        for _ in range(5):
            c = a + b
        c.sum()
        ember.mm(ember.ones(2, 2), ember.ones(2, 2))
    avg = {e.key: e for e in prof.key_averages()}
    assert avg["add"].count == 5 and avg["sum"].count == 1 and avg["mm"].count == 1
    assert all(e.cpu_time_total >= e.self_cpu_time_total >= 0 for e in prof.events())
    assert not PROFILER.on and PROFILER.call is None


def test_ranges_nest_under_record_function_and_self_time_excludes_children():
    x = ember.ones(4)
    with _cpu() as prof:
        with record_function("outer"):
            with record_function("inner"):
                y = x * 2
            z = y + 1
    ev = {e.name: e for e in prof.events()}
    assert ev["inner"].parent is ev["outer"] and ev["mul"].parent is ev["inner"] and ev["add"].parent is ev["outer"]
    outer = ev["outer"]
    assert outer.start <= ev["inner"].start <= ev["mul"].start <= ev["mul"].end <= ev["inner"].end <= outer.end
    kids = sum(c.cpu_time_total for c in outer.children)
    assert outer.self_cpu_time_total == pytest.approx(outer.cpu_time_total - kids)
    assert z.tolist() == [3.0] * 4


def test_record_function_as_decorator_and_when_off():
    @record_function("my_fn")
    def f(t):
        return t.exp()
    assert f(ember.zeros(2)).tolist() == [1.0, 1.0]      # no profiler: a plain call
    z = ember.zeros(2)
    with _cpu() as prof:
        f(z)
    names = [e.name for e in prof.events()]
    assert names[:2] == ["my_fn", "exp"]


def test_record_shapes_and_group_by_input_shape():
    with _cpu(record_shapes=True) as prof:
        ember.ones(2, 3) + ember.ones(2, 3)
        ember.ones(4) + ember.ones(4)
        ember.ones(4) + ember.ones(4)
    adds = [e for e in prof.events() if e.name == "add"]
    assert [e.shapes[:2] for e in adds] == [[[2, 3], [2, 3]], [[4], [4]], [[4], [4]]]
    assert adds[0].dtypes[:2] == ["float32", "float32"]
    grouped = [a for a in prof.key_averages(group_by_input_shape=True) if a.key == "add"]
    assert sorted(a.count for a in grouped) == [1, 2]
    table = prof.key_averages(group_by_input_shape=True).table(row_limit=10)
    assert "Input Shapes" in table and "[[4], [4], []]" in table
    with _cpu() as prof2:
        ember.ones(1)
    with pytest.raises(RuntimeError, match="record_shapes"):
        prof2.key_averages(group_by_input_shape=True)


def test_backward_nodes_are_ranges_linked_to_their_forward_op(tmp_path):
    w = ember.ones(3, requires_grad=True)
    with _cpu() as prof:
        loss = (w * 2).sum()
        loss.backward()
    ev = prof.events()
    mul = next(e for e in ev if e.name == "mul")
    node = next(e for e in ev if e.name == "MulBackward0")
    assert node.kind == "backward" and node.seq == mul.seq is not None
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    trace = json.loads(path.read_text())["traceEvents"]
    flows = [e for e in trace if e.get("cat") == "fwdbwd"]
    assert {e["ph"] for e in flows} == {"s", "f"} and all(e["id"] == mul.seq for e in flows
                                                          if e["id"] == mul.seq) and flows


def test_chrome_trace_is_valid_and_complete(tmp_path):
    with _cpu(record_shapes=True, profile_memory=True) as prof:
        with record_function("step"):
            ember.ones(8) * 3
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    data = json.loads(path.read_text())
    evs = data["traceEvents"]
    xs = [e for e in evs if e["ph"] == "X"]
    assert {e["name"] for e in xs} >= {"step", "ones", "mul"}
    for e in xs:
        assert isinstance(e["ts"], float) and e["dur"] >= 0 and "pid" in e and "tid" in e
    step = next(e for e in xs if e["name"] == "step")
    mul = next(e for e in xs if e["name"] == "mul")
    assert step["cat"] == "user_annotation" and mul["cat"] == "cpu_op"
    assert step["ts"] <= mul["ts"] and mul["ts"] + mul["dur"] <= step["ts"] + step["dur"] + 1e-3
    assert mul["args"]["Input Dims"][0] == [8]
    mem = [e for e in evs if e["name"] == "[memory]"]
    assert any(e["args"]["Bytes"] == 32 for e in mem)
    assert not list(tmp_path.glob(".ember-trace-*"))       # written atomically, nothing left behind


def test_memory_events_record_allocation_and_release():
    with _cpu(profile_memory=True) as prof:
        t = ember.ones(1000)
        u = t + 1
        del t, u
    s = prof._events_session()
    sizes = [m[1] for m in s.memory]
    assert sizes.count(4000) == 2 and sizes.count(-4000) == 2
    avg = {a.key: a for a in prof.key_averages()}
    assert avg["ones"].self_cpu_memory_usage == 4000 and avg["add"].cpu_memory_usage == 4000
    assert "CPU Mem" in prof.key_averages().table()


def test_table_sorts_and_limits_rows():
    with _cpu() as prof:
        for _ in range(3):
            ember.ones(2).exp()
    t = prof.key_averages().table(sort_by="count", row_limit=1)
    body = [ln for ln in t.splitlines() if ln and not ln.startswith("-") and "Name" not in ln and "total" not in ln]
    assert len(body) == 1 and body[0].split()[0] in ("ones", "exp") and body[0].split()[-1] == "3"
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.key_averages().table(sort_by="nonsense")


def test_schedule_records_only_active_steps_and_calls_on_trace_ready():
    assert [schedule(wait=1, warmup=1, active=2, repeat=1)(i) for i in range(5)] == [
        ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE,
        ProfilerAction.NONE]
    saved = []
    with _cpu(schedule=schedule(wait=1, warmup=1, active=2, repeat=1),
              on_trace_ready=lambda p: saved.append([e.name for e in p.events()])) as prof:
        for step in range(5):
            ember.full((2,), float(step)).neg()
            prof.step()
    assert len(saved) == 1
    assert saved[0].count("neg") == 2 and saved[0].count("full") == 2   # steps 2 and 3 only
    with pytest.raises(ValueError, match="active must be at least 1"):
        schedule(wait=0, warmup=0, active=0)


def test_profilers_do_not_nest_and_errors_close_ranges():
    with _cpu() as outer:
        with pytest.raises(RuntimeError, match="already recording"):
            with _cpu():
                pass
        with pytest.raises(RuntimeError):
            ember.ones(2, 3) + ember.ones(4)
        ember.ones(1)
    bad = next(e for e in outer.events() if e.name == "add")
    assert bad.end >= bad.start
    assert [e.parent for e in outer.events() if e.name == "ones"][-1] is None   # the stack was unwound


def test_threads_keep_their_own_ranges():
    def work():
        with record_function("worker"):
            ember.ones(3).exp()
    with _cpu() as prof:
        th = threading.Thread(target=work)
        th.start()
        th.join()
        ember.ones(3).neg()
    ev = {e.name: e for e in prof.events()}
    assert ev["exp"].parent is ev["worker"] and ev["neg"].parent is None
    assert ev["worker"].tid != ev["neg"].tid


def test_off_costs_nothing_per_call():
    """While no profiler records, every entry point runs its own body (no test); while one records, the
    hand-over to the profiler; after it stops, each entry point's first call restores its own body."""
    from ember.dispatch import OPS
    add = OPS["add"].entry
    plain, handover = OPS["add"].entry_codes
    ember.add(ember.ones(2), 1)
    assert add.__code__ is plain and "_P" not in plain.co_names
    with _cpu():
        assert add.__code__ is handover and ember.Tensor.__add__ is not None
        assert all(op.entry.__code__ is op.entry_codes[1] for op in OPS.values())
    assert PROFILER.on is False
    assert ember.add(ember.ones(2), 1).tolist() == [2.0, 2.0]
    assert add.__code__ is plain


def test_cuda_activity_without_a_gpu_warns_and_records_cpu():
    if ember.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.warns(UserWarning, match="no GPU"):
        p = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    with p:
        ember.ones(2)
    assert [e.name for e in p.events()] == ["ones"]


def test_nvtx_module_imports_and_degrades_clearly():
    from ember.profiler import nvtx
    with nvtx.range("r"):      # a no-op without the package
        nvtx.mark("m")
    if not nvtx.available():
        with pytest.raises(RuntimeError, match="needs the 'nvtx' package"):
            with nvtx.emit_nvtx():
                pass
    else:
        with nvtx.emit_nvtx():
            assert (ember.ones(2) + 1).tolist() == [2.0, 2.0]
        assert not PROFILER.on


def test_op_hooks_chain_last_pushed_first():
    from ember.dispatch import pop_op_hook, push_op_hook
    seen = []

    def inner(op, plain, pos, kw):
        seen.append(("inner", op.name, kw.get("other")))
        return plain(*pos, **kw)

    def outer(op, plain, pos, kw):
        seen.append(("outer", op.name, kw.get("other")))
        if op.name == "add":
            kw = dict(kw, other=10)          # a hook may change the arguments the next one sees
        return plain(*pos, **kw)
    one = ember.ones(1)
    push_op_hook(inner)
    push_op_hook(outer)
    try:
        r = ember.add(one, 1)
    finally:
        pop_op_hook(outer)
        pop_op_hook(inner)
    assert r.tolist() == [11.0]
    assert seen[:2] == [("outer", "add", 1), ("inner", "add", 10)]
    assert not PROFILER.on
    with pytest.raises(RuntimeError, match="is not installed"):
        pop_op_hook(inner)
