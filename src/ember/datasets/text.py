"""Text: a character tokenizer, a byte-level BPE tokenizer (over the optional `tokenizers`
library) and TextDataset, fixed-length blocks of a token stream for language modelling."""
from __future__ import annotations

import json
import operator
import os

import numpy as np

from .._tensor import Tensor
from ..ops.creation import from_numpy
from ..ops.random import randint
from ..utils.data.dataset import Dataset
from ._optional import optional_library

__all__ = ["CharTokenizer", "BPETokenizer", "TextDataset"]


def _id_list(ids) -> list:
    if isinstance(ids, (Tensor, np.ndarray)):
        return ids.tolist()
    return list(ids)


class CharTokenizer:
    """One token per character: the vocabulary is the text's distinct characters in sorted order.

    `CharTokenizer(text)`; `encode(str) -> list[int]`, `encode_array(str) -> int64 ndarray`,
    `decode(ids) -> str`, `vocab_size`, `save(path)` / `CharTokenizer.load(path)` (JSON).
    """

    def __init__(self, text: str = "", *, chars=None):
        chars = sorted(set(text)) if chars is None else list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer: chars must be distinct single characters")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.itos = dict(enumerate(chars))
        codes = np.array([ord(c) for c in chars], np.uint32)
        self._order = np.argsort(codes).astype(np.int64)
        self._sorted_codes = codes[self._order]

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        pos = np.searchsorted(self._sorted_codes, codes)
        found = pos < len(self._sorted_codes)
        found[found] = self._sorted_codes[pos[found]] == codes[found]
        if not found.all():
            bad = chr(int(codes[np.argmin(found)]))
            raise ValueError(f"CharTokenizer.encode: character {bad!r} is not in the vocabulary of "
                             f"{self.vocab_size} characters")
        return self._order[pos]

    def encode(self, text: str) -> list:
        return self.encode_array(text).tolist()

    def decode(self, ids) -> str:
        itos = self.itos
        try:
            return "".join([itos[i] for i in _id_list(ids)])
        except KeyError as e:
            raise ValueError(f"CharTokenizer.decode: id {e.args[0]} is outside the vocabulary "
                             f"(0..{self.vocab_size - 1})") from None

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"type": "CharTokenizer", "chars": self.chars}, f, ensure_ascii=False)

    @classmethod
    def load(cls, path) -> "CharTokenizer":
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if state.get("type") != "CharTokenizer":
            raise ValueError(f"{path} is not a CharTokenizer file (its type is {state.get('type')!r})")
        return cls(chars=state["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


def _tokenizers():
    with optional_library("BPETokenizer", "`tokenizers`", "tokenizers"):
        import tokenizers
    return tokenizers


class BPETokenizer:
    """Byte-level BPE (GPT-2 style) from the `tokenizers` library: every text round-trips exactly.

    Train with `BPETokenizer.train(files, vocab_size)` (or `train_from_iterator`); vocab_size
    counts the 256 byte tokens, the merges and the special tokens.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @classmethod
    def _new(cls, vocab_size: int, min_frequency: int, special_tokens):
        tk = _tokenizers()
        tok = tk.Tokenizer(tk.models.BPE())
        tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                         special_tokens=list(special_tokens), show_progress=False,
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet())
        return tok, trainer

    @classmethod
    def train(cls, files, vocab_size: int, *, min_frequency: int = 2, special_tokens=()) -> "BPETokenizer":
        files = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
        for f in files:
            if not os.path.isfile(f):
                raise FileNotFoundError(f"BPETokenizer.train: text file not found: {f}")
        tok, trainer = cls._new(vocab_size, min_frequency, special_tokens)
        tok.train(files, trainer)
        return cls(tok)

    @classmethod
    def train_from_iterator(cls, texts, vocab_size: int, *, min_frequency: int = 2,
                            special_tokens=()) -> "BPETokenizer":
        tok, trainer = cls._new(vocab_size, min_frequency, special_tokens)
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int64)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(_id_list(ids), skip_special_tokens=False)

    def token_to_id(self, token: str):
        return self.tokenizer.token_to_id(token)

    def id_to_token(self, i: int):
        return self.tokenizer.id_to_token(i)

    def save(self, path) -> None:
        self.tokenizer.save(os.fspath(path))

    @classmethod
    def load(cls, path) -> "BPETokenizer":
        tk = _tokenizers()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"BPETokenizer.load: tokenizer file not found: {path}")
        return cls(tk.Tokenizer.from_file(os.fspath(path)))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


class TextDataset(Dataset):
    """Language-modelling blocks of a token stream: sample `i` is `(x, y)` with
    `x = tokens[s : s + block_size]`, `y = tokens[s + 1 : s + block_size + 1]`, `s = i * stride`.

    Args:
        tokens: token ids (list, NumPy array or tensor), kept as one int64 array.
        block_size: tokens per sample.
        stride: distance between sample starts (default block_size: non-overlapping blocks).
        split: None (all tokens), 'train' (the first `1 - val_fraction` of the stream) or 'val' (the rest).

    `dataset[i]` gives two int64 tensors of shape `(block_size,)`; `dataset[list]` and `batch`
    give `(len(list), block_size)`; `random_batch(n)` draws `n` windows at random offsets.
    """

    def __init__(self, tokens, block_size: int, *, stride: int | None = None, split: str | None = None,
                 val_fraction: float = 0.1):
        data = np.asarray(tokens.tolist() if isinstance(tokens, Tensor) else tokens, dtype=np.int64).reshape(-1)
        if block_size < 1:
            raise ValueError(f"TextDataset: block_size must be positive, got {block_size}")
        stride = block_size if stride is None else stride
        if stride < 1:
            raise ValueError(f"TextDataset: stride must be positive, got {stride}")
        if split not in (None, "train", "val"):
            raise ValueError(f"TextDataset: split must be None, 'train' or 'val', got {split!r}")
        if split is not None:
            if not 0 <= val_fraction <= 1:
                raise ValueError(f"TextDataset: val_fraction must be in [0, 1], got {val_fraction}")
            cut = int(len(data) * (1 - val_fraction))
            data = data[:cut] if split == "train" else data[cut:]
        self.data = np.ascontiguousarray(data)
        self.block_size = int(block_size)
        self.stride = int(stride)
        self.split = split

    @classmethod
    def splits(cls, tokens, block_size: int, val_fraction: float = 0.1, **kwargs):
        """(train, val) datasets over the first `1 - val_fraction` of the stream and the rest."""
        return (cls(tokens, block_size, split="train", val_fraction=val_fraction, **kwargs),
                cls(tokens, block_size, split="val", val_fraction=val_fraction, **kwargs))

    def __len__(self) -> int:
        n = len(self.data) - self.block_size - 1
        return 0 if n < 0 else n // self.stride + 1

    def _windows(self, starts: np.ndarray):
        offsets = starts[:, None] + np.arange(self.block_size + 1)
        w = self.data[offsets]
        return from_numpy(np.ascontiguousarray(w[:, :-1])), from_numpy(np.ascontiguousarray(w[:, 1:]))

    def batch(self, indices):
        """`(x, y)` of shape `(len(indices), block_size)` for these sample indices."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"TextDataset: index {int(idx[bad][0])} is out of range for {n} samples")
        return self._windows(np.where(idx < 0, idx + n, idx) * self.stride)

    def random_batch(self, batch_size: int, generator=None):
        """`batch_size` windows at uniformly random start offsets (any offset, not only multiples of stride)."""
        high = len(self.data) - self.block_size
        if high < 1:
            raise ValueError(f"TextDataset: {len(self.data)} tokens are too few for block_size={self.block_size}")
        starts = randint(0, high, (batch_size,), generator=generator).numpy()
        return self._windows(starts)

    def __getitem__(self, index):
        if isinstance(index, (list, tuple, np.ndarray, Tensor)):
            return self.batch(np.asarray(index))
        n = len(self)
        i = operator.index(index)
        if not -n <= i < n:
            raise IndexError(f"TextDataset: index {i} is out of range for {n} samples")
        s = (i % n) * self.stride
        window = self.data[s:s + self.block_size + 1]
        return from_numpy(window[:-1].copy()), from_numpy(window[1:].copy())

    def __repr__(self) -> str:
        return (f"TextDataset({len(self.data)} tokens, block_size={self.block_size}, stride={self.stride}, "
                f"split={self.split!r}, {len(self)} samples)")
