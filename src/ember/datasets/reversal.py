"""ReversalDataset: a synthetic sequence-to-sequence task for checking that a model can learn.

Each sample is `<BOS> a1 .. aL <SEP> aL .. a1 <EOS>` padded with `<PAD>` to the fixed length
`2 * max_len + 3`, returned as `(input_ids, target_ids)` for next-token prediction: the
sequence without its last token, and the sequence shifted left by one where every target is
-100 (cross-entropy's ignore_index) except those after `<SEP>` (the reversed symbols and `<EOS>`).

Sample `i` is a pure function of `(seed, i)`: a splitmix64 hash of the pair drives its length and
symbols, so any subset of indices is generated at once with NumPy (`batch`). With `split`, a
hash of the sequence's content decides whether it belongs to 'train' or 'val' (samples outside
the split are redrawn), so the two splits never share a sequence.
"""
from __future__ import annotations

import operator

import numpy as np

from .._tensor import Tensor
from ..ops.creation import from_numpy
from ..utils.data.dataset import Dataset

__all__ = ["ReversalDataset", "sequence_accuracy"]

IGNORE_INDEX = -100

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_SPLIT_BITS = 20  # content hashes are compared to val_fraction in units of 2**-20


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


class ReversalDataset(Dataset):
    """Args:
        num_samples: `len(dataset)`.
        num_symbols: distinct symbols (token ids 4 .. 3 + num_symbols; 0-3 are PAD, BOS, SEP, EOS).
        min_len, max_len: the number of symbols of a sample is uniform in [min_len, max_len].
        seed: different seeds give independent streams of samples.
        split: None (no filter), 'train' or 'val': keep only sequences whose content hash puts
            them in that split, a fraction `val_fraction` of all sequences going to 'val'.

    `dataset[i]` gives two int64 tensors of shape `(2 * max_len + 2,)`; `dataset[list]` and
    `batch(indices)` give shape `(len(indices), 2 * max_len + 2)`.
    """

    PAD, BOS, SEP, EOS = 0, 1, 2, 3
    NUM_SPECIAL = 4

    def __init__(self, num_samples: int, num_symbols: int = 10, min_len: int = 1, max_len: int = 8, seed: int = 0,
                 split: str | None = None, val_fraction: float = 0.1):
        if num_samples < 0:
            raise ValueError(f"ReversalDataset: num_samples must be non-negative, got {num_samples}")
        if num_symbols < 1:
            raise ValueError(f"ReversalDataset: num_symbols must be at least 1, got {num_symbols}")
        if not 1 <= min_len <= max_len:
            raise ValueError(f"ReversalDataset: need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
        if split not in (None, "train", "val"):
            raise ValueError(f"ReversalDataset: split must be None, 'train' or 'val', got {split!r}")
        if split is not None and not 0 < val_fraction < 1:
            raise ValueError(f"ReversalDataset: val_fraction must be in (0, 1), got {val_fraction}")
        self.num_samples = int(num_samples)
        self.num_symbols = int(num_symbols)
        self.min_len = int(min_len)
        self.max_len = int(max_len)
        self.seed = int(seed)
        self.split = split
        self.val_fraction = val_fraction
        self.vocab_size = self.num_symbols + self.NUM_SPECIAL
        self.seq_len = 2 * self.max_len + 2  # length of input_ids and target_ids
        self._key = _mix(np.array([self.seed & 0xFFFFFFFFFFFFFFFF], np.uint64) + _GAMMA)
        # weights of the content hash: one odd 64-bit number per symbol position
        self._weights = _mix(np.arange(1, self.max_len + 1, dtype=np.uint64) * _GAMMA) | np.uint64(1)
        self._val_cut = int(val_fraction * (1 << _SPLIT_BITS))

    def __len__(self) -> int:
        return self.num_samples

    # ---- generation -------------------------------------------------------------------------
    def _draw(self, indices: np.ndarray, attempt: int):
        """(lengths (B,), symbols (B, max_len) with zeros past each length) for these indices."""
        with np.errstate(over="ignore"):
            row = _mix(self._key ^ _mix(indices.astype(np.uint64) * _GAMMA + np.uint64(attempt)))
            counters = np.arange(1, self.max_len + 2, dtype=np.uint64) * _GAMMA
            r = _mix(row[:, None] + counters)
        span = np.uint64(self.max_len - self.min_len + 1)
        lengths = (r[:, 0] % span).astype(np.int64) + self.min_len
        symbols = (r[:, 1:] % np.uint64(self.num_symbols)).astype(np.int64) + self.NUM_SPECIAL
        symbols[np.arange(self.max_len) >= lengths[:, None]] = 0
        return lengths, symbols

    def _in_split(self, symbols: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            h = _mix((symbols.astype(np.uint64) * self._weights).sum(axis=1, dtype=np.uint64))
        is_val = (h >> np.uint64(64 - _SPLIT_BITS)).astype(np.int64) < self._val_cut
        return is_val if self.split == "val" else ~is_val

    def _check(self, indices) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = self.num_samples
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"ReversalDataset: index {int(idx[bad][0])} is out of range for {n} samples")
        return np.where(idx < 0, idx + n, idx)

    def sequences(self, indices):
        """Full padded sequences `(B, 2 * max_len + 3)` and symbol counts `(B,)` as int64 NumPy arrays."""
        idx = self._check(indices)
        lengths = np.empty(len(idx), np.int64)
        symbols = np.empty((len(idx), self.max_len), np.int64)
        todo = np.arange(len(idx))
        for attempt in range(10000):
            if not len(todo):
                break
            ln, sy = self._draw(idx[todo], attempt)
            ok = self._in_split(sy) if self.split is not None else np.ones(len(todo), bool)
            lengths[todo[ok]] = ln[ok]
            symbols[todo[ok]] = sy[ok]
            todo = todo[~ok]
        else:
            raise RuntimeError(f"ReversalDataset: could not draw sequences for split={self.split!r}; the space of "
                               f"sequences (num_symbols={self.num_symbols}, lengths {self.min_len}..{self.max_len}) "
                               f"is too small for val_fraction={self.val_fraction}")
        T = 2 * self.max_len + 3
        j = np.arange(T)[None, :]
        L = lengths[:, None]
        fwd = np.take_along_axis(symbols, np.clip(j - 1, 0, self.max_len - 1), axis=1)
        rev = np.take_along_axis(symbols, np.clip(2 * L + 1 - j, 0, self.max_len - 1), axis=1)
        seq = np.where(j <= L, fwd, np.where(j <= 2 * L + 1, rev, self.PAD))
        seq[:, 0] = self.BOS
        rows = np.arange(len(idx))
        seq[rows, lengths + 1] = self.SEP
        seq[rows, 2 * lengths + 2] = self.EOS
        return seq, lengths

    def batch(self, indices, as_numpy: bool = False):
        """`(input_ids, target_ids)` of shape `(len(indices), 2 * max_len + 2)` (int64 tensors or arrays)."""
        seq, lengths = self.sequences(indices)
        inputs = seq[:, :-1]
        targets = seq[:, 1:].copy()
        j = np.arange(self.seq_len)[None, :]
        L = lengths[:, None]
        targets[(j < L + 1) | (j > 2 * L + 1)] = IGNORE_INDEX
        inputs = np.ascontiguousarray(inputs)
        if as_numpy:
            return inputs, targets
        return from_numpy(inputs), from_numpy(targets)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray, Tensor)):
            return self.batch(np.asarray(index))
        x, y = self.batch([operator.index(index)], as_numpy=True)
        return from_numpy(x[0]), from_numpy(y[0])

    def loader(self, batch_size: int, shuffle: bool = False, drop_last: bool = False, generator=None, **kwargs):
        """A DataLoader yielding whole batches generated by `batch` (one NumPy pass per batch)."""
        from ..utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
        sampler = RandomSampler(self, generator=generator) if shuffle else SequentialSampler(self)
        return DataLoader(self, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last), **kwargs)

    def decode(self, ids) -> str:
        """A readable form of a token sequence: symbols as numbers, specials as <BOS> <SEP> <EOS>, PAD dropped."""
        names = {self.BOS: "<BOS>", self.SEP: "<SEP>", self.EOS: "<EOS>"}
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return " ".join(names.get(t, str(t - self.NUM_SPECIAL)) for t in ids if t != self.PAD and t != IGNORE_INDEX)

    @staticmethod
    def accuracy(pred, target, ignore_index: int = IGNORE_INDEX) -> float:
        """Exact-sequence accuracy (see `sequence_accuracy`)."""
        return sequence_accuracy(pred, target, ignore_index)


def sequence_accuracy(pred, target, ignore_index: int = IGNORE_INDEX) -> float:
    """Fraction of rows whose every non-ignored target is predicted exactly.

    pred: predicted ids `(B, T)`, or logits `(B, T, V)` (argmax over the last dim);
    target: `(B, T)` with `ignore_index` where nothing is scored. Tensors or NumPy arrays.
    """
    if isinstance(pred, Tensor) or isinstance(target, Tensor):
        if not isinstance(pred, Tensor):
            pred = from_numpy(np.asarray(pred))
        if not isinstance(target, Tensor):
            target = from_numpy(np.asarray(target)).to(pred.device)
        if pred.ndim == target.ndim + 1:
            pred = pred.argmax(-1)
        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"sequence_accuracy: pred ids of shape {tuple(pred.shape)} do not match target "
                             f"shape {tuple(target.shape)}")
        if target.numel() == 0:
            return float("nan")
        ok = ((pred == target) | (target == ignore_index)).all(dim=-1)
        return ok.float().mean().item()
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim == target.ndim + 1:
        pred = pred.argmax(-1)
    if pred.shape != target.shape:
        raise ValueError(f"sequence_accuracy: pred ids of shape {pred.shape} do not match target shape {target.shape}")
    if target.size == 0:
        return float("nan")
    return float(((pred == target) | (target == ignore_index)).all(axis=-1).mean())
