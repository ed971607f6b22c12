"""How long a plan will take and how much memory it needs, from its shapes alone (shown before a run).

The figures follow what :mod:`execute` does (benchmarks/reduce.py measures both, on the 2-core reference
machine of benchmarks/README.md): masters are built one after another and kept for the frames that use
them; a stack is combined straight from its files unless its frames must be read whole first (flats that
are scaled, compressed files), then it is held in memory (or spilled to scratch files when larger than
``stack_memory_mb``); lights are calibrated two at a time, each read whole, with its own normalised copy
of the flat and a big-endian copy for writing; the sha256 of every input is taken on another thread.
"""

from __future__ import annotations

from . import masks
from .combine import BAND_BYTES, Estimate, estimate
from .frame import FrameKind
from .plan import MasterPlan, Plan
from .recipe import Recipe

#: A ccdgui process before any work: interpreter, numpy, astropy and ccdgui imported.
STARTUP_SECONDS = 0.6
BASE_BYTES = 64 * 2**20
#: Reading one input's headers (done before the estimate is shown; part of the command's time).
HEADER_SECONDS = 0.003
#: Memory per input kept by the plan (header, lazy frame) and per output header read back.
HEADER_BYTES = 64 * 2**10
#: Seconds per pixel (wall, two at a time) of reading a frame whole and applying its steps before a
#: combine, with a flat's scale (a median) measured.
PREPARE_SECONDS_PER_PIXEL = 5e-9
#: Seconds per pixel of spilling a prepared frame to a scratch file (written, read back by the combine).
SPILL_SECONDS_PER_PIXEL = 3e-9
#: Seconds of each master whatever its size (thread pools, files created, renamed and fsynced).
MASTER_SECONDS = 0.15
#: Seconds per pixel of writing a master: big-endian copy, write, fsync, sha256 of the file.
WRITE_SECONDS_PER_PIXEL = 8e-9
#: Seconds per pixel (wall, two at a time) of calibrating and writing one light (read, bias, dark, flat,
#: encode, write, fsync, sha256 of the output, its header read back).
LIGHT_SECONDS_PER_PIXEL = 9e-9
#: Seconds per byte of the input checksums, as far as they slow the work they share two cores with.
HASH_SECONDS_PER_BYTE = 0.25 / 1.7e9
#: Whole-frame float32 copies alive per light in flight: its pixels, a normalised flat, and either the
#: raw bytes being decoded, a scaled dark or the big-endian copy being written.
LIGHT_COPIES = 3
#: Whole-frame float32 copies per frame being prepared for a combine (its pixels, raw bytes or a temporary).
PREPARE_COPIES = 2
#: Bands of a combine in flight (two threads, two queued each, a few working copies of each).
BANDS_IN_FLIGHT = 16


def stack_bytes(master: MasterPlan) -> int:
    """Memory of a master's whole stack as float32."""
    ny, nx = master.inputs[0].frame.shape
    return len(master.inputs) * ny * nx * 4


def held_whole(master: MasterPlan, recipe: Recipe) -> bool:
    """Whether a master's inputs are read whole before the combine (not streamed from their files)."""
    scaled = master.kind is FrameKind.MASTER_FLAT and recipe.flat_scaling != "none"
    return scaled or any(s.frame.loaded or s.frame.rows is None for s in master.inputs)


def estimate_run(plan: Plan, recipe: Recipe, process: bool = True) -> Estimate:
    """Rough time and peak memory of carrying out ``plan``; with ``process``, those of a whole ``ccdgui
    reduce`` command (start-up, headers and the input checksums included)."""
    options = recipe.combine_options()
    seconds = STARTUP_SECONDS + HEADER_SECONDS * len(plan.inputs) if process else 0.0
    base = (BASE_BYTES if process else 0) + HEADER_BYTES * (len(plan.inputs) + len(plan.lights))
    peak, kept = base, 0  # kept: the masters built so far
    for master in plan.masters:
        ny, nx = master.inputs[0].frame.shape
        frame, n = ny * nx * 4, len(master.inputs)
        whole = held_whole(master, recipe)
        spill = stack_bytes(master) > recipe.stack_memory_mb * 2**20
        one = estimate(n, ny, nx, options, from_disk=not whole or spill)
        seconds += one.seconds + n * ny * nx * (PREPARE_SECONDS_PER_PIXEL * whole
                                                 + SPILL_SECONDS_PER_PIXEL * (whole and spill))
        seconds += MASTER_SECONDS + ny * nx * WRITE_SECONDS_PER_PIXEL
        stack = n * frame if whole and not spill else 0
        preparing = 2 * PREPARE_COPIES * frame if whole else 0
        bands = BANDS_IN_FLIGHT * BAND_BYTES
        combining = stack + max(preparing, ny * nx * (4 + 2) + bands)  # the result and its counts
        peak = max(peak, base + kept + combining, base + kept + 2 * frame)  # written: a big-endian copy
        kept += frame
    cleaning = 0.0
    if recipe.cosmic_rays != "off":
        method = recipe.cosmic_rays
        if method == "auto":
            method = "lacosmic" if masks.astroscrappy_available() else "median"
        cleaning = masks.COSMIC_SECONDS_PER_PIXEL[method]
    copies = LIGHT_COPIES + (recipe.cosmic_rays != "off") + (recipe.hot_pixels or recipe.flat_defects)
    light_bytes = 0
    for steps in plan.lights:
        if steps.skip:
            continue
        ny, nx = steps.frame.shape
        seconds += ny * nx * (LIGHT_SECONDS_PER_PIXEL + cleaning)
        light_bytes = max(light_bytes, ny * nx * 4)
    peak = max(peak, base + kept + 2 * copies * light_bytes)
    if process:
        seconds += HASH_SECONDS_PER_BYTE * sum(i.bytes or 0 for i in plan.inputs)
    return Estimate(seconds, peak)
