"""Summary protos for `ember.utils.tensorboard`, built with the `tensorboard` package's own protos.

The event contents follow `torch.utils.tensorboard.summary` (scalar, histogram, image, text), so TensorBoard shows
ember's runs exactly as it shows PyTorch's. Only imported once the `tensorboard` package is known to be present.
"""
from __future__ import annotations

import io
import numbers
import warnings

import numpy as np
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData


# ---- inputs -------------------------------------------------------------------------------------------------------
def to_numpy(x, what: str, expected: str) -> np.ndarray:
    """An ember tensor (any device), NumPy array/scalar or Python number as a NumPy array on the host."""
    if isinstance(x, np.ndarray):
        a = x
    elif isinstance(x, (bool, numbers.Number, np.generic)):
        a = np.asarray(x)
    elif all(hasattr(x, n) for n in ("detach", "cpu", "numpy")):  # ember tensors (CUDA too); duck-typed
        a = x.detach().cpu().numpy()
    elif isinstance(x, (list, tuple)):
        try:
            a = np.asarray(x)
        except ValueError as e:
            raise TypeError(f"{what}: could not convert the {type(x).__name__} to an array ({e}); "
                            f"expected {expected}") from None
    else:
        raise TypeError(f"{what}: got {type(x).__module__}.{type(x).__qualname__}, expected {expected}")
    if a.dtype.kind not in "biuf":
        if a.dtype.name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):  # ml_dtypes floats: widen exactly
            a = a.astype(np.float32)
        else:
            raise TypeError(f"{what}: got values of dtype {a.dtype}, expected {expected} of a real numeric dtype")
    return a


# ---- scalars ------------------------------------------------------------------------------------------------------
def scalar(tag: str, value, new_style: bool = False, double_precision: bool = False) -> Summary:
    expected = "a Python number, a NumPy scalar or a one-element tensor/array"
    if isinstance(value, str):
        raise TypeError(f"add_scalar({tag!r}): got the string {value!r}, expected {expected}")
    a = to_numpy(value, f"add_scalar({tag!r})", expected)
    if a.size != 1:
        raise ValueError(f"add_scalar({tag!r}): got a value of shape {tuple(a.shape)} ({a.size} elements), "
                         f"expected {expected}")
    v = float(a.reshape(()))
    if not new_style:
        return Summary(value=[Summary.Value(tag=tag, simple_value=v)])
    if double_precision:
        tp = TensorProto(double_val=[v], dtype="DT_DOUBLE")
    else:
        tp = TensorProto(float_val=[v], dtype="DT_FLOAT")
    smd = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    return Summary(value=[Summary.Value(tag=tag, tensor=tp, metadata=smd)])


# ---- histograms ---------------------------------------------------------------------------------------------------
def default_bins() -> list[float]:
    """TensorFlow's default histogram bucket edges: +-1e-12 * 1.1**k up to 1e20, and 0."""
    v = 1e-12
    pos, neg = [], []
    while v < 1e20:
        pos.append(v)
        neg.append(-v)
        v *= 1.1
    return neg[::-1] + [0] + pos


def histogram(tag: str, values, bins, max_bins=None) -> Summary:
    what = f"add_histogram({tag!r})"
    a = to_numpy(values, what, "a tensor, NumPy array or number").astype(float).reshape(-1)
    if a.size == 0:
        raise ValueError(f"{what}: got an empty input (0 elements), expected at least one value")
    finite = np.isfinite(a)
    bad = int(a.size - np.count_nonzero(finite))
    if bad == a.size:
        raise ValueError(f"{what}: all {a.size} value(s) are non-finite (nan or inf): there is nothing to draw")
    if bad:     # a diverging run goes on logging (torch writes such histograms too); the warning says what was left out
        warnings.warn(f"{what}: left out {bad} non-finite value(s) (nan or inf) of {a.size}", RuntimeWarning,
                      stacklevel=3)
        a = a[finite]
    if max_bins is not None and (not isinstance(max_bins, numbers.Integral) or max_bins < 1):
        raise ValueError(f"{what}: got max_bins={max_bins!r}, expected a positive int or None")
    try:
        counts, limits = np.histogram(a, bins=bins)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what}: bins={bins!r} was not accepted by numpy.histogram ({e}); expected 'tensorflow', "
                         "a numpy.histogram bin rule ('auto', 'fd', ...), an int or bucket edges") from None
    n = len(counts)
    if max_bins is not None and n > max_bins:  # merge neighbouring buckets, as torch does
        sub = n // max_bins
        rem = n % sub
        if rem != 0:
            counts = np.pad(counts, pad_width=[[0, sub - rem]], mode="constant", constant_values=0)
        counts = counts.reshape(-1, sub).sum(axis=-1)
        new_limits = np.empty((counts.size + 1,), limits.dtype)
        new_limits[:-1] = limits[:-1:sub]
        new_limits[-1] = limits[-1]
        limits = new_limits
    # keep the buckets from the first to the last non-empty one; TensorBoard stores right edges only, so one empty
    # bucket goes on the left to carry the leftmost edge
    cum = np.cumsum(np.greater(counts, 0))
    if cum[-1] == 0:
        raise ValueError(f"{what}: no value fell inside the bucket edges {bins!r} "
                         f"(values span [{a.min()}, {a.max()}])")
    start, end = np.searchsorted(cum, [0, cum[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    hist = HistogramProto(min=a.min(), max=a.max(), num=len(a), sum=a.sum(), sum_squares=a.dot(a),
                          bucket_limit=limits.tolist(), bucket=counts.tolist())
    return Summary(value=[Summary.Value(tag=tag, histo=hist)])


# ---- images -------------------------------------------------------------------------------------------------------
def _make_grid(nchw: np.ndarray, ncols: int = 8) -> np.ndarray:
    """N images (C = 1 or 3) tiled into one 3xHxW canvas, 8 per row, as torch's add_image does for NCHW."""
    if nchw.shape[1] == 1:
        nchw = np.concatenate([nchw] * 3, 1)
    n, _, h, w = nchw.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    canvas = np.zeros((3, h * nrows, w * ncols), dtype=nchw.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = nchw[i]
    return canvas


def _to_hwc(a: np.ndarray, dataformats: str, what: str) -> np.ndarray:
    if not isinstance(dataformats, str):
        raise TypeError(f"{what}: got dataformats={dataformats!r}, expected a string such as 'CHW', 'HWC' or 'HW'")
    fmt = dataformats.upper()
    if (len(set(fmt)) != len(fmt) or not set(fmt) <= set("NCHW") or not {"H", "W"} <= set(fmt)
            or len(fmt) < 2 or ("N" in fmt and len(fmt) != 4)):
        raise ValueError(f"{what}: got dataformats={dataformats!r}, expected 'H' and 'W' with optional 'C' "
                         "(and 'N' only in a 4-letter format), each at most once: e.g. 'CHW', 'HWC', 'HW', 'NCHW'")
    if a.ndim != len(fmt):
        raise ValueError(f"{what}: got an image of shape {tuple(a.shape)} ({a.ndim}-D), expected a "
                         f"{len(fmt)}-D image for dataformats={dataformats!r}")
    if len(fmt) == 4:
        a = a.transpose([fmt.find(c) for c in "NCHW"])
        if a.shape[1] not in (1, 3):
            raise ValueError(f"{what}: got {a.shape[1]} channels in a batch of images of shape {tuple(a.shape)} "
                             "(NCHW), expected 1 or 3")
        return _make_grid(a).transpose(1, 2, 0)
    if len(fmt) == 3:
        a = a.transpose([fmt.find(c) for c in "HWC"])
        if a.shape[2] == 1:
            a = np.concatenate([a, a, a], 2)
        if a.shape[2] not in (3, 4):
            raise ValueError(f"{what}: got {a.shape[2]} channels in an image of shape {tuple(a.shape)} (HWC), "
                             "expected 1 (grey), 3 (RGB) or 4 (RGBA)")
        return a
    a = a.transpose([fmt.find(c) for c in "HW"])
    return np.stack([a, a, a], 2)


def image(tag: str, img, dataformats: str = "CHW") -> Summary:
    what = f"add_image({tag!r})"
    a = to_numpy(img, what, "an image tensor or NumPy array")
    a = _to_hwc(a, dataformats, what)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{what}: got an empty image (height x width = {a.shape[0]} x {a.shape[1]})")
    # uint8 images are kept as they are; anything else is taken to be in [0, 1] and scaled to [0, 255]
    scale = 1 if a.dtype == np.uint8 else 255
    a = (a.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("add_image needs Pillow to encode PNG images: pip install 'ember[tensorboard]' "
                          "(or pip install pillow)") from None
    height, width, channel = a.shape
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    proto = Summary.Image(height=height, width=width, colorspace=channel, encoded_image_string=buf.getvalue())
    return Summary(value=[Summary.Value(tag=tag, image=proto)])


# ---- text ---------------------------------------------------------------------------------------------------------
def text(tag: str, text_string) -> Summary:
    if not isinstance(text_string, str):
        raise TypeError(f"add_text({tag!r}): got {type(text_string).__name__} {text_string!r}, expected a str")
    plugin = SummaryMetadata.PluginData(plugin_name="text", content=TextPluginData(version=0).SerializeToString())
    tensor = TensorProto(dtype="DT_STRING", string_val=[text_string.encode("utf_8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=SummaryMetadata(plugin_data=plugin),
                                        tensor=tensor)])
