"""How long a plan will take and how much memory it needs, from its shapes alone (shown before a run)."""

from __future__ import annotations

from . import masks
from .combine import Estimate, estimate
from .plan import MasterPlan, Plan
from .recipe import Recipe

#: Seconds per pixel of calibrating and writing one light (read, bias, dark, flat, encode, fsync).
LIGHT_SECONDS_PER_PIXEL = 4e-9


def stack_bytes(master: MasterPlan) -> int:
    """Memory of a master's whole stack as float32."""
    ny, nx = master.inputs[0].frame.shape
    return len(master.inputs) * ny * nx * 4


def estimate_run(plan: Plan, recipe: Recipe) -> Estimate:
    """Rough time and peak memory of carrying out ``plan``. Memory: the largest combine, the masters
    (kept for the lights), two lights being calibrated and their output copies."""
    options = recipe.combine_options()
    seconds, peak = 0.0, 0
    for master in plan.masters:
        ny, nx = master.inputs[0].frame.shape
        from_disk = all(not s.frame.loaded for s in master.inputs) or (
            stack_bytes(master) > recipe.stack_memory_mb * 2**20)
        one = estimate(len(master.inputs), ny, nx, options, from_disk=from_disk)
        seconds += one.seconds
        peak = max(peak, one.peak_bytes)
    cleaning = 0.0
    if recipe.cosmic_rays != "off":
        method = recipe.cosmic_rays
        if method == "auto":
            method = "lacosmic" if masks.astroscrappy_available() else "median"
        cleaning = masks.COSMIC_SECONDS_PER_PIXEL[method]
    light_bytes = 0
    for steps in plan.lights:
        ny, nx = steps.frame.shape
        seconds += ny * nx * (LIGHT_SECONDS_PER_PIXEL + cleaning)
        light_bytes = max(light_bytes, ny * nx * 4)
    masters_bytes = sum(m.inputs[0].frame.shape[0] * m.inputs[0].frame.shape[1] * 4 for m in plan.masters)
    return Estimate(seconds, max(peak, 4 * light_bytes) + masters_bytes)
