"""Image transforms shaped like torchvision's: Compose, ToTensor, Normalize, RandomCrop,
RandomHorizontalFlip, Lambda, and their functional forms (`to_tensor`, `normalize`, `pad`,
`crop`, `hflip`).

Tensor images are `(..., C, H, W)`; the geometric transforms also take PIL images. For the same
crop offsets and flip decisions the results equal torchvision's. The random decisions are drawn
as torchvision draws them (crop: top then left with `randint`, skipped when the crop is the whole
image; flip: `rand(1) < p`) from the `generator` given or ember's default generator, so
`ember.manual_seed` (or DataLoader workers' per-worker seeds) makes them reproducible.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._tensor import Tensor
from ..core import dtype as D
from ..ops.creation import from_numpy, full, tensor
from ..ops.random import rand, randint

__all__ = ["Compose", "ToTensor", "Normalize", "RandomCrop", "RandomHorizontalFlip", "Lambda",
           "to_tensor", "normalize", "pad", "crop", "hflip"]

_NP_PAD_MODES = {"edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}
_PIL_NP_TYPES = {"I": np.int32, "I;16": np.int16, "F": np.float32}


def _is_pil(img) -> bool:
    return type(img).__module__.startswith("PIL.") and hasattr(img, "getbands")


def _check_image(img, what: str):
    if not (isinstance(img, Tensor) or _is_pil(img)):
        raise TypeError(f"{what}: img should be a PIL Image or a tensor of shape (..., C, H, W), "
                        f"got {type(img).__name__}")
    if isinstance(img, Tensor) and img.ndim < 2:
        raise ValueError(f"{what}: a tensor image needs at least 2 dims (..., H, W), got shape {tuple(img.shape)}")


def image_size(img) -> tuple:
    """(height, width) of a tensor or PIL image."""
    if isinstance(img, Tensor):
        return img.shape[-2], img.shape[-1]
    w, h = img.size
    return h, w


# ---- functional --------------------------------------------------------------------------

def to_tensor(pic) -> Tensor:
    """PIL image or HWC / HW ndarray -> CHW tensor; uint8 data becomes the default float dtype in [0, 1]."""
    if _is_pil(pic):
        if pic.mode == "1":
            arr = np.array(pic, np.uint8) * 255
        else:
            arr = np.array(pic, _PIL_NP_TYPES.get(pic.mode, np.uint8))
        arr = arr.reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    elif isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        arr = pic[:, :, None] if pic.ndim == 2 else pic
    else:
        raise TypeError(f"pic should be PIL Image or ndarray. Got {type(pic)}")
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    if chw.dtype == np.uint8:
        dt = D.get_default_dtype()
        return from_numpy(chw.astype(dt.np) / dt.np.type(255))
    return from_numpy(chw)


def normalize(img: Tensor, mean, std, inplace: bool = False) -> Tensor:
    """`(img - mean[c]) / std[c]` per channel of a float `(..., C, H, W)` tensor."""
    return Normalize(mean, std, inplace)(img)


def _parse_padding(padding) -> tuple:
    """(left, top, right, bottom) from an int or a 1-, 2- or 4-sequence, as torchvision reads it."""
    if isinstance(padding, numbers.Integral):
        p = int(padding)
        ltrb = (p, p, p, p)
    elif isinstance(padding, (list, tuple)) and len(padding) in (1, 2, 4):
        if len(padding) == 1:
            ltrb = (padding[0],) * 4
        elif len(padding) == 2:
            ltrb = (padding[0], padding[1], padding[0], padding[1])
        else:
            ltrb = tuple(padding)
    elif isinstance(padding, (list, tuple)):
        raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a {len(padding)} element tuple")
    else:
        raise TypeError(f"Got inappropriate padding arg: {padding!r}")
    if any(not isinstance(p, numbers.Integral) or p < 0 for p in ltrb):
        raise ValueError(f"padding must be non-negative integers, got {padding!r}")
    return tuple(int(p) for p in ltrb)


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    """Pads the last two dims: `padding` is an int (all sides), (left/right, top/bottom) or
    (left, top, right, bottom); `padding_mode` 'constant' (with `fill`), 'edge', 'reflect' or 'symmetric'."""
    _check_image(img, "pad")
    if padding_mode != "constant" and padding_mode not in _NP_PAD_MODES:
        raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, got {padding_mode!r}")
    left, top, right, bottom = _parse_padding(padding)
    if not (left or top or right or bottom):
        return img
    if _is_pil(img):
        if padding_mode == "constant":
            from PIL import ImageOps
            return ImageOps.expand(img, border=(left, top, right, bottom), fill=fill)
        from PIL import Image
        arr = np.asarray(img)
        widths = ((top, bottom), (left, right)) + ((0, 0),) * (arr.ndim - 2)
        return Image.fromarray(np.pad(arr, widths, mode=_NP_PAD_MODES[padding_mode]))
    h, w = image_size(img)
    if padding_mode == "constant":
        out = full(tuple(img.shape[:-2]) + (h + top + bottom, w + left + right), fill, dtype=img.dtype,
                   device=img.device)
        out[..., top:top + h, left:left + w] = img
        return out
    if padding_mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        raise ValueError(f"reflect padding ({left}, {top}, {right}, {bottom}) must be smaller than the image "
                         f"size {(h, w)} in each dimension")
    # The source row/column of every output row/column: NumPy's pad modes on an index range.
    mode = _NP_PAD_MODES[padding_mode]
    rows = tensor(np.pad(np.arange(h), (top, bottom), mode=mode), device=img.device)
    cols = tensor(np.pad(np.arange(w), (left, right), mode=mode), device=img.device)
    return img.index_select(-2, rows).index_select(-1, cols)


def crop(img, top: int, left: int, height: int, width: int):
    """The `height x width` window at (top, left); parts outside the image are zero (as torchvision)."""
    _check_image(img, "crop")
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    h, w = image_size(img)
    bottom, right = top + height, left + width
    out = img[..., max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)]
    if top < 0 or left < 0 or bottom > h or right > w:
        out = pad(out, [max(-left, 0), max(-top, 0), max(right - w, 0), max(bottom - h, 0)])
    return out


def hflip(img):
    """Mirror left-right."""
    _check_image(img, "hflip")
    if _is_pil(img):
        from PIL import Image
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img.flip(-1)


# ---- transform objects -----------------------------------------------------------------------

class Compose:
    """Applies `transforms` one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"Compose({inner}\n)"


class Lambda:
    """Wraps a function as a transform."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return "Lambda()"


class ToTensor:
    """PIL image or HWC uint8 ndarray -> float CHW tensor in [0, 1] (see `to_tensor`)."""

    def __call__(self, pic) -> Tensor:
        return to_tensor(pic)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """`(img - mean[c]) / std[c]` for each channel `c` of a float `(..., C, H, W)` tensor."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = list(mean) if isinstance(mean, (list, tuple)) else [mean]
        self.std = list(std) if isinstance(std, (list, tuple)) else [std]
        self.inplace = inplace
        self._cache = {}  # (dtype, device) -> (mean, std) tensors of shape (C, 1, 1)

    def _params(self, img: Tensor):
        key = (img.dtype, img.device)
        params = self._cache.get(key)
        if params is None:
            mean = tensor(self.mean, dtype=img.dtype, device=img.device)
            std = tensor(self.std, dtype=img.dtype, device=img.device)
            if bool((std == 0).any()):
                raise ValueError(f"std evaluated to zero after conversion to {img.dtype}, leading to division by zero.")
            params = self._cache[key] = (mean.view(-1, 1, 1), std.view(-1, 1, 1))
        return params

    def __call__(self, img: Tensor) -> Tensor:
        if not isinstance(img, Tensor):
            raise TypeError(f"Input tensor should be an ember tensor. Got {type(img).__name__}.")
        if not img.is_floating_point():
            raise TypeError(f"Input tensor should be a float tensor. Got {img.dtype}.")
        if img.ndim < 3:
            raise ValueError(f"Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                             f"{tuple(img.shape)}")
        mean, std = self._params(img)
        if self.inplace:
            return img.sub_(mean).div_(std)
        return (img - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


def _pair(size, what: str) -> tuple:
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{what}: please provide only two dimensions (h, w) for size, got {size!r}")


class RandomCrop:
    """A random `size` window, after optional `padding` (see `pad`); `pad_if_needed` pads images
    smaller than the crop (torchvision's way: the missing amount on both sides)."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant",
                 generator=None):
        self.size = _pair(size, "RandomCrop")
        if padding is not None:
            _parse_padding(padding)
        if padding_mode != "constant" and padding_mode not in _NP_PAD_MODES:
            raise ValueError(f"Padding mode should be either constant, edge, reflect or symmetric, "
                             f"got {padding_mode!r}")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    @staticmethod
    def get_params(img, output_size, generator=None) -> tuple:
        """(top, left, height, width) of a uniformly random crop of `output_size` from `img`."""
        h, w = image_size(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        if h == th and w == tw:
            return 0, 0, h, w
        i = randint(0, h - th + 1, (1,), generator=generator).item()
        j = randint(0, w - tw + 1, (1,), generator=generator).item()
        return i, j, th, tw

    def __call__(self, img):
        _check_image(img, "RandomCrop")
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        h, w = image_size(img)
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = pad(img, [0, th - h], self.fill, self.padding_mode)
        return crop(img, *self.get_params(img, self.size, self.generator))

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirrors the image left-right with probability `p`."""

    def __init__(self, p: float = 0.5, generator=None):
        self.p = p
        self.generator = generator

    def __call__(self, img):
        if rand(1, generator=self.generator).item() < self.p:
            return hflip(img)
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"
