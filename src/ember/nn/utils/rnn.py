"""Variable-length sequences for the recurrent layers, as `torch.nn.utils.rnn`: `PackedSequence`,
`pack_padded_sequence`, `pad_packed_sequence`, `pad_sequence`, `pack_sequence`, `unpad_sequence`,
`unpack_sequence` and `invert_permutation`.

A PackedSequence holds the time steps of a batch of sequences sorted by decreasing length, one step after the
other: `data` is (sum(lengths), *) and `batch_sizes` (max_len,) int64 on the CPU, `batch_sizes[t]` being the number
of sequences longer than t. `sorted_indices` maps sorted position -> caller's batch index and `unsorted_indices`
is its inverse (both None when the caller's batch was already sorted, `enforce_sorted=True`).

Packing, unpacking and padding are each one `index_select` over the data (plus a `cat` of one padding row), with
the row numbers worked out in Python from the lengths, so autograd flows through them and nothing here asks which
device a tensor is on.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from ..._tensor import Tensor
from ...core import dtype as _D
from ...dispatch import OPS
from ...ops.creation import empty_like, tensor as _tensor

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
    "unpad_sequence", "pack_sequence", "unpack_sequence",
]

_cat = OPS["cat"].fn
_full = OPS["full"].fn
_arange = OPS["arange"].fn


def _index_tensor(rows, device) -> Tensor:
    return _tensor(rows, dtype=_D.int64, device=device)


def _cast_method(name: str, dtype):
    """PackedSequence.<name>(): the sequence with its data cast to dtype, like Tensor.<name>()."""
    def cast(self) -> "PackedSequence":
        return self.to(dtype=dtype)
    cast.__name__, cast.__qualname__ = name, "PackedSequence." + name
    return cast


class PackedSequence_(NamedTuple):  # noqa: N801 - torch's name
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(PackedSequence_):
    """The packed form of a batch of variable-length sequences (see the module docstring). Build one with
    `pack_padded_sequence` or `pack_sequence`; the recurrent layers accept it and return their output as one."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        elif batch_sizes.device.type != "cpu":
            raise ValueError("batch_sizes should always be on CPU. Instances of PackedSequence should never be "
                             "created manually. They should be instantiated by functions like pack_sequence and "
                             "pack_padded_sequences in nn.utils.rnn.")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data) -> "PackedSequence":
        """This sequence with `data` in place of self.data; the index tensors follow data's device (batch_sizes
        stays on the CPU)."""
        if data is self.data:
            return self
        move = (lambda t: None if t is None else t.to(data.device))  # noqa: E731
        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def to(self, *args, **kwargs) -> "PackedSequence":
        return self._with_data(self.data.to(*args, **kwargs))

    def cuda(self, *args, **kwargs) -> "PackedSequence":
        return self._with_data(self.data.cuda(*args, **kwargs))

    def cpu(self) -> "PackedSequence":
        return self._with_data(self.data.cpu())

    double = _cast_method("double", _D.float64)
    float = _cast_method("float", _D.float32)
    half = _cast_method("half", _D.float16)
    long = _cast_method("long", _D.int64)
    int = _cast_method("int", _D.int32)
    short = _cast_method("short", _D.int16)
    char = _cast_method("char", _D.int8)
    byte = _cast_method("byte", _D.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return self.data.is_pinned()

    def pin_memory(self) -> "PackedSequence":
        pin = (lambda t: None if t is None else t.pin_memory())  # noqa: E731
        return type(self)(self.data.pin_memory(), self.batch_sizes, pin(self.sorted_indices),
                          pin(self.unsorted_indices))


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation (None for None): out[permutation[i]] = i."""
    if permutation is None:
        return None
    return empty_like(permutation).scatter_(0, permutation, _arange(permutation.numel(), dtype=permutation.dtype,
                                                device=permutation.device))


def _lengths_list(lengths) -> list:
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise RuntimeError(f"'lengths' argument should be a 1D tensor, but got a {lengths.dim()}D tensor")
        return [int(v) for v in lengths.tolist()]
    return [int(v) for v in lengths]


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Packs a padded batch `input` (T, B, *) (or (B, T, *) with batch_first) of sequences of `lengths` (a list or
    a 1-D tensor). With enforce_sorted=True the lengths must be in decreasing order; with False the batch is sorted
    here (stably, by decreasing length) and `sorted_indices` records the order."""
    if input.dim() < 2:
        raise RuntimeError(f"pack_padded_sequence: expected input of at least 2 dimensions (T, B, *), "
                           f"got {input.dim()}D")
    lens = _lengths_list(lengths)
    batch_dim = 0 if batch_first else 1
    B, T = input.size(batch_dim), input.size(1 - batch_dim)
    if len(lens) != B:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {len(lens)} "
                           f"(batch_size={B})")
    if enforce_sorted:
        if any(lens[i] < lens[i + 1] for i in range(B - 1)):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. "
                               "You can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence "
                               "to sidestep this requirement if you do not need ONNX exportability.")
        order = list(range(B))
        sorted_indices = None
    else:
        order = sorted(range(B), key=lambda i: -lens[i])  # stable, as torch.sort on the CPU
        sorted_indices = _index_tensor(order, input.device)
    slens = [lens[i] for i in order]
    if B == 0 or slens[-1] <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' "
                           "that is <= 0")
    if slens[0] > T:
        raise RuntimeError(f"pack_padded_sequence: the longest length in 'lengths' is {slens[0]}, but the input "
                           f"has only {T} time steps (dim {1 - batch_dim} of a {tuple(input.shape)} input)")
    batch_sizes = [sum(1 for n in slens if n > t) for t in range(slens[0])]
    if batch_first:
        rows = [order[j] * T + t for t, b in enumerate(batch_sizes) for j in range(b)]
    else:
        rows = [t * B + order[j] for t, b in enumerate(batch_sizes) for j in range(b)]
    flat = input.reshape(T * B, *input.shape[2:])
    data = flat.index_select(0, _index_tensor(rows, input.device))
    return PackedSequence(data, _index_tensor(batch_sizes, "cpu"), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple:
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths int64 CPU tensor), in the
    caller's batch order; T is the longest length, or `total_length` when given."""
    data = sequence.data
    bs = [int(b) for b in sequence.batch_sizes.tolist()]
    T = len(bs)
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"Expected total_length to be at least the length of the longest sequence in input, "
                             f"but got total_length={total_length} and max sequence length being {T}")
        T = total_length
    B = bs[0] if bs else 0
    offsets, off = [], 0
    for b in bs:
        offsets.append(off)
        off += b
    n = data.size(0)
    if n != off:
        raise RuntimeError(f"pad_packed_sequence: data has {n} rows but batch_sizes sum to {off}")
    unsorted = [int(i) for i in sequence.unsorted_indices.tolist()] if sequence.unsorted_indices is not None \
        else list(range(B))
    slens = [sum(1 for b in bs if b > j) for j in range(B)]

    def row(t, s):
        return offsets[t] + s if t < len(bs) and s < bs[t] else n  # row n: the padding row

    if batch_first:
        rows = [row(t, unsorted[j]) for j in range(B) for t in range(T)]
    else:
        rows = [row(t, unsorted[j]) for t in range(T) for j in range(B)]
    rest = tuple(data.shape[1:])
    ext = _cat([data, _full((1, *rest), padding_value, dtype=data.dtype, device=data.device)], 0)
    out = ext.index_select(0, _index_tensor(rows, data.device))
    out = out.reshape(B, T, *rest) if batch_first else out.reshape(T, B, *rest)
    return out, _index_tensor([slens[unsorted[j]] for j in range(B)], "cpu")


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stacks tensors of shapes (L_i, *) into (max L, B, *) (or (B, max L, *) with batch_first), padding with
    `padding_value` on the right (or the left with padding_side="left")."""
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    seqs = tuple(sequences)
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence: expected a sequence of Tensors, but element {i} is "
                            f"{type(s).__name__}")
        if s.dim() < 1:
            raise RuntimeError(f"pad_sequence: sequences must have at least 1 dimension, but element {i} is 0-D")
    rest = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if tuple(s.shape[1:]) != rest:
            raise RuntimeError(f"pad_sequence: all sequences must have the same trailing dimensions, but element 0 "
                               f"has shape {tuple(seqs[0].shape)} and element {i} has {tuple(s.shape)}")
    lens = [s.size(0) for s in seqs]
    T, B = max(lens), len(seqs)
    starts, off = [], 0
    for n in lens:
        starts.append(off)
        off += n
    pad_row = off

    def row(j, t):
        if padding_side == "left":
            t -= T - lens[j]
        return starts[j] + t if 0 <= t < lens[j] else pad_row

    rows = [row(j, t) for j in range(B) for t in range(T)] if batch_first \
        else [row(j, t) for t in range(T) for j in range(B)]
    first = seqs[0]
    ext = _cat(list(seqs) + [_full((1, *rest), padding_value, dtype=first.dtype, device=first.device)], 0)
    out = ext.index_select(0, _index_tensor(rows, first.device))
    return out.reshape(B, T, *rest) if batch_first else out.reshape(T, B, *rest)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The list of the sequences in a padded batch, each cut to its length (torch transposes its input in place
    here; ember leaves it as it is)."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :n] for i, n in enumerate(_lengths_list(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of tensors (L_i, *) (decreasing lengths unless enforce_sorted=False)."""
    lengths = [s.size(0) for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences of a PackedSequence, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
