"""The stream-ordered caching allocator: the policy half of ember's CUDA device memory, in plain Python.

The policy follows PyTorch's CUDACachingAllocator. Device memory comes from a *raw allocator*
(`RawAllocator`: cuMemAlloc / cuMemFree / cuMemGetInfo / events, implemented by the driver layer
in `memory.py`, or by `FakeRawAllocator` in tests) in *segments*; segments are cut into *blocks*
that are handed out, cached when freed, and reused without going back to the driver.

- Request sizes are rounded up to 512 bytes. Requests of at most 1 MiB come from the *small pool*,
  whose segments are 2 MiB; larger ones from the *large pool*, whose segments are 20 MiB for
  requests under 10 MiB and the request rounded up to 2 MiB otherwise.
- A request takes the smallest cached free block of its pool and stream that fits (best fit); the
  block is split when the remainder is worth keeping (>= 512 B in the small pool, > 1 MiB in the
  large pool). On free, a block merges with free neighbours of its segment.
- Blocks belong to the stream they were allocated on: a freed block is reusable at once by later
  work on that stream (stream order makes this safe), never by other streams. When a block was
  also used on other streams (`record_stream`), `free` records an event on each of them and the
  block waits on a pending list until all those events have completed; completed events are
  collected lazily at the next `malloc`.
- When the driver has no room (or the `set_memory_fraction` cap would be exceeded), every cached
  segment that is entirely free is returned to the driver and the allocation tried once more;
  after that, `OutOfMemoryError`.
- CUDA graphs allocate from *private pools* (`begin_allocate_to_pool` / `end_allocate_to_pool` /
  `release_pool`) whose segments are never shared with the general pool.
- Statistics, summary, snapshot and allocation history use PyTorch's names and layout.

Everything is synchronous Python; one re-entrant lock guards the state, and frees that arrive
re-entrantly (from a finalizer run by the garbage collector in the middle of an allocator call)
are deferred to the end of that call.

`malloc` and `free` are written for speed (a cached 4 KiB allocate + free pair is about 2 µs of
host time, less than half what a straightforward version costs), but every shortcut is exact: each
decision (which block, where it splits, what merges), every statistic and the snapshot are what the
plain algorithm gives. See "the hot path" and "lazy frees" in CachingAllocator and "statistics" below.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import weakref
from bisect import bisect_left, insort
from collections import OrderedDict, deque

from . import alloc_context as _ac

__all__ = ["RawAllocator", "RawEvent", "RawOutOfMemory", "OutOfMemoryError", "FakeRawAllocator", "FakeEvent",
           "CachingAllocator", "Block", "Segment", "round_size", "allocation_size", "format_size",
           "MIN_BLOCK_SIZE", "SMALL_SIZE", "SMALL_BUFFER", "LARGE_BUFFER", "MIN_LARGE_ALLOC", "ROUND_LARGE"]

KiB = 1024
MiB = 1024 * 1024
GiB = 1024 * MiB

MIN_BLOCK_SIZE = 512            # every block size is a multiple of this
SMALL_SIZE = 1 * MiB            # requests up to this go to the small pool
SMALL_BUFFER = 2 * MiB          # small-pool segment size
LARGE_BUFFER = 20 * MiB         # large-pool segment size for requests under MIN_LARGE_ALLOC
MIN_LARGE_ALLOC = 10 * MiB      # requests from here on get their own segment ...
ROUND_LARGE = 2 * MiB           # ... rounded up to a multiple of this


# ---- errors -------------------------------------------------------------------------------------

class RawOutOfMemory(MemoryError):
    """Raised by `RawAllocator.malloc` when the device has no room for the request."""


class OutOfMemoryError(RuntimeError, MemoryError):
    """The caching allocator could not satisfy a request even after releasing its cache.

    Attributes (bytes): `requested` (rounded request), `segment_size` (what was asked of the
    driver), `total`, `free` (per mem_get_info), `allocated`, `reserved`, `allowed` (the
    set_memory_fraction cap, or None), `device`.
    """

    def __init__(self, message, **info):
        super().__init__(message)
        self.__dict__.update(info)


# ---- the raw allocator interface (implemented by the driver layer) ------------------------------

class RawEvent:
    """What `RawAllocator.new_event()` returns: a CUDA event (timing disabled).

    - `record(stream)`: enqueue the event on `stream` (cuEventRecord); an event can be recorded
      again after it completed (the allocator recycles events).
    - `query() -> bool`: has the work enqueued before the last record completed? (cuEventQuery)
    - `synchronize()`: block the host until it has (cuEventSynchronize).
    """

    def record(self, stream) -> None:
        raise NotImplementedError

    def query(self) -> bool:
        raise NotImplementedError

    def synchronize(self) -> None:
        raise NotImplementedError


class RawAllocator:
    """What the caching allocator needs from the driver for one device. Streams are opaque
    hashable objects to the allocator; only events ever see them.

    - `malloc(nbytes) -> int`: a device pointer to `nbytes` new bytes (cuMemAlloc); raises
      `RawOutOfMemory` when the device has no room (any other failure: any other exception).
    - `free(ptr)`: give back a pointer `malloc` returned (cuMemFree; it synchronizes the device).
    - `mem_get_info() -> (free, total)`: device bytes free and total (cuMemGetInfo).
    - `new_event() -> RawEvent`.
    """

    def malloc(self, nbytes: int) -> int:
        raise NotImplementedError

    def free(self, ptr: int) -> None:
        raise NotImplementedError

    def mem_get_info(self) -> tuple:
        raise NotImplementedError

    def new_event(self) -> RawEvent:
        raise NotImplementedError


# ---- a fake raw allocator for tests -------------------------------------------------------------

class FakeEvent(RawEvent):
    """An event whose completion the test controls: set `done = True`, or call `complete()`."""

    __slots__ = ("done", "stream", "generation", "owner")

    def __init__(self, owner=None):
        self.done = True          # a never-recorded event counts as complete, like CUDA's
        self.stream = None
        self.generation = 0       # bumped on every record: tells recordings of a recycled event apart
        self.owner = owner

    def record(self, stream) -> None:
        self.stream = stream
        self.done = False
        self.generation += 1
        if self.owner is not None:
            self.owner.num_records += 1

    def query(self) -> bool:
        if self.owner is not None:
            self.owner.num_queries += 1
        return self.done

    def synchronize(self) -> None:
        if self.owner is not None:
            self.owner.num_syncs += 1
        self.done = True

    def complete(self) -> None:
        self.done = True

    def __repr__(self):
        return f"<FakeEvent stream={self.stream!r} done={self.done} gen={self.generation}>"


class FakeRawAllocator(RawAllocator):
    """A device of `total_bytes` for tests: byte-counted capacity and increasing fake addresses
    (aligned to `alignment`, starting at `base`), with a record of the calls made.

    - `live`: {ptr: nbytes} of outstanding mallocs; `outstanding` their total bytes.
    - `num_malloc`, `num_free`, `num_failed_malloc` and `calls` (a list of ("malloc", nbytes, ptr)
      / ("free", ptr, nbytes) / ("malloc_failed", nbytes) tuples).
    - `fail_next_mallocs(k)`: make the next k mallocs raise RawOutOfMemory regardless of room.
    - `events`: every event created; `complete_all()`, `complete_stream(s)`, `pending_events()`.
    """

    def __init__(self, total_bytes: int, base: int = 0x7F00_0000_0000, alignment: int = 512):
        self.total = int(total_bytes)
        self.base = base
        self.alignment = alignment
        self._next = base
        self.live = {}
        self.outstanding = 0
        self.num_malloc = 0
        self.num_free = 0
        self.num_failed_malloc = 0
        self.num_records = 0
        self.num_queries = 0
        self.num_syncs = 0
        self.calls = []
        self.events = []
        self._fail = 0

    def fail_next_mallocs(self, k: int = 1) -> None:
        self._fail = k

    def malloc(self, nbytes: int) -> int:
        if nbytes <= 0:
            raise ValueError(f"FakeRawAllocator.malloc({nbytes})")
        if self._fail > 0 or self.outstanding + nbytes > self.total:
            if self._fail > 0:
                self._fail -= 1
            self.num_failed_malloc += 1
            self.calls.append(("malloc_failed", nbytes))
            raise RawOutOfMemory(f"fake device: cannot allocate {nbytes} bytes "
                                 f"({self.total - self.outstanding} of {self.total} free)")
        ptr = self._next
        a = self.alignment
        self._next += (nbytes + a - 1) // a * a
        self.live[ptr] = nbytes
        self.outstanding += nbytes
        self.num_malloc += 1
        self.calls.append(("malloc", nbytes, ptr))
        return ptr

    def free(self, ptr: int) -> None:
        n = self.live.pop(ptr, None)
        if n is None:
            raise ValueError(f"FakeRawAllocator.free: {ptr:#x} is not a live allocation")
        self.outstanding -= n
        self.num_free += 1
        self.calls.append(("free", ptr, n))

    def mem_get_info(self) -> tuple:
        return self.total - self.outstanding, self.total

    def new_event(self) -> FakeEvent:
        e = FakeEvent(self)
        self.events.append(e)
        return e

    def pending_events(self) -> list:
        return [e for e in self.events if not e.done]

    def complete_all(self) -> None:
        for e in self.events:
            e.done = True

    def complete_stream(self, stream) -> None:
        for e in self.events:
            if e.stream == stream:
                e.done = True


# ---- sizes --------------------------------------------------------------------------------------

def round_size(nbytes: int) -> int:
    """A request's block size: at least 512 bytes, rounded up to a multiple of 512."""
    if nbytes < MIN_BLOCK_SIZE:
        return MIN_BLOCK_SIZE
    return (nbytes + MIN_BLOCK_SIZE - 1) & -MIN_BLOCK_SIZE


def allocation_size(size: int) -> int:
    """The segment size requested from the driver when no cached block fits a (rounded) `size`."""
    if size <= SMALL_SIZE:
        return SMALL_BUFFER
    if size < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return (size + ROUND_LARGE - 1) // ROUND_LARGE * ROUND_LARGE


def format_size(n: int) -> str:
    """PyTorch's byte formatting in OOM messages ("512 bytes", "1.50 KiB", "2.00 GiB")."""
    if n <= KiB:
        return f"{n} bytes"
    if n <= MiB:
        return f"{n / KiB:.2f} KiB"
    if n <= GiB:
        return f"{n / MiB:.2f} MiB"
    return f"{n / GiB:.2f} GiB"


# ---- blocks, segments, pools --------------------------------------------------------------------

_NO_STREAM = object()     # matches no stream: BlockPool.last_stream before any lookup


class Block:
    """A piece of a segment, allocated or cached.

    `ptr`, `size` (rounded), `requested_size` (what the caller asked for; 0 once merged back into
    the cache), `stream` (the allocation stream: the block is only reused on it), `segment`,
    `allocated`, `pending` (freed but waiting for events on other streams), `stream_uses` (the
    other streams recorded with `record_stream`; `streams` adds the allocation stream), `prev` /
    `next` (neighbours inside the segment), `event_count` (outstanding events while pending),
    `handed` (ever returned by `malloc`: only blocks never handed out are recycled as new
    remainders after they have been merged away, so a stale reference to a freed block can never
    alias a live one), `frames` (while history is recorded: the allocation's context, a tuple
    (op name or None, [frame dicts]); None otherwise).
    """

    __slots__ = ("ptr", "size", "requested_size", "stream", "segment", "allocated", "pending", "stream_uses",
                 "prev", "next", "event_count", "freed_at", "frames", "handed")

    def __init__(self, ptr, size, stream, segment):
        self.ptr = ptr
        self.size = size
        self.requested_size = 0
        self.stream = stream
        self.segment = segment
        self.allocated = False
        self.pending = False
        self.stream_uses = None
        self.prev = None
        self.next = None
        self.event_count = 0
        self.freed_at = 0
        self.frames = None
        self.handed = False

    @property
    def pool(self):
        """The `BlockPool` this block belongs to (small/large, general or a private pool's)."""
        return self.segment.pool

    @property
    def streams(self) -> frozenset:
        """Every stream this block was used on: its allocation stream and the recorded ones."""
        return frozenset((self.stream,) + tuple(self.stream_uses or ()))

    def is_split(self) -> bool:
        return self.prev is not None or self.next is not None

    @property
    def state(self) -> str:
        if self.allocated:
            return "active_allocated"
        return "active_pending_free" if self.pending else "inactive"

    def __repr__(self):
        return f"<Block {self.ptr:#x} size={self.size} {self.state} stream={self.stream!r}>"


class Segment:
    """One raw allocation: `ptr`, `size`, `stream`, `pool` (a BlockPool) and the linked list of
    blocks tiling it, starting at `head` (the block at `ptr`); `frames`: as Block's, of the
    allocation that created the segment."""

    __slots__ = ("ptr", "size", "stream", "pool", "head", "frames", "alloc")

    def __init__(self, ptr, size, stream, pool, alloc=None):
        self.ptr = ptr
        self.size = size
        self.stream = stream
        self.pool = pool
        self.head = None
        self.frames = None
        self.alloc = alloc          # the CachingAllocator: its lazy free is settled before a walk

    def blocks(self):
        a = self.alloc
        if a is not None and a._lazy is not None:
            a.settle()
        b = self.head
        while b is not None:
            yield b
            b = b.next

    @property
    def is_small(self) -> bool:
        return self.pool.is_small

    def is_free(self) -> bool:
        """Entirely cached: one free, non-pending block spans it."""
        h = self.head
        return h.next is None and not h.allocated and not h.pending

    def __repr__(self):
        return f"<Segment {self.ptr:#x} size={self.size} {'small' if self.pool.is_small else 'large'}>"


class BlockPool:
    """Cached free blocks of one size class (small or large) of the general pool or of a private
    pool: per stream, a list of (size, ptr, block) kept sorted, searched with bisect. `t` is the
    index of the pool's statistics (1: small_pool, 2: large_pool).

    A stream's list, once created, stays in `free` for good (emptied, never removed or replaced),
    so `last_stream` / `last_list` can remember the last one looked up: the same stream object
    coming back finds its list without hashing it (a stream's __hash__ may be Python code)."""

    __slots__ = ("is_small", "owner", "free", "t", "last_stream", "last_list")

    def __init__(self, is_small: bool, owner=None):
        self.is_small = is_small
        self.owner = owner          # the PrivatePool, or None for the general pool
        self.free = {}              # stream -> sorted [(size, ptr, block)]
        self.t = 1 if is_small else 2
        self.last_stream = _NO_STREAM
        self.last_list = None

    def list_for(self, stream):
        """The free list of `stream`, or None if it never had one."""
        if stream is self.last_stream:
            return self.last_list
        lst = self.free.get(stream)
        if lst is not None:
            self.last_stream = stream
            self.last_list = lst
        return lst

    def insert(self, block):
        lst = self.list_for(block.stream)
        if lst is None:
            self.free[block.stream] = [(block.size, block.ptr, block)]
        else:
            insort(lst, (block.size, block.ptr, block))

    def remove(self, block):
        lst = self.list_for(block.stream)
        i = bisect_left(lst, (block.size, block.ptr))
        assert lst[i][2] is block, "caching allocator: free list out of sync"
        del lst[i]

    def __len__(self):
        return sum(len(v) for v in self.free.values())


class PrivatePool:
    """A CUDA graph's memory pool: its own small and large BlockPools; `use_count` graphs use it;
    `segment_count` segments are still held."""

    __slots__ = ("id", "use_count", "segment_count", "small", "large")

    def __init__(self, pool_id):
        self.id = pool_id
        self.use_count = 1
        self.segment_count = 0
        self.small = BlockPool(True, self)
        self.large = BlockPool(False, self)

    def __repr__(self):
        return f"<PrivatePool {self.id!r} use_count={self.use_count} segments={self.segment_count}>"


# ---- statistics ---------------------------------------------------------------------------------
#
# PyTorch reports every statistic as current / peak / allocated / freed, for all / small_pool /
# large_pool. To keep the hot path short, less is stored than reported; what is reported is exactly
# what storing everything would give:
#
# - Per pool, a `_Stat` holds `current`, `peak`, `freed` and `base` (`current` at the last
#   reset_accumulated_stats). `allocated` is derived: every increase of `current` is allocated and
#   every decrease is freed, so allocated - freed == current - base.
# - "all" holds only its peak (`_Peak`); its current, allocated and freed are the pools' sums.
# - active / active_bytes store only peaks. A block is active while allocated or pending (freed with
#   record_stream, waiting for events), so active = allocation + pending (per pool, and likewise for
#   bytes); both count up only in malloc, hence active.allocated == allocation.allocated, and
#   active.freed == allocation.freed - pending.current + pending.base. Since active >= allocation at
#   all times, active.peak >= allocation.peak: while nothing is pending, malloc only has to look at
#   the active peaks when an allocation peak moves.

class _Stat:
    __slots__ = ("current", "peak", "freed", "base")

    def __init__(self):
        self.current = self.peak = self.freed = self.base = 0

    @property
    def allocated(self) -> int:
        return self.current + self.freed - self.base


class _Peak:
    __slots__ = ("peak",)

    def __init__(self):
        self.peak = 0


_STAT_NAMES = ("allocation", "segment", "active", "inactive_split", "allocated_bytes", "reserved_bytes",
               "active_bytes", "inactive_split_bytes", "requested_bytes")
_STORED = ("allocation", "segment", "inactive_split", "allocated_bytes", "reserved_bytes", "inactive_split_bytes",
           "requested_bytes")
_POOL_NAMES = ("all", "small_pool", "large_pool")
_COUNTERS = ("num_alloc_retries", "num_ooms", "num_sync_all_streams", "num_device_alloc", "num_device_free")

_THIS_FILE = __file__
# frames of these files are not recorded in history stacks: the allocator and the storage plumbing above it
_SKIP_FILES = frozenset((__file__, os.path.join(os.path.dirname(__file__), "memory.py")))


# A family is a list [_Peak of "all", _Stat of small_pool, _Stat of large_pool], indexed by a pool's `t`.

def _inc(fam, t, n):
    s = fam[t]
    c = s.current + n
    s.current = c
    if c > s.peak:
        s.peak = c
    c = fam[1].current + fam[2].current
    a = fam[0]
    if c > a.peak:
        a.peak = c


def _dec(fam, t, n):
    s = fam[t]
    s.current -= n
    s.freed += n


def _add(fam, t, n):
    """Signed change of a family's current value in pool `t`."""
    if n > 0:
        _inc(fam, t, n)
    elif n < 0:
        _dec(fam, t, -n)


_SPARE_BLOCKS = 64      # at most this many merged-away Block objects are kept for reuse


# ---- the caching allocator ----------------------------------------------------------------------

class _SettlingLock:
    """The allocator's lock for its less frequent entry points: `with alloc._lock:` also finishes
    a lazy free (see `CachingAllocator.free`), so that everything past it sees the plain state."""

    __slots__ = ("alloc", "lock")

    def __init__(self, alloc, lock):
        self.alloc = alloc
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()
        a = self.alloc
        if a._lazy is not None and not a._busy:
            a._busy = True
            try:
                a._settle()
            finally:
                a._busy = False
        return self

    def __exit__(self, *exc):
        self.lock.release()
        return False


class CachingAllocator:
    """The caching allocator of one device over a `RawAllocator` (see the module docstring).

    Main calls: `malloc(nbytes, stream) -> Block`, `free(block)`, `record_stream(block, stream)`,
    `empty_cache()`, `set_memory_fraction(f)`, `garbage_collection_threshold` (attribute),
    `begin_allocate_to_pool(pool_id, stream=None)` / `end_allocate_to_pool(pool_id)` /
    `release_pool(pool_id)`, `memory_stats()`, `memory_summary()`, `snapshot()`,
    `record_history(...)`.
    """

    def __init__(self, raw: RawAllocator, device: int = 0):
        self.raw = raw
        self.device = device
        rlock = threading.RLock()
        self._acquire = rlock.acquire           # bound once: cheaper than `with self._lock` per call
        self._release = rlock.release
        self._lock = _SettlingLock(self, rlock)  # every other entry point: settles a lazy free first
        self._lazy = None               # a block freed by `free` whose free-list work is still to do
        self._small = BlockPool(True)
        self._large = BlockPool(False)
        self._segments = {}             # ptr -> Segment, in allocation order
        self._events = {}               # use stream -> deque[(event, block)], in record order
        self._spare_events = []
        self._deferred_events = []      # blocks freed with stream uses during a capture
        self._private = {}              # pool id -> PrivatePool
        self._captures = []             # [(pool id, PrivatePool, stream filter or None)]
        self._busy = False
        self._deferred_frees = []
        self._spare_blocks = []         # merged-away Blocks never handed out, reused for split remainders
        self._clock = 0
        self._total = None              # device capacity, from mem_get_info (cached)
        self._fraction = None
        self._limit = None              # reserved-bytes cap from set_memory_fraction
        self._gc_threshold = 0.0
        self._history = None            # deque of trace entries while history is recorded
        self._max_frames = 8
        self._free_frames = True        # record stacks of frees too (history context "all")
        self._trace_frames = True       # trace entries carry stacks (history context "alloc" or "all")
        self._recorder = None           # while recording: the finalizer that counts it out of alloc_context
        self._fam = {name: [_Peak(), _Stat(), _Stat()] for name in _STORED}
        self._fam["active"] = [_Peak(), _Peak(), _Peak()]
        self._fam["active_bytes"] = [_Peak(), _Peak(), _Peak()]
        f = self._fam
        self._f_alloc = f["allocation"]
        self._f_alloc_bytes = f["allocated_bytes"]
        self._f_requested = f["requested_bytes"]
        self._f_segment = f["segment"]
        self._f_reserved = f["reserved_bytes"]
        self._f_split = f["inactive_split"]
        self._f_split_bytes = f["inactive_split_bytes"]
        self._pending_n = [None, _Stat(), _Stat()]      # blocks freed but pending, per pool (current, base)
        self._pending_b = [None, _Stat(), _Stat()]      # their bytes
        self._npending = 0                              # pending blocks over both pools
        self._counters = dict.fromkeys(_COUNTERS, 0)
        # per pool t: the families malloc/free touch, as (this pool, other pool, all)
        self._hot = [None] + [tuple(f[name][k] for name in ("allocation", "allocated_bytes", "requested_bytes")
                                    for k in (t, 3 - t, 0)) for t in (1, 2)]
        self._hot_free = [None] + [(f["allocation"][t], f["allocated_bytes"][t], f["requested_bytes"][t])
                                   for t in (1, 2)]
        self._hot_split_bytes = [None] + [tuple(f["inactive_split_bytes"][k] for k in (t, 3 - t, 0)) for t in (1, 2)]

    # ---- configuration ----------------------------------------------------------------------

    def total_memory(self) -> int:
        if self._total is None:
            self._total = int(self.raw.mem_get_info()[1])
        return self._total

    def set_memory_fraction(self, fraction: float) -> None:
        """Cap reserved bytes at `fraction` of the device's total memory; allocations that would
        exceed it fail (after releasing the cache) with OutOfMemoryError. `None` removes the cap."""
        with self._lock:
            if fraction is None:
                self._fraction = self._limit = None
                return
            fraction = float(fraction)
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"set_memory_fraction: fraction must be in [0, 1], got {fraction}")
            self._fraction = fraction
            self._limit = int(fraction * self.total_memory())

    @property
    def memory_fraction(self):
        return self._fraction

    @property
    def garbage_collection_threshold(self) -> float:
        """In (0, 1), or 0 for off: before asking the driver for a new segment while reserved bytes
        exceed threshold * allowed (the fraction cap, else total memory), return cached free
        segments to the driver, least recently freed first, until below the threshold."""
        return self._gc_threshold

    @garbage_collection_threshold.setter
    def garbage_collection_threshold(self, value) -> None:
        value = 0.0 if value is None else float(value)
        if value != 0.0 and not 0.0 < value < 1.0:
            raise ValueError(f"garbage_collection_threshold must be in (0, 1) (or 0 for off), got {value}")
        self._gc_threshold = value

    # ---- the hot path -----------------------------------------------------------------------
    #
    # malloc and free are written out flat (no helper calls, statistics unpacked into locals) for
    # the common cases; the rare ones (new segment, record_stream, history, merging with a free
    # block on the left) go through the general helpers. Two shortcuts keep the free lists cheap
    # without changing any decision: when a split remainder or a merged block still sorts into the
    # slot of the free-list entry it replaces, that entry is overwritten in place instead of a
    # delete + insort; and Block objects merged away without ever being handed out are reused for
    # later remainders instead of constructing new ones.

    def malloc(self, nbytes: int, stream=None) -> Block:
        """A block of at least `nbytes` bytes for use on `stream` (raises OutOfMemoryError)."""
        if nbytes < 0:
            raise ValueError(f"malloc: negative size {nbytes}")
        self._acquire()
        self._busy = True
        try:
            size = (nbytes + 511) & -512 if nbytes > 512 else 512   # round_size, inlined
            lazy = self._lazy
            if lazy is not None and lazy.size == size and lazy.stream is stream and not self._events \
                    and not self._deferred_events and not self._captures and self._reuse_lazy(lazy, size):
                self._lazy = None       # the block freed last, taken back as it is
                block = lazy
                t = lazy.segment.pool.t
                bsize = size
            else:
                if lazy is not None:
                    self._settle()
                if self._events or self._deferred_events:
                    if not self._captures:   # event queries are illegal while a graph captures
                        self._process_events()
                if self._captures:
                    pool = self._capture_pool(size, stream)
                elif size <= SMALL_SIZE:
                    pool = self._small
                else:
                    pool = self._large
                if stream is pool.last_stream:          # BlockPool.list_for, inlined
                    lst = pool.last_list
                else:
                    lst = pool.list_for(stream)
                # best fit: the smallest size, then the lowest address; i = -1: a new segment's block,
                # in no free list
                if lst and (i := bisect_left(lst, (size,))) < len(lst):
                    block = lst[i][2]
                else:
                    i = -1
                    block = self._alloc_segment(size, pool, stream, nbytes)
                t = pool.t
                bsize = block.size
                remaining = bsize - size
                already_split = block.prev is not None or block.next is not None
                if remaining >= MIN_BLOCK_SIZE if t == 1 else remaining > SMALL_SIZE:
                    rptr = block.ptr + size
                    spare = self._spare_blocks
                    if spare:
                        rest = spare.pop()
                        rest.ptr = rptr
                        rest.size = remaining
                        rest.stream = stream
                        rest.segment = block.segment
                    else:
                        rest = Block(rptr, remaining, stream, block.segment)
                    nxt = block.next
                    rest.prev = block
                    rest.next = nxt
                    if nxt is not None:
                        nxt.prev = rest
                    block.next = rest
                    block.size = size
                    rest.freed_at = block.freed_at
                    e = (remaining, rptr, rest)
                    if i < 0:
                        pool.insert(rest)
                    elif i == 0 or lst[i - 1] < e:      # the remainder sorts into the taken block's slot
                        lst[i] = e
                    else:
                        del lst[i]
                        insort(lst, e)
                    if already_split:       # an inactive split block shrinks by `size`
                        s = self._hot_split_bytes[t][0]
                        s.current -= size
                        s.freed += size
                    else:                   # a new inactive split block of `remaining` bytes
                        _inc(self._f_split, t, 1)
                        _inc(self._f_split_bytes, t, remaining)
                    bsize = size
                else:
                    if i >= 0:
                        del lst[i]
                    if already_split:       # an inactive split block becomes active
                        _dec(self._f_split, t, 1)
                        _dec(self._f_split_bytes, t, bsize)
            block.allocated = True
            block.requested_size = nbytes
            block.handed = True
            # statistics: allocation +1, allocated_bytes +bsize, requested_bytes +nbytes (active and
            # active_bytes follow from them)
            a, ao, a0, b, bo, b0, r, ro, r0 = self._hot[t]
            v = a.current + 1
            a.current = v
            w = b.current + bsize
            b.current = w
            if v > a.peak or w > b.peak or v + ao.current > a0.peak or w + bo.current > b0.peak or self._npending:
                self._raise_peaks(t)
            v = r.current + nbytes
            r.current = v
            if v > r.peak:
                r.peak = v
            v += ro.current
            if v > r0.peak:
                r0.peak = v
            if self._history is not None:
                block.frames = ctx = self._context(True)
                self._trace("alloc", block.ptr, bsize, stream, ctx)
            return block
        finally:
            self._busy = False
            if self._deferred_frees:
                self._drain_then_release()
            else:
                self._release()

    def free(self, block: Block) -> None:
        """Return `block` to the cache: reusable at once on its stream, and on other streams once
        the work recorded with `record_stream` has completed."""
        self._acquire()
        if self._busy:          # re-entered from a finalizer during an allocator call
            self._deferred_frees.append(block)
            self._release()
            return
        self._busy = True
        try:
            if self._lazy is not None:
                self._settle()
            if block.stream_uses is not None or not block.allocated or self._history is not None:
                self._free(block)
                return
            # no other stream used it: straight back into its pool, merged with free neighbours
            block.allocated = False
            size = block.size
            requested = block.requested_size
            pool = block.segment.pool
            t = pool.t
            a, b, r = self._hot_free[t]
            a.current -= 1
            a.freed += 1
            b.current -= size
            b.freed += size
            r.current -= requested
            r.freed += requested
            prev = block.prev
            if prev is not None and not prev.allocated and not prev.pending:
                self._free_block(block)         # merges into `prev`: the general path
                return
            block.requested_size = 0
            block.frames = None
            c = self._clock + 1
            self._clock = c
            block.freed_at = c
            if pool.owner is None and not self._captures:
                self._lazy = block      # its free-list work waits: the next malloc may take it as it is
            else:
                self._free_structure(block)
        finally:
            self._busy = False
            if self._deferred_frees:
                self._drain_then_release()
            else:
                self._release()

    # ---- lazy frees -------------------------------------------------------------------------
    #
    # `free` counts a block down in the statistics at once but leaves its free-list work (merging
    # with a free right neighbour, inserting, the inactive-split statistics) to `_settle`, which
    # every other entry point runs first. The next `malloc` of the same rounded size on the same
    # stream instead takes the block back as it is, when the plain algorithm would have handed out
    # exactly that block again, split exactly so; it then applies the split statistics that free +
    # malloc would have changed. So an op's output freed before the next op allocates one of the
    # same size costs no free-list work at all, and no decision or statistic differs.

    def settle(self) -> None:
        """Finish a lazy free's free-list work now (every entry point but malloc and free does it;
        this is for looking at the free lists or segments' blocks directly)."""
        with self._lock:
            pass

    def _settle(self):
        block = self._lazy
        self._lazy = None
        self._free_structure(block)

    def _reuse_lazy(self, block, size) -> bool:
        """Would the plain algorithm (block's free-list work, then a best-fit malloc of `size` on its
        stream) hand out `block` again at its address and size? If so, apply the statistics that
        pair changes and return True."""
        pool = block.segment.pool
        t = pool.t
        lst = pool.last_list if block.stream is pool.last_stream else pool.list_for(block.stream)
        nxt = block.next
        merge = nxt is not None and not nxt.allocated and not nxt.pending
        if merge:       # plain: merged with nxt into one free block, then split off again
            rsize = nxt.size
            if not (rsize >= MIN_BLOCK_SIZE if t == 1 else rsize > SMALL_SIZE):
                return False    # the merged block would be handed out whole
            whole = size + rsize
        else:
            whole = size
        if lst:                 # (None: the stream never had a free block in this pool)
            i = bisect_left(lst, (size,))
            if i < len(lst) and merge and lst[i][2] is nxt:
                i += 1
            if i < len(lst):    # a block that sorts before the plain state's entry wins the best fit
                e = lst[i]
                if e[0] < whole or (e[0] == whole and e[1] < block.ptr):
                    return False
        split = block.prev is not None or (nxt.next if merge else nxt) is not None
        if merge:
            nxt.freed_at = block.freed_at
            if split:           # the inactive split block grows by `size`, then shrinks by it again
                s, so, s0 = self._hot_split_bytes[t]
                v = s.current + size
                if v > s.peak:
                    s.peak = v
                if v + so.current > s0.peak:
                    s0.peak = v + so.current
                s.freed += size
            else:               # the segment is whole for a moment, then split again
                _dec(self._f_split, t, 1)
                _dec(self._f_split_bytes, t, rsize)
                _inc(self._f_split, t, 1)
                _inc(self._f_split_bytes, t, rsize)
        elif split:             # an inactive split block for a moment
            _inc(self._f_split, t, 1)
            _inc(self._f_split_bytes, t, size)
            _dec(self._f_split, t, 1)
            _dec(self._f_split_bytes, t, size)
        return True

    def _free_structure(self, block):
        """The free-list half of a plain free: merge with a free right neighbour or insert (a free
        left neighbour was merged by `_free_block` instead), with the inactive-split statistics."""
        size = block.size
        pool = block.segment.pool
        t = pool.t
        prev = block.prev
        nxt = block.next
        if nxt is not None and not nxt.allocated and not nxt.pending:
            # absorb the free block on the right; the merged block takes its free-list slot when
            # it sorts there (it is larger, so only the next entry can be in the way)
            lst = pool.last_list if block.stream is pool.last_stream else pool.list_for(block.stream)
            nsize = nxt.size
            j = bisect_left(lst, (nsize, nxt.ptr))
            assert lst[j][2] is nxt, "caching allocator: free list out of sync"
            merged = size + nsize
            nn = nxt.next
            block.size = merged
            block.next = nn
            if nn is not None:
                nn.prev = block
            e = (merged, block.ptr, block)
            if j + 1 == len(lst) or e < lst[j + 1]:
                lst[j] = e
            else:
                del lst[j]
                insort(lst, e)
            nxt.segment = nxt.prev = nxt.next = None
            if not nxt.handed:
                spare = self._spare_blocks
                if len(spare) < _SPARE_BLOCKS:
                    spare.append(nxt)
            if prev is not None or nn is not None:      # still split: the inactive split block grows
                s, so, s0 = self._hot_split_bytes[t]
                v = s.current + size
                s.current = v
                if v > s.peak:
                    s.peak = v
                v += so.current
                if v > s0.peak:
                    s0.peak = v
            else:                                       # the segment is whole again
                _dec(self._f_split, t, 1)
                _dec(self._f_split_bytes, t, nsize)
                owner = pool.owner
                if owner is not None and owner.use_count == 0:
                    self._release_segment(block.segment)    # no graph uses this pool any more
        else:
            pool.insert(block)
            if prev is not None or nxt is not None:
                _inc(self._f_split, t, 1)
                _inc(self._f_split_bytes, t, size)
            else:
                owner = pool.owner
                if owner is not None and owner.use_count == 0:
                    self._release_segment(block.segment)

    def _raise_peaks(self, t):
        """Bring the peaks of allocation, allocated_bytes, active and active_bytes (pool `t` and
        all) up to their current values."""
        f = self._fam
        pn = self._pending_n
        pb = self._pending_b
        for fam, act, pend in ((self._f_alloc, f["active"], pn), (self._f_alloc_bytes, f["active_bytes"], pb)):
            s = fam[t]
            if s.current > s.peak:
                s.peak = s.current
            total = fam[1].current + fam[2].current
            if total > fam[0].peak:
                fam[0].peak = total
            c = s.current + pend[t].current
            if c > act[t].peak:
                act[t].peak = c
            c = total + pend[1].current + pend[2].current
            if c > act[0].peak:
                act[0].peak = c

    def _free(self, block):
        """The general free: checks, history, record_stream (pending with events)."""
        if not block.allocated:
            raise RuntimeError(f"caching allocator: free of a block that is not allocated ({block!r})")
        block.allocated = False
        t = block.segment.pool.t
        size = block.size
        _dec(self._f_alloc, t, 1)
        _dec(self._f_alloc_bytes, t, size)
        if self._history is not None:
            self._trace("free_requested", block.ptr, size, block.stream, self._context(self._free_frames))
        block.pending = True
        if block.stream_uses:
            self._pending_n[t].current += 1
            self._pending_b[t].current += size
            self._npending += 1
            if self._captures:      # recording events during a capture would add graph nodes
                self._deferred_events.append(block)
            else:
                self._insert_events(block)
        else:
            block.stream_uses = None
            _dec(self._f_requested, t, block.requested_size)
            if self._history is not None:   # traced before the merge: the freed block's own address and size
                self._trace("free_completed", block.ptr, size, block.stream, self._context(False))
            self._free_block(block)

    def _drain_then_release(self):
        """malloc's and free's exit when a finalizer freed blocks during the call: free them, unlock."""
        try:
            self._drain_deferred_frees()
        finally:
            self._release()

    def _drain_deferred_frees(self):
        self._busy = True
        try:
            if self._lazy is not None:
                self._settle()
            while self._deferred_frees:
                self._free(self._deferred_frees.pop())
        finally:
            self._busy = False

    def record_stream(self, block: Block, stream) -> None:
        """Mark `block` as used by work on `stream` (other than its allocation stream)."""
        with self._lock:
            if not block.allocated:
                raise RuntimeError(f"record_stream on a block that is not allocated ({block!r})")
            if stream == block.stream:
                return
            if block.stream_uses is None:
                block.stream_uses = {stream}
            else:
                block.stream_uses.add(stream)

    # ---- internals: blocks ------------------------------------------------------------------

    def _absorb(self, left, right):
        """Merge the free block `right` into its left neighbour `left`: `left` grows by its size and
        `right` leaves the segment's list (kept as a spare Block if it was never handed out)."""
        left.size += right.size
        nn = right.next
        left.next = nn
        if nn is not None:
            nn.prev = left
        right.segment = right.prev = right.next = None
        if not right.handed and len(self._spare_blocks) < _SPARE_BLOCKS:
            self._spare_blocks.append(right)

    def _free_block(self, block):
        """Put a freed block (no outstanding uses; its allocation/requested statistics already
        counted down) into its pool, merged with free neighbours. The leftmost block survives a
        merge (so `seg.head` stays valid); the merged block, larger than every entry it replaces,
        takes the last of their free-list slots when it still sorts there."""
        seg = block.segment
        pool = seg.pool
        t = pool.t
        lst = pool.list_for(block.stream)
        net_n = 0
        net_b = 0
        slot = -1                   # the free-list entry the merged block may overwrite
        nxt = block.next
        if nxt is not None and not nxt.allocated and not nxt.pending:
            slot = bisect_left(lst, (nxt.size, nxt.ptr))
            assert lst[slot][2] is nxt, "caching allocator: free list out of sync"
            net_n -= 1
            net_b -= nxt.size
            self._absorb(block, nxt)
        prev = block.prev
        if prev is not None and not prev.allocated and not prev.pending:
            j = bisect_left(lst, (prev.size, prev.ptr))
            assert lst[j][2] is prev, "caching allocator: free list out of sync"
            if slot >= 0:           # two entries give way to one: drop the earlier, keep the later slot
                del lst[min(slot, j)]
                j = max(slot, j) - 1
            slot = j
            net_n -= 1
            net_b -= prev.size
            block.allocated = block.pending = False
            block.requested_size = 0
            block.stream_uses = block.frames = None
            self._absorb(prev, block)
            block = prev
        block.allocated = False
        block.pending = False
        block.requested_size = 0
        block.stream_uses = None
        block.frames = None
        self._clock += 1
        block.freed_at = self._clock
        if slot < 0:
            pool.insert(block)
        else:
            e = (block.size, block.ptr, block)
            if slot + 1 == len(lst) or e < lst[slot + 1]:
                lst[slot] = e
            else:
                del lst[slot]
                insort(lst, e)
        if block.prev is not None or block.next is not None:
            net_n += 1
            net_b += block.size
        if net_n:
            _add(self._f_split, t, net_n)
        if net_b:
            _add(self._f_split_bytes, t, net_b)
        owner = pool.owner
        if owner is not None and owner.use_count == 0 and block.prev is None and block.next is None:
            self._release_segment(seg)      # no graph uses this pool any more

    def _complete_pending(self, block):
        """The events of a block freed with stream uses have all completed: it stops being active."""
        t = block.segment.pool.t
        self._pending_n[t].current -= 1
        self._pending_b[t].current -= block.size
        self._npending -= 1
        _dec(self._f_requested, t, block.requested_size)
        if self._history is not None:       # traced before the merge: the freed block's own address and size
            self._trace("free_completed", block.ptr, block.size, block.stream, self._context(False))
        self._free_block(block)

    def _insert_events(self, block):
        uses = block.stream_uses
        block.stream_uses = None
        for s in uses:
            ev = self._spare_events.pop() if self._spare_events else self.raw.new_event()
            ev.record(s)
            block.event_count += 1
            q = self._events.get(s)
            if q is None:
                q = self._events[s] = deque()
            q.append((ev, block))

    def _process_events(self):
        """Release pending blocks whose events have all completed (events on one stream complete
        in record order, so each stream's queue is scanned only up to its first busy event)."""
        if self._deferred_events:
            blocks, self._deferred_events = self._deferred_events, []
            for b in blocks:
                self._insert_events(b)
        done_streams = []
        for s, q in self._events.items():
            while q:
                ev, b = q[0]
                if not ev.query():
                    break
                q.popleft()
                self._spare_events.append(ev)
                b.event_count -= 1
                if b.event_count == 0:
                    self._complete_pending(b)
            if not q:
                done_streams.append(s)
        for s in done_streams:
            del self._events[s]

    def process_events(self) -> None:
        """Collect completed events now (malloc does this by itself)."""
        with self._lock:
            if self._captures:
                return
            self._process_events()

    def synchronize_and_free_events(self) -> None:
        """Wait for every outstanding event and release the blocks they held back."""
        with self._lock:
            self._sync_and_free_events()

    def _sync_and_free_events(self):
        if self._captures:
            raise RuntimeError("caching allocator: cannot synchronize events while a CUDA graph is being captured")
        self._counters["num_sync_all_streams"] += 1
        if self._deferred_events:
            blocks, self._deferred_events = self._deferred_events, []
            for b in blocks:
                self._insert_events(b)
        events, self._events = self._events, {}
        for q in events.values():
            for ev, b in q:
                ev.synchronize()
                self._spare_events.append(ev)
                b.event_count -= 1
                if b.event_count == 0:
                    self._complete_pending(b)

    # ---- internals: segments ----------------------------------------------------------------

    def _capture_pool(self, size, stream):
        for _pid, pp, filt in self._captures:
            if filt is None or filt(stream):
                return pp.small if size <= SMALL_SIZE else pp.large
        return self._small if size <= SMALL_SIZE else self._large

    def _alloc_segment(self, size, pool, stream, nbytes):
        """A new segment for a request no cached block fits: GC, driver, release cache + retry, OOM."""
        alloc_size = allocation_size(size)
        if self._gc_threshold > 0.0:
            self._garbage_collect()
        seg = self._raw_segment(alloc_size, pool, stream)
        if seg is None and not self._captures:      # releasing the cache syncs: not during a capture
            self._release_cached_blocks()
            self._counters["num_alloc_retries"] += 1
            seg = self._raw_segment(alloc_size, pool, stream)
        if seg is None:
            self._counters["num_ooms"] += 1
            if self._history is not None:
                self._trace("oom", 0, alloc_size, stream, self._context(True))
            raise self._oom_error(size, alloc_size)
        return seg.head

    def _reserved(self):
        f = self._f_reserved
        return f[1].current + f[2].current

    def _raw_segment(self, alloc_size, pool, stream):
        if self._limit is not None and self._reserved() + alloc_size > self._limit:
            return None
        try:
            ptr = self.raw.malloc(alloc_size)
        except RawOutOfMemory:
            return None
        seg = Segment(ptr, alloc_size, stream, pool, self)
        seg.head = Block(ptr, alloc_size, stream, seg)
        self._segments[ptr] = seg
        t = pool.t
        _inc(self._f_segment, t, 1)
        _inc(self._f_reserved, t, alloc_size)
        self._counters["num_device_alloc"] += 1
        if pool.owner is not None:
            pool.owner.segment_count += 1
        if self._history is not None:
            seg.frames = ctx = self._context(True)
            self._trace("segment_alloc", ptr, alloc_size, stream, ctx)
        return seg

    def _release_segment(self, seg):
        head = seg.head
        assert head.next is None and not head.allocated and not head.pending
        pool = seg.pool
        pool.remove(head)
        self.raw.free(seg.ptr)
        del self._segments[seg.ptr]
        head.segment = None
        t = pool.t
        _dec(self._f_segment, t, 1)
        _dec(self._f_reserved, t, seg.size)
        self._counters["num_device_free"] += 1
        owner = pool.owner
        if owner is not None:
            owner.segment_count -= 1
            if owner.segment_count == 0 and owner.use_count == 0:
                self._private.pop(owner.id, None)
        if self._history is not None:
            self._trace("segment_free", seg.ptr, seg.size, seg.stream, self._context(self._free_frames))

    def _release_cached_blocks(self):
        """Return every entirely free segment of the general pool and of pools no graph uses."""
        self._sync_and_free_events()
        for seg in list(self._segments.values()):
            owner = seg.pool.owner
            if owner is not None and owner.use_count > 0:
                continue
            if seg.is_free():
                self._release_segment(seg)
        for pid in [pid for pid, pp in self._private.items() if pp.use_count == 0 and pp.segment_count == 0]:
            del self._private[pid]

    def _garbage_collect(self):
        allowed = self._limit if self._limit is not None else self.total_memory()
        threshold = self._gc_threshold * allowed
        reserved = self._reserved()
        if reserved <= threshold:
            return
        target = reserved - threshold
        free_segs = [seg for seg in self._segments.values() if seg.pool.owner is None and seg.is_free()]
        free_segs.sort(key=lambda seg: seg.head.freed_at)
        reclaimed = 0
        for seg in free_segs:
            if reclaimed >= target:
                break
            reclaimed += seg.size
            self._release_segment(seg)

    def _oom_error(self, size, alloc_size):
        try:
            free, total = (int(x) for x in self.raw.mem_get_info())
        except Exception:  # noqa: BLE001 - the message matters more than this number
            free, total = -1, self.total_memory()
        allocated = self.memory_allocated()
        reserved = self._reserved()
        in_private = sum(b.size for seg in self._segments.values() if seg.pool.owner is not None
                         for b in seg.blocks() if b.allocated)
        what = format_size(size)
        if alloc_size != size:
            what += f" (in a new {format_size(alloc_size)} segment)"
        allowed = ""
        if self._limit is not None:
            allowed = (f"{format_size(self._limit)} allowed by the memory fraction {self._fraction:g}, "
                       f"so at most {format_size(max(self._limit - reserved, 0))} more can be reserved. ")
        private = (f", with {format_size(in_private)} allocated in private pools (e.g., CUDA Graphs)"
                   if in_private else "")
        msg = (f"CUDA out of memory. Tried to allocate {what}. GPU {self.device} has a total capacity of "
               f"{format_size(total)} of which {format_size(max(free, 0))} is free. {allowed}"
               f"Of the allocated memory {format_size(allocated)} is allocated by ember{private}, and "
               f"{format_size(reserved - allocated)} is reserved by ember but unallocated. If reserved but "
               f"unallocated memory is large, freeing tensors and calling ember.cuda.empty_cache() may help.")
        return OutOfMemoryError(msg, requested=size, segment_size=alloc_size, total=total, free=free,
                                allocated=allocated, reserved=reserved, allowed=self._limit, device=self.device)

    # ---- cache control ----------------------------------------------------------------------

    def empty_cache(self) -> None:
        """Wait for pending frees, then return every entirely free cached segment to the driver
        (segments with a live block stay; so do those of private pools still used by a graph)."""
        with self._lock:
            self._busy = True
            try:
                self._release_cached_blocks()
            finally:
                self._busy = False
                if self._deferred_frees:
                    self._drain_deferred_frees()

    release_cached_blocks = empty_cache

    # ---- private pools (CUDA graphs) --------------------------------------------------------

    def begin_allocate_to_pool(self, pool_id, stream=None, *, filter=None) -> None:  # noqa: A002
        """Route later allocations (on `stream` if given, or those for which `filter(stream)` is
        true, else all) to the private pool `pool_id`, created on first use; each call counts one
        more user of the pool (the graph being captured), dropped by `release_pool`."""
        with self._lock:
            if any(pid == pool_id for pid, _pp, _f in self._captures):
                raise RuntimeError(f"begin_allocate_to_pool: already allocating to pool {pool_id!r}")
            pp = self._private.get(pool_id)
            if pp is None:
                pp = self._private[pool_id] = PrivatePool(pool_id)
            else:
                pp.use_count += 1
            if filter is None and stream is not None:
                def filter(s, _target=stream):  # noqa: A001
                    return s == _target
            self._captures.append((pool_id, pp, filter))

    def end_allocate_to_pool(self, pool_id) -> None:
        """Stop routing allocations to `pool_id` (its blocks stay in it, and return to it when freed)."""
        with self._lock:
            for i, (pid, _pp, _f) in enumerate(self._captures):
                if pid == pool_id:
                    del self._captures[i]
                    return
            raise RuntimeError(f"end_allocate_to_pool: not allocating to pool {pool_id!r}")

    def release_pool(self, pool_id) -> None:
        """One user (graph) of `pool_id` is gone. When none is left, the pool's free segments go
        back to the driver now, and the others as soon as their last block is freed."""
        with self._lock:
            pp = self._private.get(pool_id)
            if pp is None or pp.use_count <= 0:
                raise RuntimeError(f"release_pool: no graph holds pool {pool_id!r}")
            pp.use_count -= 1
            if pp.use_count:
                return
            self._busy = True
            try:
                for seg in [s for s in self._segments.values() if s.pool.owner is pp and s.is_free()]:
                    self._release_segment(seg)
                if pp.segment_count == 0:
                    self._private.pop(pool_id, None)
            finally:
                self._busy = False
                if self._deferred_frees:
                    self._drain_deferred_frees()

    def private_pools(self) -> dict:
        """{pool id: (use_count, segment_count)} of the live private pools."""
        with self._lock:
            return {pid: (pp.use_count, pp.segment_count) for pid, pp in self._private.items()}

    # ---- statistics -------------------------------------------------------------------------

    def memory_stats(self) -> OrderedDict:
        """PyTorch's flat statistics: "<stat>.<all|small_pool|large_pool>.<current|peak|allocated|
        freed>" and the counters num_alloc_retries, num_ooms, num_sync_all_streams,
        num_device_alloc, num_device_free; sorted by key."""
        with self._lock:
            out = []
            for name in _STAT_NAMES:
                for pname, (cur, peak, alloc, freed) in zip(_POOL_NAMES, self._values(name)):
                    p = f"{name}.{pname}."
                    out += [(p + "current", cur), (p + "peak", peak), (p + "allocated", alloc), (p + "freed", freed)]
            out += list(self._counters.items())
            out.sort()
            return OrderedDict(out)

    def _values(self, name):
        """[(current, peak, allocated, freed) of all, small_pool, large_pool] of one statistic."""
        fam = self._fam[name]
        rows = [None]
        for t in (1, 2):
            if name in ("active", "active_bytes"):
                a = (self._f_alloc if name == "active" else self._f_alloc_bytes)[t]
                p = (self._pending_n if name == "active" else self._pending_b)[t]
                rows.append((a.current + p.current, fam[t].peak, a.allocated, a.freed - p.current + p.base))
            else:
                s = fam[t]
                rows.append((s.current, s.peak, s.allocated, s.freed))
        rows[0] = (rows[1][0] + rows[2][0], fam[0].peak, rows[1][2] + rows[2][2], rows[1][3] + rows[2][3])
        return rows

    def reset_peak_stats(self) -> None:
        with self._lock:
            for name in _STAT_NAMES:
                fam = self._fam[name]
                for k, (cur, _peak, _alloc, _freed) in enumerate(self._values(name)):
                    fam[k].peak = cur

    def reset_accumulated_stats(self) -> None:
        with self._lock:
            for name in _STORED:
                for s in self._fam[name][1:]:
                    s.freed = 0
                    s.base = s.current
            for s in self._pending_n[1:] + self._pending_b[1:]:
                s.base = s.current
            for k in self._counters:
                self._counters[k] = 0

    def memory_allocated(self) -> int:
        f = self._f_alloc_bytes
        return f[1].current + f[2].current

    def max_memory_allocated(self) -> int:
        return self._f_alloc_bytes[0].peak

    def memory_reserved(self) -> int:
        return self._reserved()

    def max_memory_reserved(self) -> int:
        return self._f_reserved[0].peak

    def memory_summary(self, abbreviated: bool = False) -> str:
        """torch.cuda.memory_summary()'s table, line for line (75 columns between the '|'s): the
        header (ember instead of PyTorch, the rest at torch's columns), the CUDA OOMs / cudaMalloc
        retries line, then per metric a row for all and (unless `abbreviated`) the large and small
        pools, sizes in B/KiB/MiB/... and counts in units/K/M as torch picks them (from the row's
        "all" value), then Oversize allocations / Oversize GPU segments (always 0: ember has no
        max_split_size, so no block is oversize)."""
        stats = self.memory_stats()

        def fmt_size(sz, pref_sz):
            prefix = "B  "
            for new_prefix in ("KiB", "MiB", "GiB", "TiB", "PiB"):
                if pref_sz < 768 * 1024:
                    break
                prefix = new_prefix
                sz //= 1024
                pref_sz /= 1024
            return f"{sz:6d} {prefix}"

        def fmt_count(cnt, pref_cnt):
            prefix = " "
            for new_prefix in ("K", "M"):
                if pref_cnt < 750 * 1000:
                    break
                prefix = new_prefix
                cnt //= 1000
                pref_cnt /= 1000
            return f"{cnt:7d} {prefix} "

        rows = (("allocated_bytes", "Allocated memory", fmt_size), ("active_bytes", "Active memory", fmt_size),
                ("requested_bytes", "Requested memory", fmt_size),
                ("reserved_bytes", "GPU reserved memory", fmt_size),
                ("inactive_split_bytes", "Non-releasable memory", fmt_size),
                ("allocation", "Allocations", fmt_count), ("active", "Active allocs", fmt_count),
                ("segment", "GPU reserved segments", fmt_count),
                ("inactive_split", "Non-releasable allocs", fmt_count))
        width = 75
        lines = ["=" * width,
                 f" {'':18} ember CUDA memory summary, device ID {self.device:<17d} ",
                 "-" * width,
                 f"  {'':9} CUDA OOMs: {stats['num_ooms']:<12d} | {'':6} cudaMalloc retries: "
                 f"{stats['num_alloc_retries']:<8d}  ",
                 "=" * width,
                 "        Metric         | Cur Usage  | Peak Usage | Tot Alloc  | Tot Freed  "]
        for key, title, fmt in rows:
            lines.append("-" * width)
            subs = [("all", title)]
            if not abbreviated:
                subs += [("large_pool", "      from large pool"), ("small_pool", "      from small pool")]
            ref = None
            for sub, label in subs:
                p = f"{key}.{sub}."
                vals = [stats[p + f] for f in ("current", "peak", "allocated", "freed")]
                if ref is None:
                    ref = vals
                cells = " | ".join(fmt(v, r) for v, r in zip(vals, ref))
                lines.append(f" {label:<21} | {cells} ")
        for key, title in (("oversize_allocations", "Oversize allocations"),
                           ("oversize_segments", "Oversize GPU segments")):
            lines.append("-" * width)
            vals = [stats.get(f"{key}.{f}", 0) for f in ("current", "peak", "allocated", "freed")]
            cells = " | ".join(fmt_count(v, v) for v in vals)
            lines.append(f" {title:<21} | {cells} ")
        lines.append("=" * width)
        return "|" + "|\n|".join(lines) + "|\n"

    # ---- snapshot and history ---------------------------------------------------------------
    #
    # While history is recorded (`record_history`), every allocator event appends a trace entry and
    # allocated blocks (and segments) carry their allocation's context in `frames`: a tuple (op, frames)
    # with the op from `alloc_context.current_op` and up to `max_frames` Python frames. All of it runs
    # under `if self._history is not None`; with history off the hot path reads nothing more.

    def segments(self) -> list:
        """The live Segment objects, by address."""
        with self._lock:
            return sorted(self._segments.values(), key=lambda s: s.ptr)

    def snapshot(self) -> list:
        """torch.cuda.memory_snapshot()-style: one dict per segment (device, address, total_size,
        allocated_size, active_size, requested_size, stream, segment_type, segment_pool_id,
        is_expandable, and frames + op when recorded) with its blocks (address, size,
        requested_size, state, and, for blocks allocated while history was recorded, frames and op:
        the ember op that allocated it), by address."""
        with self._lock:
            out = []
            for seg in sorted(self._segments.values(), key=lambda s: s.ptr):
                owner = seg.pool.owner
                blocks = []
                allocated = active = requested = 0
                for b in seg.blocks():
                    st = b.state
                    if b.allocated:
                        allocated += b.size
                    if st != "inactive":
                        active += b.size
                        requested += b.requested_size
                    d = {"address": b.ptr, "size": b.size, "requested_size": b.requested_size, "state": st}
                    if b.frames is not None:
                        d["op"], d["frames"] = b.frames
                    blocks.append(d)
                entry = {"device": self.device, "address": seg.ptr, "total_size": seg.size,
                         "allocated_size": allocated, "active_size": active, "requested_size": requested,
                         "stream": seg.stream, "segment_type": "small" if seg.pool.is_small else "large",
                         "segment_pool_id": owner.id if owner is not None else (0, 0), "is_expandable": False,
                         "blocks": blocks}
                if seg.frames is not None:
                    entry["op"], entry["frames"] = seg.frames
                out.append(entry)
            return out

    def record_history(self, enabled=True, max_entries: int = sys.maxsize, max_frames: int = 8,
                       context="all") -> None:
        """Start, or stop and forget, recording allocator history (torch's _record_memory_history).

        `enabled`: True or "all" keeps a trace entry per alloc / free_requested / free_completed /
        segment_alloc / segment_free / oom, at most `max_entries` of them (the oldest are dropped);
        "state" keeps no trace, only the context of the blocks allocated from now on; False or None
        stops. `context`: which events get up to `max_frames` Python frames (innermost first, the
        allocator's own frames left out): "all" allocations and frees, "alloc" allocations,
        "state" only the allocated blocks (not the trace), None none. Every entry and context
        records the op running (`alloc_context.current_op`) whatever `context` says."""
        if enabled not in (True, False, None, "all", "state"):
            raise ValueError(f"record_history: enabled must be 'all', 'state', None or a bool, got {enabled!r}")
        if context not in (None, "state", "alloc", "all"):
            raise ValueError(f"record_history: context must be 'all', 'alloc', 'state' or None, got {context!r}")
        with self._lock:
            if not enabled:
                self._history = None
                if self._recorder is not None:
                    self._recorder()            # alloc_context.recording counts this allocator out
                    self._recorder = None
                return
            self._max_frames = int(max_frames) if context is not None else 0
            self._free_frames = context == "all"
            self._trace_frames = context in ("alloc", "all")
            maxlen = 0 if enabled == "state" else None if max_entries >= sys.maxsize else max(int(max_entries), 0)
            old = self._history or ()
            self._history = deque(old, maxlen=maxlen)
            if self._recorder is None:
                _ac._set_recording(+1)
                # counted out when history stops, or when this allocator is collected while recording
                self._recorder = weakref.finalize(self, _ac._set_recording, -1)

    @property
    def recording_history(self) -> bool:
        return self._history is not None

    def history(self) -> list:
        """The recorded trace entries, oldest first: dicts with action, addr, size, stream, frames
        (innermost first: {filename, line, name}), op (the ember op running, or None), time_us
        (wall clock) and seq (the allocator's event counter)."""
        with self._lock:
            return list(self._history or ())

    def full_snapshot(self) -> dict:
        """torch.cuda.memory._snapshot()-style: {"segments": snapshot(), "device_traces": [history()]}."""
        with self._lock:
            return {"segments": self.snapshot(), "device_traces": [self.history()]}

    def _context(self, frames):
        """(op, frames) of an event: the running op's name, and the Python stack if `frames`."""
        op = _ac.current_op
        if op is not None and op.__class__ is not str:
            op = _ac.op_name(op)
        return op, self._frames() if frames else []

    def _frames(self):
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename in _SKIP_FILES:
            f = f.f_back
        if f is None or self._max_frames <= 0:
            return []
        summary = traceback.StackSummary.extract(traceback.walk_stack(f), limit=self._max_frames, lookup_lines=False)
        return [{"filename": fs.filename, "line": fs.lineno, "name": fs.name} for fs in summary]

    def _trace(self, action, addr, size, stream, ctx):
        self._clock += 1
        op, frames = ctx
        self._history.append({"action": action, "addr": addr, "size": size, "stream": stream,
                              "frames": frames if self._trace_frames else [], "op": op,
                              "time_us": time.time_ns() // 1000, "seq": self._clock})

    def __repr__(self):
        return (f"<CachingAllocator device={self.device} allocated={self.memory_allocated()} "
                f"reserved={self.memory_reserved()} segments={len(self._segments)}>")
