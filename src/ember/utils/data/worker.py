"""What runs inside a DataLoader worker process: seeding, `get_worker_info()`, fetching batches,
and carrying exceptions back to the main process with their traceback text.

Results travel as bytes pickled here, in the worker, so that a batch that cannot be pickled
becomes an error the main process re-raises instead of a batch silently lost by the queue's
feeder thread.
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import traceback

import numpy as np

from ...random import manual_seed

__all__ = ["WorkerInfo", "get_worker_info", "ExceptionWrapper"]

# How often an idle worker checks whether the loader shut down or the main process died (seconds).
# Shutdown cannot rely on a None sent through the index queue alone: when the iterator dies in a
# garbage cycle, the queue's feeder thread may already be finalised and never send it.
WORKER_POLL_INTERVAL = 0.1

_worker_info = None


class WorkerInfo:
    """`id`, `num_workers`, `seed` and `dataset` (this worker's copy) of the current worker process."""

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        super().__setattr__(key, val)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__keys if k != "dataset")
        return f"WorkerInfo({items})"


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process: its WorkerInfo (use it to give each worker its share of an
    IterableDataset, or to seed other libraries). In the main process: None."""
    return _worker_info


class KeyErrorMessage(str):
    """KeyError quotes its message with repr(); this keeps the traceback text readable."""

    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception caught in a worker: its type and the full traceback text, re-raised in the main process."""

    def __init__(self, exc_info=None, where: str = "in background"):
        if exc_info is None:
            exc_info = sys.exc_info()
        self.exc_type = exc_info[0]
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            # an exception type whose constructor wants other arguments
            raise RuntimeError(msg) from None
        raise exception


class _IterableDatasetStopIteration:
    """A worker's iterable dataset is exhausted."""

    def __init__(self, worker_id: int):
        self.worker_id = worker_id


class _ResumeIteration:
    """Persistent workers: start a new epoch (a worker answers with this same marker)."""


class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.getitems = getattr(dataset, "__getitems__", None) if auto_collation else None

    def fetch(self, index):
        if self.getitems is not None:
            data = self.getitems(index)
        elif self.auto_collation:
            dataset = self.dataset
            data = [dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class _IterableFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.iterator = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.iterator))
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.iterator)
        return self.collate_fn(data)


def make_fetcher(iterable: bool, dataset, auto_collation, collate_fn, drop_last):
    cls = _IterableFetcher if iterable else _MapFetcher
    return cls(dataset, auto_collation, collate_fn, drop_last)


def _numpy_seed(base_seed: int, worker_id: int) -> np.ndarray:
    return np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFFFFFFFFFF]).generate_state(4)


def _dumps(idx, data, worker_id: int) -> bytes:
    try:
        return pickle.dumps((idx, data), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        wrapped = ExceptionWrapper(where=f"in DataLoader worker process {worker_id} while pickling the batch "
                                   f"to send it to the main process")
        try:
            return pickle.dumps((idx, wrapped), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # the exception type itself cannot be pickled
            wrapped.exc_type = RuntimeError
            return pickle.dumps((idx, wrapped), protocol=pickle.HIGHEST_PROTOCOL)


def worker_loop(iterable, dataset, index_queue, result_queue, done_event, auto_collation, collate_fn, drop_last,
                base_seed, init_fn, worker_id, num_workers, parent_pid):
    """The body of worker process `worker_id`: answer each `(idx, indices)` from `index_queue` with
    `(idx, batch)` (or an ExceptionWrapper) on `result_queue`, until it reads None or `done_event` is set."""
    global _worker_info
    try:
        seed = base_seed + worker_id
        random.seed(seed)
        manual_seed(seed)
        np.random.seed(_numpy_seed(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)

        init_error = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")

        iteration_end = False
        while True:
            try:
                r = index_queue.get(timeout=WORKER_POLL_INTERVAL)
            except queue.Empty:
                if done_event.is_set() or os.getppid() != parent_pid:
                    break  # the loader shut down, or the main process is gone
                continue
            if r is None:
                break
            if done_event.is_set():
                continue  # shutting down: skip what is still queued
            if isinstance(r, _ResumeIteration):
                result_queue.put(_dumps(r, None, worker_id))
                iteration_end = False
                if iterable and init_error is None:
                    try:
                        fetcher = make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        init_error = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                continue
            if iteration_end:
                continue
            idx, index = r
            if init_error is not None:
                data = init_error  # every request reports the failed start
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if iterable:
                        data = _IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                    else:
                        data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
                except Exception:
                    data = ExceptionWrapper(where=f"in DataLoader worker process {worker_id}")
            result_queue.put(_dumps(idx, data, worker_id))
            del data, idx, index, r  # free the batch before blocking on the next request
    except KeyboardInterrupt:
        pass
    if done_event.is_set() or os.getppid() != parent_pid:
        # Results nobody will read must not keep this process alive at exit.
        result_queue.cancel_join_thread()
    result_queue.close()
    # Otherwise (this worker's iterable dataset ran out) wait for the feeder thread: it may still hold
    # the result queue's write lock, shared with the other workers, for the message just sent.
    result_queue.join_thread()
