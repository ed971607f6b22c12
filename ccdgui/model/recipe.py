"""The recipe: every calibration option of a reduction, with the guide's defaults; JSON round-trips."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from psygnal import evented

from .combine import CombineOptions
from .frame import Frame, FrameKind


@evented
@dataclass
class Recipe:
    """Every calibration option; JSON round-trips. Defaults follow the guide."""

    combine: str = "average"          # average | median | sum
    reject: str = "sigma"             # none | sigma | minmax
    sigma_low: float = 5.0
    sigma_high: float = 5.0
    sigma_center: str = "median"      # median | mean
    sigma_spread: str = "mad_std"     # mad_std | std
    sigma_iterations: int = 1
    minmax_low: int = 1
    minmax_high: int = 1
    flat_scaling: str = "inverse_median"  # none | inverse_median | inverse_mean (per flat, before combine)
    flat_normalise: str = "mean"          # mean | median (divisor of the master flat)
    scale_dark: bool = True               # scale a dark of another exposure by t_light / t_dark
    overscan: str = "auto"                # auto (header BIASSEC) | off | a section such as [4:13,1:520]
    overscan_method: str = "median"       # median | mean, per row (or column) of the overscan strip
    trim: str = "auto"                    # auto (header TRIMSEC) | off | a section such as [17:528,1:520]
    stack_memory_mb: int = 1024           # above this, processed frames wait in scratch files
    hot_pixels: bool = False              # mask hot pixels of the light's master dark (set to NaN)
    flat_defects: bool = False            # mask defects of the light's master flat (ccdmask-like)
    cosmic_rays: str = "off"              # off | auto | lacosmic | median: clean the calibrated lights
    kind_overrides: dict[str, str] = field(default_factory=dict)  # file name -> kind the user chose
    hdu_overrides: dict[str, int] = field(default_factory=dict)   # file name -> image HDU the user chose

    def kind_of(self, frame: Frame) -> FrameKind:
        """The frame's kind, as the user re-classified it or as read from its header."""
        override = self.kind_overrides.get(frame.name)
        return FrameKind(override) if override else frame.kind

    def combine_options(self) -> CombineOptions:
        return CombineOptions(
            method=self.combine, reject=self.reject, sigma_low=self.sigma_low, sigma_high=self.sigma_high,
            sigma_center=self.sigma_center, sigma_spread=self.sigma_spread,
            sigma_iterations=self.sigma_iterations, minmax_low=self.minmax_low,
            minmax_high=self.minmax_high)

    def copy(self) -> Recipe:
        """An independent copy (the options a run uses, fixed while the dock changes)."""
        return Recipe.from_dict(json.loads(self.to_json()))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        if not isinstance(data, dict):
            raise ValueError("a recipe is a JSON object of options")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown recipe option(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
