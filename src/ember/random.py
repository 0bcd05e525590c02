"""Random number generators: `ember.Generator`, `manual_seed`, the default generator per device.

A CPU generator wraps NumPy's PCG64 (reproducible for a seed, streams independent per
generator). The default generator starts from a seed drawn from OS entropy, as torch's does. A CUDA generator (the CUDA backend) keeps a seed and a Philox offset; `manual_seed`
seeds every device's default generator, as PyTorch does.
"""
from __future__ import annotations

import json

import numpy as np

from .core.device import CPU, canonical

__all__ = ["Generator", "manual_seed", "seed", "initial_seed", "default_generator", "get_rng_state",
           "set_rng_state", "fork_rng"]

_DEFAULT_SEED = 67280421310721  # PyTorch's default seed


class Generator:
    """`ember.Generator(device='cpu')`: an independent, seedable random stream."""

    def __init__(self, device="cpu"):
        self.device = canonical(device)
        self._seed = _DEFAULT_SEED
        self._offset = 0  # Philox counter offset (CUDA); unused on the CPU
        self._np = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed)
        if seed < 0:
            seed &= (1 << 64) - 1  # as PyTorch: negative seeds wrap to uint64
        self._seed = seed
        self._offset = 0
        self._np = np.random.Generator(np.random.PCG64(seed))
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        """The full state as a CPU uint8 tensor (restore it with `set_state`); for CUDA, 16 bytes:
        seed and Philox offset, little-endian uint64s, as PyTorch's."""
        from .ops.creation import tensor
        from .core import dtype as D
        if self.device.type == "cuda":
            return tensor(list(self._seed.to_bytes(8, "little") + self._offset.to_bytes(8, "little")), dtype=D.uint8)
        state = {"seed": self._seed, "offset": self._offset, "bit_generator": self._np.bit_generator.state}
        return tensor(list(json.dumps(state).encode()), dtype=D.uint8)

    def set_state(self, new_state) -> "Generator":
        if self.device.type == "cuda":
            raw = bytes(np.asarray(new_state, dtype=np.uint8).tolist())
            if len(raw) != 16:
                raise RuntimeError(f"Generator.set_state: a CUDA generator's state is 16 bytes (seed, offset), "
                                   f"got {len(raw)}")
            self._seed, self._offset = int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")
            return self
        try:
            raw = bytes(np.asarray(new_state, dtype=np.uint8).tolist())
            state = json.loads(raw)
            bg = np.random.PCG64()
            bg.state = state["bit_generator"]
        except (ValueError, KeyError, TypeError) as e:
            raise RuntimeError(f"Generator.set_state: not a state from Generator.get_state() ({e})") from None
        self._seed, self._offset = state["seed"], state["offset"]
        self._np = np.random.Generator(bg)
        return self

    def _philox_advance(self, increment: int) -> tuple:
        """(seed, offset) for a CUDA kernel using `increment` Philox counters; advances the offset past them."""
        off = self._offset
        self._offset += increment
        return self._seed, off

    def __repr__(self) -> str:
        return f"<ember.Generator device={self.device} initial_seed={self._seed}>"


# As torch: the default generator is seeded from OS entropy in each process (unseeded runs differ;
# `initial_seed()` tells the seed, `manual_seed` makes a run repeatable), while a new `Generator()` starts from
# the fixed default seed.
default_generator = Generator("cpu")
default_generator.seed()
_default_generators = {CPU: default_generator}


def _default_for(device) -> Generator:
    g = _default_generators.get(device)
    if g is None:
        g = _default_generators[device] = Generator(device)
        g.manual_seed(default_generator.initial_seed())
    return g


def get_generator(generator, device) -> Generator:
    """The generator a random kernel draws from: the one given, else the device's default."""
    if generator is None:
        return default_generator if device is CPU else _default_for(device)
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be an ember.Generator, got {type(generator).__name__}")
    if generator.device.type != device.type:
        raise RuntimeError(f"Expected a '{device.type}' device type for generator but found '{generator.device.type}'")
    return generator


def manual_seed(seed: int) -> Generator:
    """Seeds the default generators of every device (CPU and, once created, CUDA)."""
    for g in list(_default_generators.values()):
        g.manual_seed(seed)
    return default_generator


def seed() -> int:
    s = default_generator.seed()
    manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    default_generator.set_state(new_state)


class fork_rng:  # noqa: N801 - PyTorch's name
    """Context manager: restores the default generators' states on exit."""

    def __init__(self, devices=None, enabled: bool = True):
        self.enabled = enabled

    def __enter__(self):
        if self.enabled:
            self._saved = {d: g.get_state() for d, g in _default_generators.items()}
        return self

    def __exit__(self, *exc):
        if self.enabled:
            for d, s in self._saved.items():
                _default_generators[d].set_state(s)
        return False
