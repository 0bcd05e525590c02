"""Memory history (ember.cuda.memory._record_memory_history / _snapshot / _dump_snapshot), the
memory_summary table against torch's, and ember.cuda.memory_viz, through the fake raw device: no GPU."""
import ast
import gc
import inspect
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import ember.cuda.memory as M
from ember.backends.cuda import alloc_context as ac
from ember.backends.cuda import memory as backend_memory
from ember.backends.cuda.allocator import CachingAllocator, FakeRawAllocator
from ember.cuda import memory_viz as V

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


class FakeStream:
    """Like ember.cuda.Stream for the allocator: hashable, with the CUstream value in `ptr`."""

    def __init__(self, ptr):
        self.ptr = ptr

    def __hash__(self):
        return hash(self.ptr)

    def __eq__(self, other):
        return isinstance(other, FakeStream) and other.ptr == self.ptr


S1, S2 = FakeStream(0x1111), FakeStream(0x2222)


class NamedOp:
    """Stands for the dispatcher's Op: the allocator records its `name`, and counts the reads."""

    def __init__(self, name):
        self._name = name
        self.reads = 0

    @property
    def name(self):
        self.reads += 1
        return self._name


@pytest.fixture
def fake_devices(monkeypatch):
    """Devices 0 and 1 backed by fake raw allocators, as ember.cuda.memory sees them."""
    allocs = {i: CachingAllocator(FakeRawAllocator(4 * GiB, base=0x7F00_0000_0000 + i * (1 << 40)), device=i)
              for i in (0, 1)}
    monkeypatch.setattr(backend_memory, "_allocators", dict(allocs))
    monkeypatch.setattr(ac, "current_op", None)
    yield allocs
    for i in allocs:
        M._record_memory_history(None, device=i)


def trace(device=0):
    return M._snapshot()["device_traces"][device]


def this_file(frame):
    return os.path.basename(frame["filename"]) == os.path.basename(__file__)


# ---- the op slot --------------------------------------------------------------------------------

def test_alloc_context_is_a_leaf():
    tree = ast.parse(open(ac.__file__).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not node.module.startswith("ember"), ast.dump(node)
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("ember") for a in node.names)


def test_op_scope_and_op_name():
    assert ac.current_op is None
    with ac.op_scope("outer"):
        assert ac.current_op == "outer"
        with ac.op_scope(NamedOp("inner")) as s:
            assert ac.op_name(ac.current_op) == "inner" and s.op is ac.current_op
        assert ac.current_op == "outer"
    assert ac.current_op is None
    assert ac.op_name(None) is None and ac.op_name("x") == "x" and ac.op_name(3) == "3"


def test_recording_flag(fake_devices):
    a0, a1 = fake_devices[0], fake_devices[1]
    assert not ac.recording
    M._record_memory_history(device=0)
    M._record_memory_history(device=0)          # again: still counted once
    assert ac.recording
    M._record_memory_history(device=1)
    M._record_memory_history(None, device=0)
    assert ac.recording                         # device 1 still records
    M._record_memory_history(None, device=1)
    assert not ac.recording
    # an allocator collected while recording is counted out
    tmp = CachingAllocator(FakeRawAllocator(GiB))
    tmp.record_history(True)
    assert ac.recording
    del tmp
    gc.collect()
    assert not ac.recording
    assert a0._history is None and a1._history is None


def test_op_not_read_while_history_is_off(fake_devices):
    a = fake_devices[0]
    op = NamedOp("conv")
    ac.current_op = op
    for _ in range(3):
        a.free(a.malloc(1000, S1))
    assert op.reads == 0
    M._record_memory_history()
    a.free(a.malloc(1000, S1))
    assert op.reads > 0


# ---- history and snapshot -----------------------------------------------------------------------

def allocate_in_user_code(a, nbytes, stream):
    return a.malloc(nbytes, stream)


def test_snapshot_records_size_stream_op_and_frames(fake_devices):
    a = fake_devices[0]
    before = a.malloc(4000, S1)                 # allocated before history: no context
    M._record_memory_history(max_entries=1000)
    with ac.op_scope("matmul"):
        x = allocate_in_user_code(a, 3000, S1)
    ac.current_op = NamedOp("linear")
    y = allocate_in_user_code(a, 3 * MiB, S2)
    ac.current_op = None
    z = a.malloc(100, None)                     # the default stream, no op
    with ac.op_scope("relu"):
        a.free(x)
    snap = M._snapshot()
    assert json.loads(json.dumps(snap)) == snap     # plain JSON data

    segs = snap["segments"]
    assert [s["address"] for s in segs] == sorted(s["address"] for s in segs)
    assert all(s["device"] == 0 for s in segs)
    assert {s["stream"] for s in segs} == {0x1111, 0x2222, 0}
    small = next(s for s in segs if s["stream"] == 0x1111)
    assert small["segment_type"] == "small" and small["total_size"] == 2 * MiB
    assert "op" not in small and "frames" not in small      # made before history: no context
    blocks = {b["address"]: b for s in segs for b in s["blocks"]}
    bb = blocks[before.ptr]
    assert bb["state"] == "active_allocated" and bb["size"] == 4096 and "op" not in bb and "frames" not in bb
    by = blocks[y.ptr]
    assert by["size"] == 3 * MiB and by["requested_size"] == 3 * MiB and by["state"] == "active_allocated"
    assert by["op"] == "linear"
    assert by["frames"][0]["name"] == "allocate_in_user_code" and this_file(by["frames"][0])
    assert by["frames"][1]["name"] == "test_snapshot_records_size_stream_op_and_frames"
    assert set(by["frames"][0]) == {"filename", "line", "name"}
    assert blocks[z.ptr]["op"] is None and blocks[z.ptr]["frames"][0]["name"] == inspect.currentframe().f_code.co_name
    large = next(s for s in segs if s["stream"] == 0x2222)
    assert large["segment_type"] == "large" and large["op"] == "linear"     # the segment's creator
    assert blocks[x.ptr]["state"] == "inactive" and "op" not in blocks[x.ptr]

    tr = snap["device_traces"][0]
    assert snap["device_traces"][1] == []
    assert [(e["action"], e["op"]) for e in tr] == [
        ("alloc", "matmul"), ("segment_alloc", "linear"), ("alloc", "linear"), ("segment_alloc", None),
        ("alloc", None), ("free_requested", "relu"), ("free_completed", "relu")]
    alloc_x = tr[0]
    assert alloc_x["addr"] == x.ptr and alloc_x["size"] == 3072 and alloc_x["stream"] == 0x1111
    assert alloc_x["frames"][0]["name"] == "allocate_in_user_code"
    assert tr[1]["size"] == 20 * MiB and tr[1]["stream"] == 0x2222 and tr[2]["size"] == 3 * MiB
    assert tr[3]["size"] == 2 * MiB and tr[3]["stream"] == 0 and tr[4]["stream"] == 0
    assert tr[5]["addr"] == x.ptr and tr[5]["size"] == 3072 and tr[5]["frames"][0]["name"] == \
        "test_snapshot_records_size_stream_op_and_frames"
    assert tr[6]["addr"] == x.ptr and tr[6]["size"] == 3072 and tr[6]["frames"] == []
    seqs = [e["seq"] for e in tr]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    times = [e["time_us"] for e in tr]
    assert times == sorted(times) and all(isinstance(t, int) for t in times)
    for e in tr:
        assert set(e) == {"action", "addr", "size", "stream", "frames", "op", "time_us", "seq"}
        assert not any("allocator.py" in f["filename"] for f in e["frames"])


def test_max_entries_drops_the_oldest(fake_devices):
    a = fake_devices[0]
    M._record_memory_history(max_entries=10)
    blocks = []
    for k in range(20):
        with ac.op_scope(f"op{k}"):
            blocks.append(a.malloc(1000, S1))
    tr = trace()
    assert len(tr) == 10
    assert [e["op"] for e in tr] == [f"op{k}" for k in range(10, 20)]
    assert [e["addr"] for e in tr] == [b.ptr for b in blocks[10:]]


def test_turning_history_off_stops_recording(fake_devices):
    a = fake_devices[0]
    M._record_memory_history()
    x = a.malloc(1000, S1)
    assert len(trace()) == 2
    M._record_memory_history(enabled=None)
    assert trace() == [] and a.history() == []
    ac.current_op = "after"
    y = a.malloc(5000, S1)
    a.free(x)
    assert trace() == []
    blocks = {b["address"]: b for s in M._snapshot()["segments"] for b in s["blocks"]}
    assert "op" not in blocks[y.ptr] and "frames" not in blocks[y.ptr]
    M._record_memory_history(enabled=False)     # already off: fine
    M._record_memory_history(True)              # torch's legacy bool also works
    a.malloc(100, S1)
    assert [e["action"] for e in trace()] == ["alloc"]


def test_state_and_context_modes(fake_devices):
    a = fake_devices[0]
    M._record_memory_history(enabled="state")
    with ac.op_scope("embed"):
        x = a.malloc(1000, S1)
    assert trace() == []
    blk = next(b for s in M._snapshot()["segments"] for b in s["blocks"] if b["address"] == x.ptr)
    assert blk["op"] == "embed" and blk["frames"][0]["name"] == "test_state_and_context_modes"

    M._record_memory_history(enabled=None)
    M._record_memory_history(context="alloc")
    y = a.malloc(1000, S1)
    a.free(y)
    tr = trace()
    assert [e["action"] for e in tr] == ["alloc", "free_requested", "free_completed"]
    assert tr[0]["frames"] and tr[1]["frames"] == [] and tr[2]["frames"] == []

    M._record_memory_history(enabled=None)
    M._record_memory_history(context=None, max_entries=100)
    with ac.op_scope("gelu"):
        z = a.malloc(1000, S1)
    tr = trace()
    assert tr[0]["op"] == "gelu" and tr[0]["frames"] == []
    blk = next(b for s in M._snapshot()["segments"] for b in s["blocks"] if b["address"] == z.ptr)
    assert blk["op"] == "gelu" and blk["frames"] == []

    M._record_memory_history(enabled=None)
    M._record_memory_history(context="state")
    a.malloc(1000, S1)
    tr = trace()
    assert tr[0]["frames"] == []                # stacks only on the blocks
    assert M._snapshot()["segments"][0]["blocks"]

    with pytest.raises(ValueError):
        M._record_memory_history(enabled="sometimes")
    with pytest.raises(ValueError):
        M._record_memory_history(context="everything")
    with pytest.raises(ValueError):
        M._record_memory_history(stacks="cpp")


def test_free_completed_names_the_freed_block_after_a_merge(fake_devices):
    a = fake_devices[0]
    M._record_memory_history()
    x = a.malloc(1000, S1)
    y = a.malloc(2000, S1)
    z = a.malloc(3000, S1)
    a.free(x)
    a.free(y)                                   # merges into x's free block on its left
    done = [e for e in trace() if e["action"] == "free_completed"]
    assert [(e["addr"], e["size"]) for e in done] == [(x.ptr, 1024), (y.ptr, 2048)]
    a.free(z)                                   # merges with both neighbours
    done = [e for e in trace() if e["action"] == "free_completed"]
    assert (done[-1]["addr"], done[-1]["size"]) == (z.ptr, 3072)


def test_free_completed_comes_before_the_segment_free(fake_devices):
    """A graph's private pool released while a block lives: the block's free gives back its segment."""
    a = fake_devices[0]
    M._record_memory_history()
    a.begin_allocate_to_pool("g", S1)
    x = a.malloc(1000, S1)
    a.end_allocate_to_pool("g")
    a.release_pool("g")
    a.free(x)
    tr = trace()
    assert [e["action"] for e in tr] == ["segment_alloc", "alloc", "free_requested", "free_completed",
                                         "segment_free"]
    assert tr[3]["addr"] == x.ptr == tr[4]["addr"] and tr[4]["size"] == 2 * MiB


def test_pending_free_completes_later(fake_devices):
    a = fake_devices[0]
    raw = a.raw
    M._record_memory_history()
    x = a.malloc(30 * MiB, S1)
    a.record_stream(x, S2)
    with ac.op_scope("backward"):
        a.free(x)
    tr = trace()
    assert tr[-1]["action"] == "free_requested" and tr[-1]["op"] == "backward"
    blk = next(b for s in M._snapshot()["segments"] for b in s["blocks"] if b["address"] == x.ptr)
    assert blk["state"] == "active_pending_free"
    raw.complete_all()
    with ac.op_scope("step"):
        a.process_events()
    e = trace()[-1]
    assert (e["action"], e["addr"], e["size"], e["stream"], e["op"]) == ("free_completed", x.ptr, 30 * MiB,
                                                                          0x1111, "step")


def test_segment_free_and_oom_recorded(fake_devices):
    a = fake_devices[0]
    M._record_memory_history()
    a.free(a.malloc(1000, S1))
    with ac.op_scope("empty_cache"):
        a.empty_cache()
    e = trace()[-1]
    assert e["action"] == "segment_free" and e["size"] == 2 * MiB and e["op"] == "empty_cache"
    with pytest.raises(Exception):
        a.malloc(8 * GiB, S1)
    assert trace()[-1]["action"] == "oom"


def test_snapshot_of_several_devices(fake_devices):
    a0, a1 = fake_devices[0], fake_devices[1]
    M._record_memory_history(device=1)
    a0.malloc(1000, S1)
    a1.malloc(2000, S2)
    snap = M._snapshot()
    assert sorted({s["device"] for s in snap["segments"]}) == [0, 1]
    assert snap["device_traces"][0] == [] and [e["action"] for e in snap["device_traces"][1]] == \
        ["segment_alloc", "alloc"]
    only1 = M._snapshot(device=1)
    assert {s["device"] for s in only1["segments"]} == {1} and len(only1["device_traces"]) == 2


def test_dump_snapshot_round_trips(fake_devices, tmp_path):
    a = fake_devices[0]
    M._record_memory_history()
    with ac.op_scope("matmul"):
        keep = [a.malloc(n, S1) for n in (1000, 5 * MiB, 40 * MiB)]
    a.free(keep[0])
    path = tmp_path / "snap.json"
    assert M._dump_snapshot(path) == str(path)
    with open(path) as f:
        data = json.load(f)
    assert data == M._snapshot()
    assert set(data) == {"segments", "device_traces"}
    assert os.listdir(tmp_path) == ["snap.json"]                # no temporary left behind
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_dump_snapshot_is_atomic(fake_devices, tmp_path, monkeypatch):
    a = fake_devices[0]
    M._record_memory_history()
    a.malloc(1000, S1)
    path = tmp_path / "snap.json"
    path.write_text("previous")
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert os.path.dirname(os.path.abspath(src)) == str(tmp_path) and src != str(path)
        assert path.read_text() == "previous"           # the target is untouched until the rename
        json.loads(open(src).read())                    # the temporary is complete
        replaced.append((src, dst))
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", spy)
    M._dump_snapshot(str(path))
    assert len(replaced) == 1 and replaced[0][1] == str(path)
    assert json.loads(path.read_text())["device_traces"][0]

    # a failure while writing leaves the old file and no temporary
    path.write_text("previous")

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(M.json, "dump", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        M._dump_snapshot(str(path))
    assert path.read_text() == "previous" and sorted(os.listdir(tmp_path)) == ["snap.json"]


def test_history_does_not_change_decisions_or_stats():
    """The same sequence with and without history: same addresses, same statistics."""
    def run(history):
        a = CachingAllocator(FakeRawAllocator(GiB))
        if history:
            a.record_history(True, max_entries=50)
        rng = np.random.default_rng(0)
        live, ptrs = [], []
        for _ in range(400):
            if live and rng.random() < 0.45:
                b = live.pop(int(rng.integers(len(live))))
                if rng.random() < 0.2 and b.allocated:
                    a.record_stream(b, "other")
                a.free(b)
            else:
                b = a.malloc(int(rng.integers(1, 3 * MiB)), "s" if rng.random() < 0.8 else "t")
                live.append(b)
                ptrs.append(b.ptr)
            if rng.random() < 0.05:
                a.raw.complete_all()
                a.process_events()
        return ptrs, a.memory_stats(), [(s["address"], [(b["address"], b["size"], b["state"]) for b in s["blocks"]])
                                        for s in a.snapshot()]
    assert run(False) == run(True)


# ---- memory_summary against torch's --------------------------------------------------------------

def torch_summary(monkeypatch, stats, device):
    import torch.cuda.memory as tcm
    torch_stats = dict(stats, **{f"{k}.{f}": 0 for k in ("oversize_allocations", "oversize_segments")
                                 for f in ("current", "peak", "allocated", "freed")})
    monkeypatch.setattr(tcm, "memory_stats", lambda device=None: torch_stats)
    monkeypatch.setattr(tcm, "_get_device_index", lambda d, optional=False: device)
    return tcm.memory_summary, tcm


@pytest.mark.parametrize("abbreviated", [False, True])
def test_memory_summary_is_torchs_layout(monkeypatch, abbreviated):
    a = CachingAllocator(FakeRawAllocator(64 * GiB), device=3)
    blocks = [a.malloc(n, S1) for n in (1000, 30 * MiB, 5 * GiB, 512, 3 * MiB)]
    a.free(blocks[0])
    a.free(blocks[2])
    stats = a.memory_stats()
    stats["num_ooms"] = 12
    stats["num_alloc_retries"] = 3456
    for k in stats:
        if k.startswith(("allocation.", "active.")):
            stats[k] = stats[k] * 400_000 + 7           # counts in the K range
    monkeypatch.setattr(a, "memory_stats", lambda: stats)
    summary, _ = torch_summary(monkeypatch, stats, 3)
    ours = a.memory_summary(abbreviated)
    theirs = summary(3, abbreviated)
    # the same text, line for line, but for the product's name in the heading
    assert ours.splitlines()[1] == theirs.splitlines()[1].replace("PyTorch", "  ember")
    assert ours == theirs.replace("PyTorch CUDA memory summary", "  ember CUDA memory summary")
    assert "ember CUDA memory summary, device ID 3" in ours and "CUDA OOMs: 12" in ours
    assert "cudaMalloc retries: 3456" in ours
    lines = ours.splitlines()
    assert all(len(line) == 77 for line in lines)


def test_memory_summary_rows_are_torchs_names(monkeypatch):
    """The row names and the column header, read from torch's source."""
    import torch.cuda.memory as tcm
    src = inspect.getsource(tcm.memory_summary)
    names = re.findall(r'\(\s*"(\w+)",\s*"([^"]+)",\s*_format_(?:size|count),?\s*\)', src)
    assert len(names) == 11
    assert [n for _, n in names] == ["Allocated memory", "Active memory", "Requested memory", "GPU reserved memory",
                                     "Non-releasable memory", "Allocations", "Active allocs", "GPU reserved segments",
                                     "Non-releasable allocs", "Oversize allocations", "Oversize GPU segments"]
    header = re.search(r'"(\s+Metric\s+\|[^"]+)"', src).group(1)
    subs = re.findall(r'"(\s+from (?:large|small) pool)"', src)
    a = CachingAllocator(FakeRawAllocator(GiB))
    a.malloc(1000, S1)
    text = a.memory_summary()
    lines = [line[1:-1] for line in text.splitlines()]
    assert header in lines
    rows = [line.split("|")[0].strip() for line in lines if "|" in line and "Metric" not in line
            and "OOMs" not in line]
    rows = [r for r in rows if not r.startswith("from")]
    assert rows == [n for _, n in names]
    for s in subs:
        assert sum(line.startswith(f" {s:<21} |") for line in lines) == 9
    assert lines[0] == "=" * 75 and lines[2] == "-" * 75 and lines[4] == "=" * 75 and lines[-1] == "=" * 75


def test_memory_summary_through_ember_cuda(fake_devices):
    fake_devices[0].malloc(1000, S1)
    text = M.memory_summary()
    assert "device ID 0" in text and "Oversize GPU segments" in text
    assert "from small pool" not in M.memory_summary(abbreviated=True)


# ---- memory_viz ---------------------------------------------------------------------------------

def png_info(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    assert zlib.crc32(data[12:29]) & 0xFFFFFFFF == struct.unpack(">I", data[29:33])[0]
    assert data.endswith(b"IEND\xaeB`\x82")
    return w, h, depth, ctype, data


def make_snapshot(a, path):
    """A small training-like history: a weight allocated before recording, then steps of ops."""
    weight = a.malloc(8 * MiB, S1)
    M._record_memory_history()
    acts = []
    for _step in range(3):
        with ac.op_scope("linear"):
            acts.append(a.malloc(4 * MiB, S1))
        with ac.op_scope("relu"):
            acts.append(a.malloc(4 * MiB, S1))
        with ac.op_scope("softmax"):
            tmp = a.malloc(1 * MiB, S1)
            a.free(tmp)
        while acts:
            a.free(acts.pop())
    a.free(weight)
    user_alloc = allocate_in_user_code(a, 2 * MiB, S1)
    M._dump_snapshot(path)
    return user_alloc


def test_timeline(fake_devices, tmp_path):
    a = fake_devices[0]
    make_snapshot(a, tmp_path / "s.json")
    tl = V.timeline(str(tmp_path / "s.json"))
    assert tl.device == 0
    assert set(tl.sites) == {"linear", "relu", "softmax", V.BEFORE, "allocate_in_user_code (test_memory_history.py:"
                             + str(allocate_in_user_code.__code__.co_firstlineno + 1) + ")"}
    assert tl.sites[0] == V.BEFORE and tl.peaks[V.BEFORE] == 8 * MiB
    assert tl.peaks["linear"] == 4 * MiB and tl.peaks["relu"] == 4 * MiB and tl.peaks["softmax"] == 1 * MiB
    assert tl.counts["linear"] == 3 and tl.totals["relu"] == 12 * MiB
    total = tl.total
    assert total.max() == 8 * MiB + 8 * MiB + 1 * MiB and total[-1] == 2 * MiB
    assert total[0] == 8 * MiB + 4 * MiB        # the weight from the start, then linear's first alloc
    assert tl.series.shape == (len(tl.sites), len(trace()))
    assert (tl.reserved >= total).all() and tl.reserved[-1] == a.memory_reserved()
    assert tl.blocks[0]["size"] == 2 * MiB and tl.blocks[0]["op"] is None
    top2 = V.timeline(str(tmp_path / "s.json"), top=2)
    assert top2.sites == [V.BEFORE, "linear", V.OTHER] or top2.sites == [V.BEFORE, "relu", V.OTHER]
    assert (top2.total == total).all()
    by_frame = V.timeline(str(tmp_path / "s.json"), by="frame")
    assert any(s.startswith("make_snapshot (test_memory_history.py:") for s in by_frame.sites)
    small = tl.downsample(5)
    assert len(small.x) <= 6 and small.total.max() == total.max() and small.x[0] == 0


def test_png_and_html(fake_devices, tmp_path):
    a = fake_devices[0]
    make_snapshot(a, tmp_path / "s.json")
    tl = V.render(str(tmp_path / "s.json"), png=tmp_path / "m.png", html=tmp_path / "m.html")
    w, h, depth, ctype, _ = png_info(tmp_path / "m.png")
    assert (w, h) == (1200, 600) and depth == 8 and ctype in (2, 6)
    page = (tmp_path / "m.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polygon" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page
    raw = re.search(r'<script id="ember-memory-data" type="application/json">(.*?)</script>', page, re.S).group(1)
    data = json.loads(raw)
    assert data["sites"] == tl.sites and data["device"] == 0
    assert len(data["series"]) == len(tl.sites) and len(data["x"]) == len(tl.x)
    assert max(map(sum, zip(*data["series"]))) == 17 * MiB
    for site in ("linear", "relu", "softmax"):
        assert f">{site}<" in page


def test_png_without_matplotlib(fake_devices, tmp_path):
    a = fake_devices[0]
    make_snapshot(a, tmp_path / "s.json")
    tl = V.timeline(str(tmp_path / "s.json"))
    V.write_png(tl, tmp_path / "plain.png", width=300, height=150, use_matplotlib=False)
    w, h, depth, ctype, data = png_info(tmp_path / "plain.png")
    assert (w, h, depth, ctype) == (300, 150, 8, 2)
    i = data.index(b"IDAT")
    n = struct.unpack(">I", data[i - 4:i])[0]
    pixels = zlib.decompress(data[i + 4:i + 4 + n])
    assert len(pixels) == h * (1 + 3 * w)
    img = np.frombuffer(pixels, dtype=np.uint8).reshape(h, 1 + 3 * w)[:, 1:].reshape(h, w, 3)
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    for k in range(len(tl.sites)):              # every site's colour is drawn
        assert V._hex_rgb(V._colors(tl.sites)[k]) in colours


def test_empty_snapshot_draws(fake_devices, tmp_path):
    M._dump_snapshot(tmp_path / "empty.json")
    tl = V.render(str(tmp_path / "empty.json"), png=tmp_path / "e.png", html=tmp_path / "e.html")
    assert tl.sites == [] and len(tl.x) == 0
    png_info(tmp_path / "e.png")
    V.write_png(tl, tmp_path / "e2.png", use_matplotlib=False)
    png_info(tmp_path / "e2.png")
    assert "ember-memory-data" in (tmp_path / "e.html").read_text()


def test_cli(fake_devices, tmp_path):
    a = fake_devices[0]
    make_snapshot(a, tmp_path / "snap.json")
    env = dict(os.environ, MPLBACKEND="Agg")
    r = subprocess.run([sys.executable, "-m", "ember.cuda.memory_viz", str(tmp_path / "snap.json")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "snap.png"), str(tmp_path / "snap.html")]
    assert "RuntimeWarning" not in r.stderr and "peak active" in r.stderr
    png_info(tmp_path / "snap.png")
    assert "linear" in (tmp_path / "snap.html").read_text()

    r = subprocess.run([sys.executable, "-m", "ember.cuda.memory_viz", "snap.json", "-o", "out/mem.png",
                        "--by", "frame", "--format", "png"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1 and "memory_viz:" in r.stderr      # out/ does not exist
    (tmp_path / "out").mkdir()
    r = subprocess.run([sys.executable, "-m", "ember.cuda.memory_viz", "snap.json", "-o", "out/mem.png",
                        "--by", "frame", "--format", "png"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path / "out") == ["mem.png"]

    (tmp_path / "bad.json").write_text("[1, 2]")
    r = subprocess.run([sys.executable, "-m", "ember.cuda.memory_viz", "bad.json"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1 and "not a memory snapshot" in r.stderr


def test_op_calls_name_the_op_while_history_records(fake_devices):
    """While history records, the dispatcher runs each op call under its op (its entry points hand over to
    memory's op hook); when it stops, the entry points run their plain bodies again."""
    import ember
    from ember.dispatch import OPS, PROFILER
    seen = []
    op = OPS["neg"]
    kernel = op.kernels["cpu"]
    op.kernels["cpu"] = lambda t: (seen.append(ac.op_name(ac.current_op)), kernel(t))[1]
    try:
        ember.neg(ember.ones(2))
        M._record_memory_history(max_entries=10)
        assert PROFILER.on and op.entry.__code__ is op.entry_codes[1]
        assert ember.neg(ember.ones(2)).tolist() == [-1.0, -1.0]
        M._record_memory_history(None)
        ember.neg(ember.ones(2))
    finally:
        op.kernels["cpu"] = kernel
    assert seen == [None, "neg", None]
    assert not PROFILER.on and op.entry.__code__ is op.entry_codes[0]


def test_a_profiler_inside_history_keeps_naming_ops(fake_devices):
    """Op hooks chain: a profiler started while history records runs first, then memory's hook names the op;
    when the profiler stops, memory's hook alone runs; when history stops, none does."""
    import ember
    from ember.dispatch import OPS, PROFILER
    from ember.profiler import ProfilerActivity, profile
    seen = []
    op = OPS["neg"]
    kernel = op.kernels["cpu"]
    op.kernels["cpu"] = lambda t: (seen.append(ac.op_name(ac.current_op)), kernel(t))[1]
    try:
        M._record_memory_history(max_entries=10)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            ember.neg(ember.ones(2))
        ember.neg(ember.ones(2))
        assert PROFILER.on
        M._record_memory_history(None)
        ember.neg(ember.ones(2))
    finally:
        op.kernels["cpu"] = kernel
    assert seen == ["neg", "neg", None]
    assert [e.name for e in prof.events()].count("neg") == 1
    assert not PROFILER.on
