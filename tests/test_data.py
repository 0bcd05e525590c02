"""ember.utils.data: datasets, samplers, collation and the DataLoader (single and multi-process),
against torch.utils.data where the result is deterministic."""
import collections
import multiprocessing
import os
import time
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud
from helpers import assert_same, from_torch

import ember
import ember.utils.data as data
import ember.utils.data.dataloader as dataloader_module
from ember.utils.data import (
    BatchSampler, ChainDataset, ConcatDataset, DataLoader, Dataset, DistributedSampler, IterableDataset,
    RandomSampler, SequentialSampler, Subset, SubsetRandomSampler, TensorDataset, WeightedRandomSampler, WorkerInfo,
    default_collate, default_convert, get_worker_info, random_split,
)

CTX = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
Point = collections.namedtuple("Point", "x y")


def same_structure(e, t):
    """Recursively: ember result `e` equals torch result `t` (types, dtypes, values)."""
    if isinstance(t, torch.Tensor):
        assert isinstance(e, ember.Tensor), f"expected a tensor, got {type(e).__name__}"
        assert_same(e, t, rtol=0, atol=0)
    elif isinstance(t, dict):
        assert type(e) is type(t) and list(e) == list(t)
        for k in t:
            same_structure(e[k], t[k])
    elif isinstance(t, (list, tuple)):
        assert type(e) is type(t), f"{type(e).__name__} vs {type(t).__name__}"
        assert len(e) == len(t)
        for a, b in zip(e, t):
            same_structure(a, b)
    else:
        assert e == t


# ---- datasets ---------------------------------------------------------------------------

def test_tensor_dataset():
    x, y = ember.arange(10).reshape(5, 2), ember.arange(5) * 3
    ds = TensorDataset(x, y)
    assert len(ds) == 5
    a, b = ds[3]
    assert a.tolist() == [6, 7] and b.item() == 9
    with pytest.raises(AssertionError, match="Size mismatch"):
        TensorDataset(x, ember.arange(4))


def test_subset_and_concat():
    base = TensorDataset(ember.arange(10))
    sub = Subset(base, [7, 2, 5])
    assert len(sub) == 3 and sub[0][0].item() == 7 and sub[2][0].item() == 5
    assert [s[0].item() for s in sub.__getitems__([1, 0])] == [2, 7]
    cat = ConcatDataset([sub, TensorDataset(ember.arange(100, 104))])
    tcat = tud.ConcatDataset([list(range(3)), list(range(4))])
    assert cat.cumulative_sizes == tcat.cumulative_sizes == [3, 7]
    assert [cat[i][0].item() for i in range(-7, 7)] == [7, 2, 5, 100, 101, 102, 103] * 2
    with pytest.raises(ValueError, match="absolute value"):
        cat[-8]
    with pytest.raises(AssertionError):
        ConcatDataset([])
    plus = sub + base
    assert isinstance(plus, ConcatDataset) and len(plus) == 13


@pytest.mark.parametrize("lengths", [[3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [1 / 3] * 3, [0.1, 0.1, 0.8]])
def test_random_split_lengths_match_torch(lengths):
    n = 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_parts = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(0))
        e_parts = random_split(list(range(n)), lengths, generator=ember.Generator().manual_seed(0))
    assert [len(p) for p in e_parts] == [len(p) for p in t_parts]
    seen = sorted(i for p in e_parts for i in (p[k] for k in range(len(p))))
    assert seen == list(range(n))  # disjoint and complete
    again = random_split(list(range(n)), lengths, generator=ember.Generator().manual_seed(0))
    assert [p.indices for p in again] == [p.indices for p in e_parts]


def test_random_split_errors():
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(range(10), [1.5, -0.5])


# ---- collation ------------------------------------------------------------------------------

def collate_cases():
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    return {
        "tensors": [np.arange(3) * i for i in range(4)],
        "numpy": arrs,
        "numpy_scalars": [np.float64(1.5), np.float64(2.5)],
        "numpy_int_scalars": [np.int16(1), np.int16(-2)],
        "floats": [1.0, 2.5, -3.0],
        "ints": [1, 2, 3],
        "bools": [True, False],
        "strings": ["a", "bb"],
        "tuples": [(np.ones(2, np.float32), 1, "x"), (np.zeros(2, np.float32), 2, "y")],
        "dicts": [{"a": 1.0, "b": [np.int64(1), 2]}, {"a": 2.0, "b": [np.int64(3), 4]}],
        "namedtuples": [Point(1, 2.0), Point(3, 4.0)],
        "nested": [{"p": Point(np.eye(2), {"q": (1, 2)})}, {"p": Point(np.eye(2) * 2, {"q": (3, 4)})}],
    }


@pytest.mark.parametrize("case", list(collate_cases()))
def test_default_collate_matches_torch(case):
    batch = collate_cases()[case]
    if case == "tensors":
        t_batch = [torch.from_numpy(a) for a in batch]
        e_batch = [ember.from_numpy(a) for a in batch]
    else:
        t_batch = e_batch = batch
    same_structure(default_collate(e_batch), tud.default_collate(t_batch))


@pytest.mark.parametrize("case", ["numpy", "tuples", "dicts", "namedtuples", "nested", "strings"])
def test_default_convert_matches_torch(case):
    sample = collate_cases()[case][0]
    same_structure(default_convert(sample), tud.default_convert(sample))


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="numpy arrays"):
        default_collate([np.array(["a"]), np.array(["b"])])


# ---- samplers -------------------------------------------------------------------------------

def test_sequential_and_batch_sampler_match_torch():
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False), (2, 5, True)]:
        e = BatchSampler(SequentialSampler(range(n)), bs, drop)
        t = tud.BatchSampler(tud.SequentialSampler(range(n)), bs, drop)
        assert list(e) == list(t) and len(e) == len(t)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean"):
        BatchSampler(range(3), 2, 1)


def test_random_sampler():
    g = ember.Generator().manual_seed(1)
    order = list(RandomSampler(range(20), generator=g))
    assert sorted(order) == list(range(20))
    assert list(RandomSampler(range(20), generator=ember.Generator().manual_seed(1))) == order
    assert list(RandomSampler(range(20), generator=g)) != order  # the generator moved on
    ember.manual_seed(3)
    a = list(RandomSampler(range(20)))
    ember.manual_seed(3)
    assert list(RandomSampler(range(20))) == a
    s = RandomSampler(range(5), num_samples=12)
    assert len(s) == 12 and len(list(s)) == 12 and sorted(list(s)[:10]) == sorted(list(range(5)) * 2)
    r = list(RandomSampler(range(4), replacement=True, num_samples=70))
    assert len(r) == 70 and set(r) <= set(range(4))
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)


def test_subset_and_weighted_samplers():
    idx = [3, 9, 4, 11]
    assert sorted(SubsetRandomSampler(idx, generator=ember.Generator().manual_seed(0))) == sorted(idx)
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 50, generator=ember.Generator().manual_seed(0)))
    assert len(w) == 50 and set(w) == {1, 3}
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False)) == [0, 1, 2]
    with pytest.raises(ValueError, match="1d sequence"):
        WeightedRandomSampler([[1.0]], 2)


def test_distributed_sampler():
    for n, replicas, drop in [(10, 3, False), (10, 3, True), (11, 4, False), (3, 4, False), (12, 4, True)]:
        for rank in range(replicas):
            e = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop)
            t = tud.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop)
            assert list(e) == list(t) and len(e) == len(t)
    parts = [DistributedSampler(range(10), 2, r, seed=3) for r in range(2)]
    first = [list(p) for p in parts]
    assert sorted(first[0] + first[1]) == list(range(10))
    for p in parts:
        p.set_epoch(1)
    second = [list(p) for p in parts]
    assert sorted(second[0] + second[1]) == list(range(10)) and second != first
    with pytest.raises(ValueError, match="Invalid rank 2"):
        DistributedSampler(range(4), 2, 2)


# ---- DataLoader, main process ----------------------------------------------------------------------

def make_ds(n=10):
    return TensorDataset(ember.arange(n), ember.arange(n, dtype=ember.float32) * 0.5)


def first_col(loader):
    return [b[0].tolist() for b in loader]


def test_loader_sequential_batches_and_len():
    ds = make_ds()
    for bs, drop in [(3, False), (3, True), (5, False), (20, False), (20, True)]:
        loader = DataLoader(ds, batch_size=bs, drop_last=drop)
        tl = tud.DataLoader(tud.TensorDataset(torch.arange(10)), batch_size=bs, drop_last=drop)
        assert first_col(loader) == [b[0].tolist() for b in tl]
        assert len(loader) == len(tl)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.dtype is ember.int64 and y.dtype is ember.float32 and y.tolist() == [0.0, 0.5, 1.0, 1.5]


def test_loader_shuffle_reproducible():
    ds = make_ds(17)
    run = lambda seed: first_col(DataLoader(ds, batch_size=4, shuffle=True,  # noqa: E731
                                            generator=ember.Generator().manual_seed(seed)))
    a = run(0)
    assert a == run(0) and a != run(1)
    assert sorted(sum(a, [])) == list(range(17))
    loader = DataLoader(ds, batch_size=4, shuffle=True, generator=ember.Generator().manual_seed(0))
    assert first_col(loader) != first_col(loader)  # a new order each epoch
    ember.manual_seed(5)
    b = first_col(DataLoader(ds, batch_size=4, shuffle=True))
    ember.manual_seed(5)
    assert first_col(DataLoader(ds, batch_size=4, shuffle=True)) == b


def test_loader_samplers_and_collate_fn():
    ds = make_ds()
    assert first_col(DataLoader(ds, sampler=[9, 1, 4], batch_size=2)) == [[9, 1], [4]]
    assert first_col(DataLoader(ds, batch_sampler=[[0, 5], [2]])) == [[0, 5], [2]]
    unbatched = list(DataLoader(list(range(3)), batch_size=None))
    assert unbatched == [0, 1, 2]
    arrays = list(DataLoader([np.ones(2), np.zeros(2)], batch_size=None))
    assert all(isinstance(a, ember.Tensor) for a in arrays)
    sums = list(DataLoader(list(range(7)), batch_size=3, collate_fn=sum))
    assert sums == [3, 12, 6]
    nested = next(iter(DataLoader([{"a": (i, float(i)), "s": str(i)} for i in range(4)], batch_size=4)))
    assert nested["a"][0].tolist() == [0, 1, 2, 3] and nested["a"][1].dtype is ember.float64
    assert nested["s"] == ["0", "1", "2", "3"]


class GetItems(Dataset):
    def __init__(self):
        self.calls = []

    def __len__(self):
        return 6

    def __getitem__(self, i):
        raise AssertionError("__getitems__ should be used")

    def __getitems__(self, idx):
        self.calls.append(list(idx))
        return [i * 10 for i in idx]


def test_loader_uses_getitems():
    ds = GetItems()
    assert [b.tolist() for b in DataLoader(ds, batch_size=4)] == [[0, 10, 20, 30], [40, 50]]
    assert ds.calls == [[0, 1, 2, 3], [4, 5]]


def test_loader_argument_errors_match_torch():
    ds = make_ds()
    cases = [dict(num_workers=-1), dict(timeout=-1), dict(prefetch_factor=2), dict(persistent_workers=True),
             dict(sampler=[0], shuffle=True), dict(batch_sampler=[[0]], batch_size=2),
             dict(batch_size=None, drop_last=True), dict(multiprocessing_context="fork")]
    for kw in cases:
        with pytest.raises(ValueError):
            tud.DataLoader(tud.TensorDataset(torch.arange(3)), **kw)
        with pytest.raises(ValueError):
            DataLoader(ds, **kw)
    loader = DataLoader(ds)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3


class Range(IterableDataset):
    """0..n-1, split between workers by get_worker_info()."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


def test_iterable_dataset_main_process():
    assert get_worker_info() is None
    assert [b.tolist() for b in DataLoader(Range(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Range(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    assert len(DataLoader(Range(7), batch_size=3)) == 3
    chained = Range(2) + Range(3)
    assert isinstance(chained, ChainDataset) and len(chained) == 5
    assert [b.tolist() for b in DataLoader(chained, batch_size=4)] == [[0, 1, 0, 1], [2]]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Range(3), shuffle=True)


def test_pin_memory_through_a_registered_backend(monkeypatch):
    from ember.utils.data import pin_memory as pm
    monkeypatch.setattr(pm, "_PINNERS", {})
    assert first_col(DataLoader(make_ds(), batch_size=5, pin_memory=True)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    pinned = []

    def pin(t):
        pinned.append(t)
        return t.clone()

    def never(t):
        raise AssertionError("pinned for an unavailable backend")

    data.register_pin_memory("gone", never, lambda: False)
    data.register_pin_memory("fake", pin, lambda: True)
    # pin_memory_device '' (the default): the first available backend pins each batch's tensors
    assert first_col(DataLoader(make_ds(), batch_size=5, pin_memory=True)) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert len(pinned) == 4 and [t.shape for t in pinned] == [(5,)] * 4
    list(DataLoader(make_ds(), batch_size=5))
    list(DataLoader(make_ds(), batch_size=5, pin_memory=True, pin_memory_device="gone:0"))   # unavailable: as is
    assert len(pinned) == 4
    list(DataLoader(make_ds(), batch_size=5, pin_memory=True, pin_memory_device="fake"))
    assert len(pinned) == 8
    with pytest.raises(ValueError, match="no backend pins memory for 'tpu' devices"):
        iter(DataLoader(make_ds(), batch_size=5, pin_memory=True, pin_memory_device="tpu"))
    # nested batches keep their structure; non-tensors and non-CPU tensors are kept as they are
    t = ember.arange(3)
    out = pm.pin_memory({"a": [t, (t, 7)], "p": Point(t, "s")}, pin)
    assert type(out["p"]) is Point and out["p"].y == "s" and out["a"][1][1] == 7
    assert out["a"][0] is not t and out["a"][0].tolist() == [0, 1, 2] and len(pinned) == 11


# ---- DataLoader, worker processes -----------------------------------------------------------------

class Noisy(Dataset):
    """Samples that draw from ember's default generator and NumPy's global one (seeded per worker)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return ember.rand(2), np.random.rand(), -1 if info is None else info.id


def test_workers_match_single_process():
    ds = make_ds(23)
    kw = dict(batch_size=4, shuffle=True, drop_last=False)
    ref = first_col(DataLoader(ds, generator=ember.Generator().manual_seed(7), **kw))
    got = first_col(DataLoader(ds, num_workers=2, multiprocessing_context=CTX,
                               generator=ember.Generator().manual_seed(7), **kw))
    assert got == ref
    ember.manual_seed(11)
    ref = first_col(DataLoader(ds, **kw))
    ember.manual_seed(11)
    assert first_col(DataLoader(ds, num_workers=2, multiprocessing_context=CTX, **kw)) == ref


def test_worker_seeding_is_reproducible():
    def run():
        ember.manual_seed(0)
        return [(b[0].tolist(), b[1].tolist(), b[2].tolist())
                for b in DataLoader(Noisy(), batch_size=2, num_workers=2, multiprocessing_context=CTX)]
    a = run()
    assert a == run()
    assert [ids for _, _, ids in a] == [[0, 0], [1, 1]] * 2  # round-robin, delivered in order
    assert a[0][0] != a[1][0] and a[0][1] != a[1][1]  # workers have different ember and NumPy seeds


def _slow_first(i):
    if i == 0:
        time.sleep(0.15)
    return i


class SlowFirst(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        return _slow_first(i)


def test_workers_deliver_in_order_and_prefetch():
    loader = DataLoader(SlowFirst(), batch_size=1, num_workers=2, multiprocessing_context=CTX, prefetch_factor=3)
    assert [b.tolist() for b in loader] == [[i] for i in range(6)]
    unordered = DataLoader(SlowFirst(), batch_size=1, num_workers=2, multiprocessing_context=CTX, in_order=False)
    got = [b.item() for b in unordered]
    assert sorted(got) == list(range(6)) and got[0] != 0


class Failing(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            raise_deep(i)
        return i


def raise_deep(i):
    raise KeyError(f"broken sample {i}")


def test_worker_exception_reaches_main_with_traceback():
    loader = DataLoader(Failing(), batch_size=2, num_workers=2, multiprocessing_context=CTX)
    it = iter(loader)
    assert next(it).tolist() == [0, 1]
    with pytest.raises(KeyError) as info:
        next(it)
    msg = str(info.value)
    assert "Caught KeyError in DataLoader worker process 1" in msg
    assert "Traceback (most recent call last)" in msg and "raise_deep" in msg and "broken sample 3" in msg
    assert next(it).tolist() == [4, 5]  # the other batches still arrive


def _unpicklable_batch(samples):
    return [lambda: s for s in samples]


def test_unpicklable_batch_is_reported():
    loader = DataLoader(list(range(4)), batch_size=2, num_workers=1, multiprocessing_context=CTX,
                        collate_fn=_unpicklable_batch)
    with pytest.raises(Exception, match="in DataLoader worker process 0 while pickling the batch"):
        next(iter(loader))


def _bad_init(worker_id):
    raise ValueError(f"init failed in {worker_id}")


class Tagged(Dataset):
    tag = None

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.tag


def _tag_worker(worker_id):
    get_worker_info().dataset.tag = 100 + worker_id


def test_worker_init_fn():
    loader = DataLoader(Tagged(), batch_size=1, num_workers=2, multiprocessing_context=CTX, worker_init_fn=_tag_worker)
    assert [b.item() for b in loader] == [100, 101, 100, 101]
    assert Tagged.tag is None  # the main process's dataset is untouched


def test_worker_info_is_read_only():
    info = WorkerInfo(id=0, num_workers=1, seed=5, dataset=None)
    with pytest.raises(RuntimeError, match="Cannot assign"):
        info.id = 3


def test_worker_init_fn_error():
    loader = DataLoader(make_ds(4), batch_size=2, num_workers=2, multiprocessing_context=CTX, worker_init_fn=_bad_init)
    with pytest.raises(ValueError, match="init failed in 0"):
        list(loader)


def test_iterable_dataset_with_workers():
    loader = DataLoader(Range(11), batch_size=2, num_workers=2, multiprocessing_context=CTX)
    batches = [b.tolist() for b in loader]
    # worker 0 holds 0,2,4,..; worker 1 holds 1,3,5,..; batches alternate until each runs out
    assert batches == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9]]
    unbatched = sorted(b.item() if isinstance(b, ember.Tensor) else b
                       for b in DataLoader(Range(5), batch_size=None, num_workers=2, multiprocessing_context=CTX))
    assert unbatched == list(range(5))


class InfoDataset(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        yield info.id, info.num_workers, info.seed


def test_get_worker_info_fields():
    ember.manual_seed(0)
    got = list(DataLoader(InfoDataset(), batch_size=None, num_workers=2, multiprocessing_context=CTX))
    ids = [g[0] for g in got]
    assert sorted(ids) == [0, 1] and all(g[1] == 2 for g in got)
    seeds = {g[0]: g[2] for g in got}
    assert seeds[1] == seeds[0] + 1  # base_seed + worker_id


def test_persistent_workers_two_epochs():
    loader = DataLoader(make_ds(9), batch_size=2, num_workers=2, multiprocessing_context=CTX, persistent_workers=True)
    first = first_col(loader)
    it = iter(loader)
    next(it)  # leave an epoch unfinished: its prefetched batches must not leak into the next one
    assert first_col(loader) == first == [[0, 1], [2, 3], [4, 5], [6, 7], [8]]
    pids = [w.pid for w in loader._iterator._workers]
    first_col(loader)
    assert [w.pid for w in loader._iterator._workers] == pids
    loader._iterator._shutdown_workers()


def _sleepy(i):
    time.sleep(0.4)
    return i


class Sleepy(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return _sleepy(i)


def test_worker_timeout():
    loader = DataLoader(Sleepy(), batch_size=1, num_workers=1, multiprocessing_context=CTX, timeout=0.1)
    with pytest.raises(RuntimeError, match="timed out after 0.1 seconds"):
        next(iter(loader))


class Dies(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            os._exit(3)
        return i


def test_worker_dying_is_reported(monkeypatch):
    monkeypatch.setattr(dataloader_module, "MAIN_STATUS_CHECK_INTERVAL", 0.05)
    loader = DataLoader(Dies(), batch_size=1, num_workers=2, multiprocessing_context=CTX)
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(loader)


def test_spawn_context():
    ds = TensorDataset(ember.arange(6) * 2)
    loader = DataLoader(ds, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    assert first_col(loader) == [[0, 2, 4, 6], [8, 10]]


def test_torch_data_round_trip_through_workers():
    t = torch.randn(6, 3)
    ds = TensorDataset(from_torch(t))
    out = ember.cat([b[0] for b in DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context=CTX)])
    assert_same(out, t, rtol=0, atol=0)
