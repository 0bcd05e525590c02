"""GradScaler: loss scaling for float16 training, with torch.amp.GradScaler's behaviour and state.

`scale(loss)` multiplies by the scale; `unscale_(optimizer)` divides the optimizer's grads by it and records
whether any is inf or NaN; `step(optimizer)` skips the step when one was; `update()` backs the scale off after
an overflow and grows it after `growth_interval` clean steps. The inf check and the scale update are tensor
ops on the grads' device (`_amp_foreach_non_finite_check_and_unscale_`, `_amp_update_scale_`), so nothing
waits for the device per parameter; `step` reads the found-inf flag once, as torch does.
"""
from __future__ import annotations

from .._tensor import Tensor
from ..core import dtype as D
from ..dispatch import OPS

__all__ = ["GradScaler", "OptState"]


def _f(name):
    return OPS[name].fn


def _amp_foreach_non_finite_check_and_unscale_(grads, found_inf: Tensor, inv_scale: Tensor) -> None:
    """grads *= inv_scale in place; found_inf becomes 1.0 where any grad has an inf or a NaN (no host sync)."""
    for g in grads:
        bad = _f("logical_not")(_f("isfinite")(g)).any()
        found_inf.copy_(_f("maximum")(found_inf, bad.to(found_inf.dtype)))
        g.mul_(inv_scale.to(g.dtype) if g.dtype is not inv_scale.dtype else inv_scale)


def _amp_update_scale_(scale: Tensor, growth_tracker: Tensor, found_inf: Tensor, growth_factor: float,
                       backoff_factor: float, growth_interval: int) -> Tensor:
    """torch's _amp_update_scale_, as tensor ops: after an overflow the scale backs off and the tracker
    resets; else the tracker counts up, and at growth_interval the scale grows and the tracker resets."""
    where = _f("where")
    inf = found_inf > 0
    grown = growth_tracker + 1
    grow = grown >= growth_interval
    new_scale = where(inf, scale * backoff_factor, where(grow, scale * growth_factor, scale))
    new_tracker = where(inf, growth_tracker * 0, where(grow, growth_tracker * 0, grown))
    scale.copy_(new_scale)
    growth_tracker.copy_(new_tracker)
    return scale


class OptState:
    READY = 0
    UNSCALED = 1
    STEPPED = 2


class GradScaler:
    """torch.amp.GradScaler(device="cuda", init_scale=2**16, growth_factor=2.0, backoff_factor=0.5,
    growth_interval=2000, enabled=True)."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        if growth_factor <= 1.0:
            raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got {backoff_factor}")
        if not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"GradScaler: growth_interval must be a positive int, got {growth_interval!r}")
        self._device = device
        self._enabled = enabled
        if enabled and device == "cuda":
            from .. import cuda
            if not cuda.is_available():
                import warnings
                warnings.warn("GradScaler is enabled, but CUDA is not available; disabling it", UserWarning,
                              stacklevel=2)
                self._enabled = False
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._scale = None
        self._growth_tracker = None
        self._per_optimizer = {}

    # -- state ------------------------------------------------------------------------------------
    def _lazy_init(self, like: Tensor):
        if self._scale is None:
            self._scale = _f("full")((), float(self._init_scale), dtype=D.float32, device=like.device)
            self._growth_tracker = _f("full")((), getattr(self, "_pending_tracker", 0), dtype=D.int32,
                                              device=like.device)

    def _opt(self, optimizer) -> dict:
        st = self._per_optimizer.get(id(optimizer))
        if st is None:
            st = self._per_optimizer[id(optimizer)] = {"stage": OptState.READY, "found_inf": None}
        return st

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale.item())

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def _get_growth_tracker(self) -> int:
        if self._growth_tracker is None:
            return getattr(self, "_pending_tracker", 0)
        return int(self._growth_tracker.item())

    # -- the loop -----------------------------------------------------------------------------------
    def scale(self, outputs):
        """outputs (a tensor, or nested lists/tuples of them) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            self._lazy_init(outputs)
            return outputs * self._scale.to(outputs.device)
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of Tensors, got "
                         f"{type(outputs).__name__}")

    def unscale_(self, optimizer) -> None:
        if not self._enabled:
            return
        st = self._opt(optimizer)
        if st["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        if self._scale is None:
            raise RuntimeError("GradScaler.unscale_: scale() was never called, so there is no scale to undo")
        inv = _f("reciprocal")(self._scale.double()).float()
        found = _f("full")((), 0.0, dtype=D.float32, device=self._scale.device)
        grads = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grads.append(p.grad)
        _amp_foreach_non_finite_check_and_unscale_(grads, found, inv)
        st["found_inf"] = found
        st["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscales (if unscale_ was not called), then runs optimizer.step() unless a grad was inf/NaN;
        returns what step returned, or None when skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        st = self._opt(optimizer)
        if st["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] is OptState.READY:
            self.unscale_(optimizer)
        ret = None
        if not float(st["found_inf"].item()):
            ret = optimizer.step(*args, **kwargs)
        st["stage"] = OptState.STEPPED
        return ret

    def update(self, new_scale=None) -> None:
        if not self._enabled:
            return
        if new_scale is not None:
            v = new_scale.item() if isinstance(new_scale, Tensor) else float(new_scale)
            self._scale.fill_(v)
        elif self._scale is not None:
            founds = [s["found_inf"] for s in self._per_optimizer.values() if s["found_inf"] is not None]
            if not founds:
                raise RuntimeError("No inf checks were recorded prior to update().")
            found = founds[0]
            for f in founds[1:]:
                found = _f("maximum")(found, f)
            _amp_update_scale_(self._scale, self._growth_tracker, found, self._growth_factor,
                               self._backoff_factor, self._growth_interval)
        self._per_optimizer = {}

    # -- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved from a disabled "
                               "instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])
        else:
            self._pending_tracker = state_dict["_growth_tracker"]
