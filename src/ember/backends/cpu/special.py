"""Special functions NumPy lacks, vectorised.

`erf` (float64) follows the piecewise rational approximations of Sun's fdlibm `s_erf.c` (double
precision to within an ulp or so): a rational function in x^2 on [0, 0.84375], one in x - 1 on
[0.84375, 1.25], and exp(-x^2) times rationals in 1/x^2 up to 6, past which erf is +-1.

`erf_f32` (float32, the opmath of float32/float16/bfloat16) is one rational function, with no
branches (selecting among pieces with masks costs more than the arithmetic): x * P(x^2) / Q(x^2)
on [-4, 4], where float32 erf is +-1 already. P and Q were fitted for this module (linearised
least squares on the relative error, reweighted towards minimax); the relative error of the
rational is below 2.5e-8, and evaluated in float32 the result is within 6 ulp of erf.
"""
from __future__ import annotations

import numpy as np

_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01)


def _horner(coeffs, z):
    acc = np.full_like(z, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc *= z
        acc += c
    return acc


def erf(x: np.ndarray) -> np.ndarray:
    """erf of a float64 array."""
    x = np.asarray(x, np.float64)
    ax = np.abs(x)
    out = np.empty_like(x)
    small = ax < 0.84375
    if small.any():
        xs = x[small]
        z = xs * xs
        out[small] = xs + xs * (_horner(_PP, z) / _horner(_QQ, z))
    mid = (ax >= 0.84375) & (ax < 1.25)
    if mid.any():
        s = ax[mid] - 1.0
        out[mid] = np.copysign(_ERX + _horner(_PA, s) / _horner(_QA, s), x[mid])
    big = (ax >= 1.25) & (ax < 6.0)
    if big.any():
        a = ax[big]
        s = 1.0 / (a * a)
        near = a < 1.0 / 0.35
        r = np.where(near, _horner(_RA, s) / _horner(_SA, s), _horner(_RB, s) / _horner(_SB, s))
        # Split a as hi + lo so that exp(-a^2) keeps its low bits (fdlibm's trick).
        hi = (a.view(np.int64) & np.int64(-4294967296)).view(np.float64)
        e = np.exp(-hi * hi - 0.5625) * np.exp((hi - a) * (hi + a) + r)
        out[big] = np.copysign(1.0 - e / a, x[big])
    rest = ax >= 6.0
    if rest.any():
        out[rest] = np.copysign(1.0, x[rest])
    nan = np.isnan(x)
    if nan.any():
        out[nan] = np.nan
    return out


_P32 = (1.1283791395171014, 0.1935396653785019, 0.053101030095396254, 0.003883111715684444,
        0.00028456051018772095, 1.9868216842256344e-06)
_Q32 = (1.0, 0.5048526200565618, 0.11534776652129891, 0.0152067868792838, 0.0011855144725933526,
        3.742030061428974e-05)


_P32F = tuple(np.float32(c) for c in _P32)
_Q32F = tuple(np.float32(c) for c in _Q32)
_FOUR, _ONE = np.float32(4.0), np.float32(1.0)


def _poly_f32(coeffs, z):
    """Horner in float32, in place on one fresh buffer (coefficients from the constant term up)."""
    acc = z * coeffs[-1]
    last = len(coeffs) - 2
    for i in range(last, -1, -1):
        acc += coeffs[i]
        if i:
            acc *= z
    return acc


_CHUNK = 1 << 16  # elements per block: the dozen passes over a block stay in cache


def erf_f32(x: np.ndarray) -> np.ndarray:
    """erf of a float32 array, computed in float32 (a fresh array). Odd: evaluated at |x| clamped to 4."""
    if x.ndim == 0:
        return _erf_f32(x.reshape(1)).reshape(())
    if x.size <= 2 * _CHUNK:
        return _erf_f32(x)
    if not x.flags.c_contiguous:    # a dense permuted x (a kept layout): blocks in memory order, result in x's layout
        order = sorted(range(x.ndim), key=lambda d: -x.strides[d])
        xt = x.transpose(order)
        if xt.flags.c_contiguous:
            return erf_f32(xt).transpose(np.argsort(order))
    flat = x.reshape(-1)
    out = np.empty(flat.shape, np.float32)
    for i in range(0, flat.size, _CHUNK):
        _erf_f32(flat[i:i + _CHUNK], out[i:i + _CHUNK])
    return out.reshape(x.shape)


def _erf_f32(x, out=None):
    a = np.abs(x)
    np.minimum(a, _FOUR, out=a)  # NaN stays NaN, inf becomes 4
    z = a * a
    p = _poly_f32(_P32F, z)
    p *= a
    p /= _poly_f32(_Q32F, z)
    np.minimum(p, _ONE, out=p)  # the rational overshoots 1 by an ulp or two near 4
    return np.copysign(p, x, out=p if out is None else out)
