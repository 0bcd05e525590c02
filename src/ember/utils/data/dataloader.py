"""DataLoader: batches from a dataset, in the main process or in worker processes.

With `num_workers > 0`, each worker is a process holding its own copy of the dataset. The main
process hands out batches of indices round-robin (keeping `prefetch_factor` per worker in
flight), and hands the batches back in order, whichever worker finishes first. Every `iter()`
draws a base seed from `generator` (or ember's default generator); worker `i` seeds Python's
`random`, `ember` and NumPy's global generator from `base_seed + i`, so a run is reproducible
under `ember.manual_seed` whatever the number of workers.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import queue

from ...core import dtype as D
from ...ops.creation import empty
from . import worker as _worker
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .pin_memory import pin_memory as _pin_batch, pinner
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

# How often the main process, waiting for a batch, checks that the workers are alive (seconds).
MAIN_STATUS_CHECK_INTERVAL = 1.0
# How long shutdown lets a worker finish the batch it is building before terminating it (seconds).
WORKER_JOIN_TIMEOUT = 5.0


class _InfiniteConstantSampler(Sampler):
    """The sampler of an IterableDataset: its indices are placeholders."""

    def __iter__(self):
        while True:
            yield None


def _base_seed(generator) -> int:
    return int(empty((), dtype=D.int64).random_(generator=generator).item())


class DataLoader:
    """Iterates over `dataset` in batches.

    Args:
        dataset: a map-style `Dataset` (indexable, with `len`) or an `IterableDataset`.
        batch_size: samples per batch; None turns batching off (each sample is converted with
            `default_convert` and yielded alone).
        shuffle: a new random order every epoch (`RandomSampler(dataset, generator=generator)`).
        sampler / batch_sampler: custom index orders (exclusive with shuffle / with batch_size,
            shuffle, sampler and drop_last).
        num_workers: worker processes (0: load in the main process).
        collate_fn: merges a list of samples into a batch (default: `default_collate`).
        pin_memory: copy each batch's CPU tensors to page-locked memory, through the backend registered
            for `pin_memory_device` (default: the first available one; see `pin_memory.py`), for
            non-blocking copies to the device; without such a backend, batches are left as they are.
        pin_memory_device: the device type to pin for ('cuda'); '' picks the first available.
        drop_last: drop the last, incomplete batch.
        timeout: seconds to wait for a batch from the workers before raising (0: forever).
        worker_init_fn: called as `worker_init_fn(worker_id)` in each worker after seeding.
        multiprocessing_context: a start method name ('fork', 'spawn', 'forkserver') or context;
            default: multiprocessing's default. Use 'spawn' once CUDA is initialised.
        generator: draws the shuffle order and the workers' base seed.
        prefetch_factor: batches in flight per worker (default 2 with workers).
        persistent_workers: keep the worker processes between epochs.
        in_order: deliver batches in sampler order (False: as soon as any worker finishes one).
    """

    _guarded = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")
    __initialized = False

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator=None, *, prefetch_factor: int | None = None, persistent_workers: bool = False,
                 pin_memory_device: str = "", in_order: bool = True):
        if num_workers < 0:
            raise ValueError(f"num_workers option should be non-negative; use num_workers=0 to disable "
                             f"multiprocessing (got num_workers={num_workers})")
        if timeout < 0:
            raise ValueError(f"timeout option should be non-negative, got timeout={timeout}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing. "
                             "Let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError(f"prefetch_factor option should be a positive integer (batches in flight per worker), "
                             f"got prefetch_factor={prefetch_factor}")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle option, "
                                 f"but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler option, "
                                 f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified batch_sampler option, "
                                 f"but got batch_sampler={batch_sampler}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")

        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator = None
        self.__initialized = True

    def __setattr__(self, attr, val):
        if self.__initialized and attr in self._guarded:
            raise ValueError(f"{attr} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(attr, val)

    @property
    def multiprocessing_context(self):
        return self.__mp_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, ctx):
        if ctx is not None:
            if self.num_workers == 0:
                raise ValueError(f"multiprocessing_context can only be used with multi-process loading "
                                 f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(ctx, str):
                methods = multiprocessing.get_all_start_methods()
                if ctx not in methods:
                    raise ValueError(f"multiprocessing_context option should specify a valid start method in "
                                     f"{methods!r}, but got multiprocessing_context={ctx!r}")
                ctx = multiprocessing.get_context(ctx)
            elif not isinstance(ctx, multiprocessing.context.BaseContext):
                raise TypeError(f"multiprocessing_context option should be a valid context object or a string "
                                f"specifying the start method, but got multiprocessing_context={ctx!r}")
        self.__mp_context = ctx

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None or self._iterator._shutdown:
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator._reset(self)
        return self._iterator

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError when the iterable dataset has no length
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)


class _BaseIter:
    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._iterable = loader._iterable
        self._pin = pinner(loader.pin_memory_device) if loader.pin_memory else None
        self._num_yielded = 0
        self._sampler_iter = iter(loader._index_sampler)
        self._base_seed = _base_seed(loader.generator)

    def _reset(self, loader: DataLoader):
        self._sampler_iter = iter(loader._index_sampler)
        self._num_yielded = 0

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = _worker.make_fetcher(loader._iterable, loader.dataset, loader._auto_collation,
                                             loader.collate_fn, loader.drop_last)

    def __next__(self):
        index = next(self._sampler_iter)
        data = self._fetcher.fetch(index)
        if self._pin is not None:
            data = _pin_batch(data, self._pin)
        self._num_yielded += 1
        return data


class _MultiProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._num_workers = n = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._in_order = loader.in_order
        self._persistent = loader.persistent_workers
        self._shutdown = False
        self._result_queue = None
        self._done_event = None
        self._index_queues = []
        self._workers = []
        ctx = loader.multiprocessing_context or multiprocessing.get_context()
        try:
            self._result_queue = ctx.Queue()
            self._done_event = ctx.Event()
            for i in range(n):
                index_queue = ctx.Queue()
                index_queue.cancel_join_thread()  # never let a dead worker's queue block our exit
                w = ctx.Process(target=_worker.worker_loop, daemon=True,
                                args=(self._iterable, loader.dataset, index_queue, self._result_queue,
                                      self._done_event, loader._auto_collation, loader.collate_fn, loader.drop_last,
                                      self._base_seed, loader.worker_init_fn, i, n, os.getpid()))
                w.start()
                self._index_queues.append(index_queue)
                self._workers.append(w)
        except BaseException:
            self._shutdown_workers()
            raise
        self._reset(loader, first=True)

    def _reset(self, loader: DataLoader, first: bool = False):
        super()._reset(loader)
        n = self._num_workers
        self._send_idx = 0  # index of the next task to send
        self._rcvd_idx = 0  # index of the next batch to return
        self._task_info = {}  # task index -> (worker id,) while in flight, (worker id, data) when early
        self._tasks_outstanding = 0
        self._workers_status = [True] * n
        self._worker_cycle = itertools.cycle(range(n))
        if not first:
            # Persistent workers: results still in flight belong to the previous epoch; drop them
            # until every worker has acknowledged the new one.
            for q in self._index_queues:
                q.put(_worker._ResumeIteration())
            waiting = n
            while waiting:
                tag, _ = self._get_data()
                if isinstance(tag, _worker._ResumeIteration):
                    waiting -= 1
        for _ in range(self._prefetch_factor * n):
            self._try_put_index()

    def _try_put_index(self):
        if self._tasks_outstanding >= self._prefetch_factor * self._num_workers:
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            wid = next(self._worker_cycle)
            if self._workers_status[wid]:
                break
        else:
            return  # every worker's iterable dataset is exhausted
        self._index_queues[wid].put((self._send_idx, index))
        self._task_info[self._send_idx] = (wid,)
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _get_data(self):
        timeout = self._timeout
        if timeout > 0:
            try:
                payload = self._result_queue.get(timeout=timeout)
            except queue.Empty:
                self._check_workers()
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting for a batch "
                                   f"from its {self._num_workers} worker(s)") from None
        else:
            while True:
                try:
                    payload = self._result_queue.get(timeout=MAIN_STATUS_CHECK_INTERVAL)
                    break
                except queue.Empty:
                    self._check_workers()
        return pickle.loads(payload)

    def _check_workers(self):
        dead = [w for w, active in zip(self._workers, self._workers_status) if active and not w.is_alive()]
        if dead:
            pids = ", ".join(str(w.pid) for w in dead)
            codes = ", ".join(str(w.exitcode) for w in dead)
            self._shutdown_workers()
            raise RuntimeError(f"DataLoader worker (pid(s) {pids}) exited unexpectedly with exit code(s) {codes}")

    def _mark_worker_unavailable(self, wid: int):
        self._workers_status[wid] = False
        self._index_queues[wid].put(None)

    def __next__(self):
        if self._shutdown:
            raise StopIteration
        while True:
            # Skip tasks whose worker ran out of data before answering them.
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info is not None and (len(info) == 2 or self._workers_status[info[0]]):
                    break
                self._task_info.pop(self._rcvd_idx, None)
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown_workers()
                raise StopIteration
            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:
                del self._task_info[self._rcvd_idx]
                return self._process(info[1])
            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _worker._IterableDatasetStopIteration):
                if self._persistent:
                    self._workers_status[data.worker_id] = False
                else:
                    self._mark_worker_unavailable(data.worker_id)
                self._task_info.pop(idx, None)
                self._try_put_index()
                continue
            if idx == self._rcvd_idx or not self._in_order:
                del self._task_info[idx]
                return self._process(data)
            self._task_info[idx] += (data,)

    def _process(self, data):
        if self._in_order:
            self._rcvd_idx += 1
        self._try_put_index()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        if self._pin is not None:
            data = _pin_batch(data, self._pin)
        self._num_yielded += 1
        return data

    def _shutdown_workers(self):
        if self._shutdown:
            return
        self._shutdown = True
        if self._done_event is not None:
            self._done_event.set()
        for q in self._index_queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.join(timeout=WORKER_JOIN_TIMEOUT)
            if w.is_alive():
                w.terminate()
                w.join()
        for q in self._index_queues:
            q.close()
        if self._result_queue is not None:
            self._result_queue.cancel_join_thread()
            self._result_queue.close()

    def __del__(self):
        try:
            self._shutdown_workers()
        except Exception:  # interpreter shutdown: modules may already be gone
            pass
