"""Numbers behind the comparison views: the difference of two frames, a calibrated simulated frame's
residual against the simulation's truth, and the noise budget that residual should show.

The noise budget follows the Astropy CCD Data Reduction Guide: a calibrated pixel is
``(light − bias − k·dark) / (flat / norm)`` with k = t_light / t_dark, so its variance (ADU²) is the
light's own read noise, dark and sky shot noise, plus the masters' noise: (1 − k)²·σ²_read·c(N_bias)
from the bias, k²·(σ²_read + dark shot noise)·c(N_dark) from the dark, and the flat's relative noise
times the signal squared. c(N) is the variance of N frames combined relative to one frame: 1/N for an
average (the √N law), about π/(2N) for a median (the √(π/2) law; :func:`combined_variance` gives the
exact factor for small N of Gaussian noise).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .combine import robust_sigma

if TYPE_CHECKING:
    from .plan import FrameSteps
    from .simulate import SimParams


# --- difference -------------------------------------------------------------------------------------
def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a − b in float32 (NaN where either is NaN); ValueError naming both sizes if they differ."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot subtract frames of different sizes: {_size(a)} and {_size(b)}")
    with np.errstate(invalid="ignore", over="ignore"):
        return np.subtract(a, b, dtype=np.float32)


def _size(array: np.ndarray) -> str:
    return f"{array.shape[1]}x{array.shape[0]}" if array.ndim == 2 else str(array.shape)


@dataclass
class DifferenceStats:
    median: float
    sigma: float        # robust σ (MAD)
    minimum: float
    maximum: float


def difference_stats(diff: np.ndarray) -> DifferenceStats:
    finite = np.asarray(diff, dtype=np.float64)[np.isfinite(diff)]
    if finite.size == 0:
        return DifferenceStats(math.nan, math.nan, math.nan, math.nan)
    return DifferenceStats(float(np.median(finite)), robust_sigma(finite), float(finite.min()),
                           float(finite.max()))


# --- combining laws ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def combined_variance(n: int, method: str = "average") -> float:
    """Variance of n Gaussian frames combined, in units of one frame's: 1/n for an average or a sum
    divided by n, the exact variance of the sample median of n normal values for a median (→ π/(2n))."""
    if n < 1:
        raise ValueError("need at least one frame")
    if method != "median" or n <= 2:
        return 1.0 / n
    x = np.linspace(-9.0, 9.0, 3601)
    dx = x[1] - x[0]
    phi = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    cdf = np.clip(0.5 * (1 + _erf(x / math.sqrt(2))), 1e-300, 1.0)
    sf = np.clip(1.0 - cdf, 1e-300, 1.0)
    if n % 2:
        k = (n + 1) // 2  # the k-th of n order statistics
        log_c = math.lgamma(n + 1) - math.lgamma(k) - math.lgamma(n - k + 1)
        density = np.exp(log_c + (k - 1) * np.log(cdf) + (n - k) * np.log(sf)) * phi
        return float(np.sum(x * x * density) * dx)
    k = n // 2  # mean of the k-th and (k+1)-th: E[(X_k + X_k+1)²]/4
    coarse = x[::4]
    step = coarse[1] - coarse[0]
    c_cdf, c_sf, c_phi = cdf[::4], sf[::4], phi[::4]
    second = []
    for j in (k, k + 1):
        log_c = math.lgamma(n + 1) - math.lgamma(j) - math.lgamma(n - j + 1)
        density = np.exp(log_c + (j - 1) * np.log(cdf) + (n - j) * np.log(sf)) * phi
        second.append(float(np.sum(x * x * density) * dx))
    log_c = math.lgamma(n + 1) - math.lgamma(k) - math.lgamma(n - k)
    joint = np.exp(log_c + (k - 1) * np.log(c_cdf)[:, None] + (n - k - 1) * np.log(c_sf)[None, :]) \
        * c_phi[:, None] * c_phi[None, :]
    joint = np.triu(joint, 1) + 0.5 * np.diag(np.diag(joint))  # x < y (half the diagonal's cells)
    cross = float(np.sum(coarse[:, None] * coarse[None, :] * joint) * step * step)
    return (second[0] + second[1] + 2 * cross) / 4


def _erf(x: np.ndarray) -> np.ndarray:
    return np.array([math.erf(v) for v in np.asarray(x, dtype=float).ravel()]).reshape(np.shape(x))


# --- the noise budget -------------------------------------------------------------------------------
@dataclass
class NoiseBudget:
    """Expected variance of a calibrated pixel, term by term (ADU² of the calibrated frame)."""

    terms: dict[str, float] = field(default_factory=dict)

    @property
    def variance(self) -> float:
        total = sum(self.terms.values())
        return total if np.ndim(total) else float(total)

    @property
    def sigma(self) -> float:
        return math.sqrt(self.variance)

    def lines(self) -> list[str]:
        total = self.variance or 1.0
        return [f"{name:<28} σ {math.sqrt(max(v, 0)):9.4g} ADU  ({v / total:5.1%} of the variance)"
                for name, v in self.terms.items()] + [f"{'expected σ':<28} σ {self.sigma:9.4g} ADU"]


def noise_budget(*, read_noise: float, gain: float, dark_current: float, light_exposure: float,
                 dark_exposure: float | None, sky: float, n_bias: int, n_dark: int, n_flat: int = 0,
                 flat_level: float = 0.0, flat_exposure: float = 0.0, method: str = "average",
                 flat: float = 1.0, flat_norm: float = 1.0) -> NoiseBudget:
    """Expected noise of one calibrated pixel. ``read_noise`` e⁻, ``gain`` e⁻/ADU, ``dark_current``
    e⁻/s/px, exposures in s, ``sky`` the signal in ADU reaching the pixel before the flat (sky + star),
    N the frames of each master combined by ``method``; ``flat`` the pixel's true sensitivity and
    ``flat_norm`` the master flat's normalisation (its mean sensitivity), so the calibrated frame is the
    light divided by flat / flat_norm. Biases or darks of 0 frames contribute nothing (not subtracted)."""
    read = (read_noise / gain) ** 2                       # ADU² per frame
    relative = flat / flat_norm                           # what the light is divided by
    k = light_exposure / dark_exposure if dark_exposure and n_dark else 0.0
    terms = {
        "light read noise": read,
        "light dark current": dark_current * light_exposure / gain ** 2,
        "light sky + star": flat * flat * sky / gain,
    }
    if n_bias:
        terms["master bias (×(1−k)²)"] = (1 - k) ** 2 * read * combined_variance(n_bias, method)
    if n_dark:
        dark_frame = read + dark_current * dark_exposure / gain ** 2
        terms["master dark (×k²)"] = k * k * dark_frame * combined_variance(n_dark, method)
    terms = {name: value / relative ** 2 for name, value in terms.items()}
    if n_flat and flat_level > 0:
        level = flat * flat_level
        one_flat = (level / gain + read + dark_current * flat_exposure / gain ** 2) / level ** 2
        bias_in_flat = read * combined_variance(n_bias, method) / level ** 2 if n_bias else 0.0
        relative_variance = one_flat * combined_variance(n_flat, method) + bias_in_flat
        terms["master flat"] = (sky * flat_norm) ** 2 * relative_variance
    return NoiseBudget(terms)


# --- residual against the simulation's truth -----------------------------------------------------------
def truth_scale(true_flat: np.ndarray | None, normalise: str = "mean") -> float:
    """What a calibrated simulated light equals the truth times: the master flat is divided by its
    mean (or median), so the calibrated sky is the true sky × mean (median) of the true sensitivity."""
    if true_flat is None:
        return 1.0
    values = np.asarray(true_flat, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values) if normalise == "median" else values.mean())


def residual(calibrated: np.ndarray, truth_sky: np.ndarray, true_flat: np.ndarray | None = None,
             normalise: str = "mean") -> np.ndarray:
    """calibrated − truth × :func:`truth_scale` (ADU, float32)."""
    scale = np.float32(truth_scale(true_flat, normalise))
    return difference(calibrated, np.asarray(truth_sky, dtype=np.float32) * scale)


@dataclass
class ResidualReport:
    measured_sigma: float        # robust σ of the residual (ADU)
    predicted_sigma: float       # the budget's σ at the median pixel (ADU)
    normalised_sigma: float      # robust σ of residual / predicted σ per pixel (1 when theory holds)
    median: float                # of the residual (ADU): a bias left by the calibration
    budget: NoiseBudget          # at the median pixel
    pixels: int

    @property
    def ratio(self) -> float:
        return self.measured_sigma / self.predicted_sigma if self.predicted_sigma else math.nan

    def lines(self) -> list[str]:
        return self.budget.lines() + [
            f"measured σ {self.measured_sigma:.4g} ADU over {self.pixels} pixels "
            f"(measured / expected = {self.ratio:.3f}; "
            f"residual/σ per pixel has σ {self.normalised_sigma:.3f})",
            f"median residual {self.median:+.4g} ADU"]


def residual_report(calibrated: np.ndarray, truth_sky: np.ndarray, true_flat: np.ndarray | None, *,
                    read_noise: float, gain: float, dark_current: float, light_exposure: float,
                    dark_exposure: float | None, n_bias: int, n_dark: int, n_flat: int = 0,
                    flat_level: float = 0.0, flat_exposure: float = 0.0, method: str = "average",
                    normalise: str = "mean", region: tuple[slice, slice] | None = None) -> ResidualReport:
    """The residual of a calibrated simulated light against the truth, and the noise it should have
    (the budget evaluated per pixel with the true sky + stars and sensitivity), over ``region``."""
    region = region or (slice(None), slice(None))
    flat = np.ones_like(truth_sky, dtype=np.float64) if true_flat is None else np.asarray(true_flat, float)
    norm = truth_scale(true_flat, normalise)
    diff = residual(calibrated, truth_sky, true_flat, normalise)[region]
    sky = np.asarray(truth_sky, dtype=np.float64)[region]
    flat = flat[region]
    common = dict(read_noise=read_noise, gain=gain, dark_current=dark_current, light_exposure=light_exposure,
                  dark_exposure=dark_exposure, n_bias=n_bias, n_dark=n_dark, n_flat=n_flat,
                  flat_level=flat_level, flat_exposure=flat_exposure, method=method, flat_norm=norm)
    variance = noise_budget(sky=sky, flat=flat, **common).variance  # arrays broadcast term by term
    sigma_map = np.sqrt(variance)
    index = np.unravel_index(np.argmin(np.abs(sky - np.median(sky))), sky.shape)  # a sky pixel
    budget = noise_budget(sky=float(sky[index]), flat=float(flat[index]), **common)
    finite = np.isfinite(diff)
    return ResidualReport(robust_sigma(diff), budget.sigma, robust_sigma(diff / sigma_map),
                          float(np.median(diff[finite])) if finite.any() else math.nan, budget,
                          int(finite.sum()))


def budget_inputs(params: SimParams, steps: FrameSteps, combine: str) -> dict:
    """:func:`residual_report`'s budget arguments for a simulated light calibrated with ``steps`` (its
    plan step): the simulation's camera, and the number of frames each master it used combined."""
    factor = steps.dark_factor() if (steps.dark or steps.raw_dark) is not None else 0.0
    dark = steps.dark or steps.raw_dark
    return dict(read_noise=params.read_noise, gain=params.gain, dark_current=params.dark_current,
                light_exposure=params.light_exposure,
                dark_exposure=params.light_exposure / factor if factor else None,
                n_bias=steps.bias.ncombine if steps.bias is not None else 0,
                n_dark=dark.ncombine if dark is not None and steps.dark is not None else 0,
                n_flat=steps.flat.ncombine if steps.flat is not None else 0,
                flat_level=params.flat_level, flat_exposure=params.flat_exposure,
                method="median" if combine == "median" else "average")
