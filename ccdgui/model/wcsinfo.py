"""Sky coordinates under a pixel, from a frame's WCS (astropy.wcs, SIP distortion included).

Pixels are 1-based FITS coordinates (x along a row, y along a column, as DS9 shows them). A header with
no celestial WCS, or one that lies (a singular CD matrix, NaN, a projection astropy cannot make), gives
None: nothing here raises on a header.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SkyPosition:
    ra: float    # degrees, ICRS/FK5 as the header says
    dec: float   # degrees
    frame: str   # e.g. "icrs", "fk5"

    @property
    def ra_hms(self) -> str:
        """RA as hh:mm:ss.sss."""
        total = (self.ra % 360.0) / 15.0 * 3600.0
        total = round(total, 3) % 86400.0
        hours, rest = divmod(total, 3600.0)
        minutes, seconds = divmod(rest, 60.0)
        return f"{int(hours):02d}:{int(minutes):02d}:{seconds:06.3f}"

    @property
    def dec_dms(self) -> str:
        """Dec as ±dd:mm:ss.ss."""
        total = round(abs(self.dec) * 3600.0, 2)
        sign = "-" if self.dec < 0 and total > 0 else "+"
        degrees, rest = divmod(total, 3600.0)
        minutes, seconds = divmod(rest, 60.0)
        return f"{sign}{int(degrees):02d}:{int(minutes):02d}:{seconds:05.2f}"

    def text(self) -> str:
        """'RA 18:42:10.585 Dec +00:06:46.22 (280.544106°, +0.112839°)'."""
        return f"RA {self.ra_hms} Dec {self.dec_dms} ({self.ra:.6f}°, {self.dec:+.6f}°)"


@dataclass(frozen=True)
class Compass:
    """Unit vectors, in pixel coordinates (x right, y up the rows), pointing north and east at a pixel."""

    north: tuple[float, float]
    east: tuple[float, float]


class FrameWCS:
    """A header's celestial WCS, ready for the cursor readout and the compass."""

    def __init__(self, wcs) -> None:
        self.wcs = wcs
        frame = str(getattr(wcs.wcs, "radesys", "") or "").strip().lower()
        self.frame = frame or "icrs"

    @classmethod
    def from_header(cls, header) -> FrameWCS | None:
        """The header's celestial WCS (with SIP), or None when it has none that works."""
        if header is None:
            return None
        try:
            keys = set(header.keys())
        except Exception:  # noqa: BLE001 - a header-like object that is not one
            return None
        if not any(str(k).startswith(("CTYPE", "CRVAL")) for k in keys):
            return None
        try:
            from astropy.wcs import WCS

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs = WCS(header, naxis=2, relax=True)
                if not wcs.has_celestial:
                    return None
                found = cls(wcs.celestial if wcs.naxis != 2 else wcs)
                shape = (header.get("NAXIS2") or 1, header.get("NAXIS1") or 1)
                centre = found._world(np.array([(shape[1] + 1) / 2.0]), np.array([(shape[0] + 1) / 2.0]))
        except Exception:  # noqa: BLE001 - astropy raises many kinds on a header that lies
            return None
        if centre is None:
            return None
        return found

    def _world(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                ra, dec = self.wcs.all_pix2world(np.asarray(x, float) - 1.0, np.asarray(y, float) - 1.0, 0)
        except Exception:  # noqa: BLE001
            return None
        if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
            return None
        return np.asarray(ra, float), np.asarray(dec, float)

    def sky(self, x: float, y: float) -> SkyPosition | None:
        """RA/Dec at 1-based FITS pixel (x, y), or None where the WCS gives no finite position."""
        found = self._world(np.array([x]), np.array([y]))
        if found is None:
            return None
        return SkyPosition(float(found[0][0]) % 360.0, float(found[1][0]), self.frame)

    def _pixel(self, ra: float, dec: float) -> tuple[float, float] | None:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                x, y = self.wcs.all_world2pix(np.array([ra]), np.array([dec]), 0, quiet=True)
        except Exception:  # noqa: BLE001
            return None
        if not (np.isfinite(x[0]) and np.isfinite(y[0])):
            return None
        return float(x[0]) + 1.0, float(y[0]) + 1.0

    def compass(self, x: float, y: float) -> Compass | None:
        """North and east at 1-based pixel (x, y), as unit vectors in pixel coordinates."""
        here = self.sky(x, y)
        if here is None:
            return None
        step = self.pixel_scale() or 1e-4
        cos_dec = max(math.cos(math.radians(here.dec)), 1e-6)
        north = self._pixel(here.ra, min(89.999999, here.dec + step * 10))
        east = self._pixel(here.ra + step * 10 / cos_dec, here.dec)
        if north is None or east is None:
            return None
        vectors = []
        for px, py in (north, east):
            dx, dy = px - x, py - y
            length = math.hypot(dx, dy)
            if not length > 0:
                return None
            vectors.append((dx / length, dy / length))
        return Compass(vectors[0], vectors[1])

    def pixel_scale(self) -> float | None:
        """Degrees per pixel (geometric mean of the two axes), or None."""
        try:
            from astropy.wcs.utils import proj_plane_pixel_scales

            scales = proj_plane_pixel_scales(self.wcs)
            value = float(math.sqrt(abs(scales[0] * scales[1])))
        except Exception:  # noqa: BLE001
            return None
        return value if math.isfinite(value) and value > 0 else None


def sky_at(header, x: float, y: float) -> SkyPosition | None:
    """RA/Dec at 1-based FITS pixel (x, y) of a frame with this header, or None (no usable WCS)."""
    found = FrameWCS.from_header(header)
    return None if found is None else found.sky(x, y)


def compass_at(header, x: float, y: float) -> Compass | None:
    """North/east unit vectors (pixel coordinates) at (x, y), or None (no usable WCS)."""
    found = FrameWCS.from_header(header)
    return None if found is None else found.compass(x, y)
