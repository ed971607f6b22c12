"""Simulate a night of CCD frames with the physics of the Astropy CCD Data Reduction Guide.

See ``shared/design/simulation.md``. Fixed camera features (bias column pattern, hot pixels, flat, star
field) are drawn once from the seed; per-frame noise comes from a per-frame child generator, so any single
frame is reproducible from (seed, frame index).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from astropy.io import fits
from psygnal import evented

from .frame import Frame, FrameKind, add_history

N_DUST = 40
START = datetime.datetime(2026, 1, 1, 20, 0, 0)


@evented
@dataclass
class SimParams:
    """Every simulation setting, with the seed notebook's values as defaults. Units in comments."""

    nx: int = 2000                     # columns (NAXIS1)
    ny: int = 2000                     # rows (NAXIS2)
    gain: float = 1.0                  # e-/ADU
    read_noise: float = 700.0          # e-
    bias_level: float = 1100.0         # ADU
    realistic_bias: bool = True        # 5 bright columns with a per-row pattern
    dark_current: float = 0.1          # e-/s/pixel
    hot_pixels: bool = True
    dark_exposure: float = 60.0        # s
    light_exposure: float = 30.0       # s
    flat_exposure: float = 5.0         # s
    flat_level: float = 20000.0        # ADU
    sky: float = 20.0                  # ADU
    n_stars: int = 50
    max_star_counts: float = 2000.0    # ADU, peak of the brightest star
    star_sigma: float = 10.0           # px, Gaussian sigma of a star (the seed passes fwhm=10, a sigma)
    cosmic_rays: int = 0               # per light frame
    n_bias: int = 5
    n_dark: int = 5
    n_flat: int = 5                    # per filter
    n_light: int = 2                   # per filter
    filters: tuple[str, ...] = field(default=("r",))
    seed: int = 0

    @property
    def n_frames(self) -> int:
        return self.n_bias + self.n_dark + len(self.filters) * (self.n_flat + self.n_light)

    def memory_bytes(self) -> int:
        """About what the night holds in memory: every frame in float32 and the camera's truth maps."""
        return (self.n_frames + 3) * self.nx * self.ny * 4


@dataclass
class Night:
    """A simulated night: raw frames plus the truth a reduction should recover."""

    frames: list[Frame]
    true_flat: np.ndarray       # sensitivity, float32 (ny, nx)
    true_sky_stars: np.ndarray  # noiseless sky + stars in ADU, float32 (ny, nx)
    params: SimParams


# --- fixed camera features ------------------------------------------------------------------------------
def _gaussian_stamp(image: np.ndarray, x0: float, y0: float, sigma: float, amplitude: float,
                    reach: float = 6.0) -> None:
    """Add a round 2-D Gaussian into ``image`` within ±reach·sigma of its centre (in place)."""
    ny, nx = image.shape
    r = int(np.ceil(reach * sigma))
    x_lo, x_hi = max(int(x0) - r, 0), min(int(x0) + r + 1, nx)
    y_lo, y_hi = max(int(y0) - r, 0), min(int(y0) + r + 1, ny)
    if x_lo >= x_hi or y_lo >= y_hi:
        return
    x = np.arange(x_lo, x_hi, dtype=np.float32) - np.float32(x0)
    y = np.arange(y_lo, y_hi, dtype=np.float32) - np.float32(y0)
    gx = np.exp(-0.5 * (x / sigma) ** 2)
    gy = np.exp(-0.5 * (y / sigma) ** 2)
    image[y_lo:y_hi, x_lo:x_hi] += np.float32(amplitude) * np.outer(gy, gx)


def _donut_stamp(image: np.ndarray, x0: float, y0: float, sigma: float, amplitude: float) -> None:
    """Add amplitude·(Ricker wavelet − Gaussian) with width ``sigma`` around (x0, y0) (in place).

    The Ricker (Mexican hat) is (1 − r²/σ²)·exp(−r²/2σ²); minus a unit Gaussian of the same σ leaves
    −(r²/σ²)·exp(−r²/2σ²): a dark ring with a bright-ish centre relative to it, like a dust shadow.
    """
    ny, nx = image.shape
    reach = int(np.ceil(6 * sigma))
    x_lo, x_hi = max(int(x0) - reach, 0), min(int(x0) + reach + 1, nx)
    y_lo, y_hi = max(int(y0) - reach, 0), min(int(y0) + reach + 1, ny)
    if x_lo >= x_hi or y_lo >= y_hi:
        return
    x = (np.arange(x_lo, x_hi, dtype=np.float32) - np.float32(x0))[None, :]
    y = (np.arange(y_lo, y_hi, dtype=np.float32) - np.float32(y0))[:, None]
    rr = (x * x + y * y) / np.float32(sigma * sigma)
    ricker = (1 - rr) * np.exp(-rr / 2)
    gauss = np.exp(-rr / 2)
    image[y_lo:y_hi, x_lo:x_hi] += np.float32(amplitude) * (ricker - gauss)


class Camera:
    """The fixed features of a simulated camera and sky field, drawn once from the seed."""

    def __init__(self, params: SimParams) -> None:
        self.params = params
        self.shape = (int(params.ny), int(params.nx))

    def _rng(self, *stream: int) -> np.random.Generator:
        return np.random.default_rng([int(self.params.seed) & 0xFFFFFFFF, *stream])

    @cached_property
    def bias_image(self) -> np.ndarray:
        """Bias level, plus (realistic) 5 columns carrying bias_level + an integer pattern per row."""
        p = self.params
        image = np.full(self.shape, p.bias_level, dtype=np.float32)
        if p.realistic_bias:
            rng = self._rng(1)
            columns = rng.integers(0, self.shape[1], size=min(5, self.shape[1]))
            pattern = rng.integers(0, max(int(0.1 * p.bias_level), 1), size=self.shape[0])
            image[:, columns] = (p.bias_level + pattern)[:, None]
        return image

    @cached_property
    def hot_pixel_index(self) -> np.ndarray:
        """Flat indices of the hot pixels: exactly int(1e-4·nx·ny), fixed for the camera."""
        n = int(1e-4 * self.shape[0] * self.shape[1]) if self.params.hot_pixels else 0
        return np.sort(self._rng(2).choice(self.shape[0] * self.shape[1], size=n, replace=False))

    @cached_property
    def flat(self) -> np.ndarray:
        """Sensitivity: vignetting (Gaussian, σ = 2·max side, peak 1) × dust donuts."""
        ny, nx = self.shape
        side = max(nx, ny)
        x = np.arange(nx, dtype=np.float32) - (nx - 1) / 2
        y = np.arange(ny, dtype=np.float32) - (ny - 1) / 2
        sigma = 2.0 * side
        vignetting = np.outer(np.exp(-0.5 * (y / sigma) ** 2), np.exp(-0.5 * (x / sigma) ** 2))
        rng = self._rng(3)
        margin_x, margin_y = min(50, nx // 4), min(50, ny // 4)
        donuts = np.zeros(self.shape, dtype=np.float32)
        for _ in range(N_DUST):
            diameter = (0.02 if rng.random() < 0.75 else 0.05) * side
            amplitude = rng.normal(0.25, 0.05)
            x0 = rng.uniform(margin_x, nx - margin_x)
            y0 = rng.uniform(margin_y, ny - margin_y)
            _donut_stamp(donuts, x0, y0, diameter / 2, amplitude)
        # the guide: 1 + mean of the donuts, divided by its maximum
        dust = 1 + donuts / N_DUST
        dust /= dust.max()
        return (vignetting * dust).astype(np.float32)

    @cached_property
    def stars(self) -> np.ndarray:
        """Noiseless stars (ADU): Gaussians, amplitudes in [max/10, max], centres in the middle 80 %."""
        p = self.params
        ny, nx = self.shape
        image = np.zeros(self.shape, dtype=np.float32)
        rng = self._rng(4)
        amplitudes = rng.uniform(p.max_star_counts / 10, p.max_star_counts, size=p.n_stars)
        xs = rng.uniform(0.1 * nx, 0.9 * nx, size=p.n_stars)
        ys = rng.uniform(0.1 * ny, 0.9 * ny, size=p.n_stars)
        rng.uniform(0, 2 * np.pi, size=p.n_stars)  # rotation: irrelevant for round stars, kept for parity
        for amplitude, x0, y0 in zip(amplitudes, xs, ys, strict=True):
            _gaussian_stamp(image, x0, y0, p.star_sigma, amplitude)
        return image

    @property
    def sky_stars(self) -> np.ndarray:
        """Noiseless sky + stars in ADU (float32)."""
        return (self.stars + np.float32(self.params.sky)).astype(np.float32)

    def flat_frame(self) -> Frame:
        return Frame(self.flat.copy(), _truth_header("true sensitivity (flat)"), name="flat.fits")

    def sky_stars_frame(self) -> Frame:
        return Frame(self.sky_stars, _truth_header("true noiseless sky + stars, ADU"), name="sky_stars.fits")

    # --- noisy components ----------------------------------------------------------------------------
    def read_noise(self, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        return rng.standard_normal(self.shape, dtype=np.float32) * np.float32(p.read_noise / p.gain)

    def dark_current(self, rng: np.random.Generator, exposure: float, hot: bool = True) -> np.ndarray:
        p = self.params
        mean = p.dark_current * exposure / p.gain
        image = rng.poisson(mean * p.gain, size=self.shape).astype(np.float32) / np.float32(p.gain)
        if hot and self.hot_pixel_index.size:
            image.flat[self.hot_pixel_index] = np.float32(10000 * mean)
        return image

    def poisson_counts(self, rng: np.random.Generator, level: np.ndarray | float) -> np.ndarray:
        gain = self.params.gain
        return rng.poisson(np.asarray(level, dtype=np.float64) * gain, size=self.shape).astype(
            np.float32) / np.float32(gain)

    def cosmic_rays(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """Short bright ellipses (semi-axes 5 × 2 px, ~10000 ADU) at random places and angles."""
        image = np.zeros(self.shape, dtype=np.float32)
        ny, nx = self.shape
        yy, xx = np.mgrid[-6:7, -6:7].astype(np.float32)
        for _ in range(count):
            angle = rng.uniform(0, np.pi)
            u = xx * np.cos(angle) + yy * np.sin(angle)
            v = -xx * np.sin(angle) + yy * np.cos(angle)
            inside = (u / 5) ** 2 + (v / 2) ** 2 <= 1
            x0, y0 = int(rng.integers(0, nx)), int(rng.integers(0, ny))
            ys, xs = np.nonzero(inside)
            ys, xs = ys + y0 - 6, xs + x0 - 6
            keep = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
            image[ys[keep], xs[keep]] = np.float32(rng.normal(10000, 500))
        return image


def make_camera(params: SimParams) -> Camera:
    """The fixed features (bias pattern, hot pixels, flat, star field) for these parameters."""
    return Camera(params)


def _truth_header(what: str) -> fits.Header:
    header = fits.Header()
    header["IMAGETYP"] = "TRUTH"
    header["COMMENT"] = f"ccdgui simulation truth: {what}"
    return header


# --- frames ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    kind: FrameKind
    index: int          # position in the night: the per-frame noise stream
    number: int         # number within its kind/filter
    exposure: float
    filter: str | None


def _plan(params: SimParams) -> list[_Plan]:
    plan: list[_Plan] = []
    for number in range(params.n_bias):
        plan.append(_Plan(FrameKind.BIAS, len(plan), number, 0.0, None))
    for number in range(params.n_dark):
        plan.append(_Plan(FrameKind.DARK, len(plan), number, params.dark_exposure, None))
    for filter_name in params.filters:
        for number in range(params.n_flat):
            plan.append(_Plan(FrameKind.FLAT, len(plan), number, params.flat_exposure, filter_name))
    for filter_name in params.filters:
        for number in range(params.n_light):
            plan.append(_Plan(FrameKind.LIGHT, len(plan), number, params.light_exposure, filter_name))
    return plan


def _frame_rng(params: SimParams, plan: _Plan) -> np.random.Generator:
    """Noise for one frame, independent of how many frames of other kinds the night has."""
    kinds = {FrameKind.BIAS: 11, FrameKind.DARK: 12, FrameKind.FLAT: 13, FrameKind.LIGHT: 14}
    filter_code = sum(ord(c) * 31 ** i for i, c in enumerate(plan.filter or "")) % (2**31)
    return np.random.default_rng([int(params.seed) & 0xFFFFFFFF, kinds[plan.kind], filter_code, plan.number])


def _file_name(plan: _Plan) -> str:
    if plan.kind is FrameKind.BIAS:
        return f"bias_{plan.number:03d}.fits"
    if plan.kind is FrameKind.DARK:
        return f"dark_{plan.exposure:03g}s_{plan.number:03d}.fits"
    safe = "".join(c if c.isalnum() else "_" for c in plan.filter or "none")
    return f"{plan.kind.value}_{safe}_{plan.number:03d}.fits"


def _header(params: SimParams, plan: _Plan) -> fits.Header:
    header = fits.Header()
    header["IMAGETYP"] = (plan.kind.imagetyp, "frame type")
    header["EXPTIME"] = (float(plan.exposure), "[s] exposure time")
    if plan.filter is not None:
        header["FILTER"] = (plan.filter, "filter")
    header["GAIN"] = (float(params.gain), "[e-/ADU] gain")
    header["RDNOISE"] = (float(params.read_noise), "[e-] read noise")
    when = START + datetime.timedelta(seconds=120 * plan.index)
    header["DATE-OBS"] = (when.isoformat(timespec="seconds"), "start of exposure (UTC)")
    header["CCD-TEMP"] = (-20.0, "[C] sensor temperature")
    header["SET-TEMP"] = (-20.0, "[C] sensor set-point")
    header["INSTRUME"] = ("ccdgui simulated camera", "")
    if plan.kind is FrameKind.LIGHT:
        header["OBJECT"] = ("SIMULATED FIELD", "")
    add_history(header, f"Simulated by ccdgui (seed {params.seed}, frame {plan.index})")
    return header


def _frame_data(camera: Camera, plan: _Plan) -> np.ndarray:
    p = camera.params
    rng = _frame_rng(p, plan)
    data = camera.bias_image + camera.read_noise(rng)
    if plan.kind is FrameKind.BIAS:
        return data
    data += camera.dark_current(rng, plan.exposure, hot=True)
    if plan.kind is FrameKind.DARK:
        return data
    if plan.kind is FrameKind.FLAT:
        data += camera.flat * camera.poisson_counts(rng, p.flat_level)
        return data
    data += camera.flat * camera.poisson_counts(rng, camera.sky_stars)
    if p.cosmic_rays:
        cosmic = camera.cosmic_rays(rng, p.cosmic_rays)
        data = np.where(cosmic > 0, data + cosmic, data)
    return data


def iter_night(params: SimParams) -> Iterator[Frame]:
    """Yield the night's raw frames one at a time (bias, dark, flat per filter, light per filter)."""
    camera = make_camera(params)
    for plan in _plan(params):
        data = np.ascontiguousarray(_frame_data(camera, plan), dtype=np.float32)
        yield Frame(data=data, header=_header(params, plan), kind=plan.kind, name=_file_name(plan))


def frame_names(params: SimParams) -> list[str]:
    """The file names ``iter_night`` gives its frames, in order (no pixel is made)."""
    return [_file_name(plan) for plan in _plan(params)]


def simulate_night(params: SimParams) -> Night:
    """All frames of a night plus the truth."""
    camera = make_camera(params)
    frames = list(iter_night(params))
    return Night(frames=frames, true_flat=camera.flat.copy(), true_sky_stars=camera.sky_stars, params=params)
