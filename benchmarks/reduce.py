"""Full reduction, files → files: ``ccdgui reduce`` against a ccdproc script doing the same work (the
Astropy CCD Data Reduction Guide's recipe) on one simulated night, in the same run; then ``ccdgui
reduce`` alone on nights that differ only in their number of lights (peak RSS must not grow with it).

    python -m benchmarks.reduce [--size 2000] [--frames 10] [--sweep-size 4096] [--sweep-frames 15]
                                [--sweep-lights 5,20,60] [--small 2000,10,3]

Prints wall time and peak memory of each, the ratio, and how far apart the calibrated lights are (the
largest pixel difference in units of the light's noise); for every ccdgui run also the estimate it
printed before starting, and measured / estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CCDPROC_SCRIPT = r'''
import json, sys, time
from pathlib import Path
import numpy as np
import ccdproc
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import mad_std

indir, outdir = Path(sys.argv[1]), Path(sys.argv[2])
outdir.mkdir(parents=True, exist_ok=True)
started = time.perf_counter()
collection = ccdproc.ImageFileCollection(indir, glob_include="*.fits")
clip = dict(sigma_clip=True, sigma_clip_low_thresh=5, sigma_clip_high_thresh=5,
            sigma_clip_func=np.ma.median, sigma_clip_dev_func=mad_std, mem_limit=350e6, dtype=np.float32)
def load(name):
    return CCDData.read(indir / name, unit="adu")
biases = collection.files_filtered(imagetyp="BIAS")
bias = ccdproc.combine([str(indir / f) for f in biases], method="average", unit="adu", **clip)
darks = {}
for exposure in sorted(set(collection.values("exptime", unique=True)) - {0.0}):
    names = collection.files_filtered(imagetyp="DARK", exptime=exposure)
    if len(names):
        darks[exposure] = ccdproc.combine([ccdproc.subtract_bias(load(n), bias) for n in names],
                                          method="average", **clip)
def dark_for(frame):
    exposure = frame.header["EXPTIME"]
    best = min(darks, key=lambda e: abs(e - exposure))
    return ccdproc.subtract_dark(frame, darks[best], exposure_time="EXPTIME", exposure_unit=u.second,
                                 scale=best != exposure)
flats = {}
for filt in collection.values("filter", unique=True):
    names = collection.files_filtered(imagetyp="FLAT", filter=filt)
    if not len(names):
        continue
    prepared = [dark_for(ccdproc.subtract_bias(load(n), bias)) for n in names]
    flats[filt] = ccdproc.combine(prepared, method="average",
                                  scale=[1 / np.median(f.data) for f in prepared], **clip)
for name in collection.files_filtered(imagetyp="LIGHT"):
    light = load(name)
    flat = flats[light.header["FILTER"]]
    reduced = ccdproc.flat_correct(dark_for(ccdproc.subtract_bias(light, bias)), flat)
    reduced.data = reduced.data.astype(np.float32)
    reduced.write(outdir / name, overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - started}))
'''


ESTIMATE = re.compile(r"about ([0-9.]+) s, peak memory about ([0-9]+) MB")


def timed(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stderr of one child process."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        errors.seek(0)
        text = errors.read().decode(errors="replace")
    if status != 0:
        raise RuntimeError(f"{command[2]} failed: {text[-500:]}")
    return seconds, usage.ru_maxrss / 1024, text


def reduce_measured(indir: Path, outdir: Path, repeats: int = 1) -> dict:
    """``ccdgui reduce`` in a fresh process (best time and largest peak RSS of ``repeats`` runs, each into an
    empty ``outdir``), the estimate it printed first, and every run's time."""
    runs = []
    for _ in range(repeats):
        shutil.rmtree(outdir, ignore_errors=True)
        seconds, mb, text = timed([sys.executable, "-m", "ccdgui", "reduce", str(indir), str(outdir)])
        found = ESTIMATE.search(text)
        if found is None:
            raise RuntimeError(f"no estimate in ccdgui's output: {text[:300]}")
        runs.append((seconds, mb))
    return {"seconds": min(s for s, _ in runs), "peak_mb": max(m for _, m in runs), "runs": runs,
            "est_seconds": float(found[1]), "est_mb": float(found[2])}


def simulate(folder: Path, size: int, frames: int, lights: int) -> None:
    """A simulated night in ``folder`` (its truth moved out, so that no reduction takes it as input)."""
    n = str(frames)
    subprocess.run([sys.executable, "-m", "ccdgui", "simulate", str(folder), "--size", str(size), str(size),
                    "--n-bias", n, "--n-dark", n, "--n-flat", n, "--n-light", str(lights), "--seed", "1"],
                   check=True, capture_output=True)
    shutil.rmtree(folder / "truth")


def lights_sweep(tmp: Path, size: int, frames: int, counts: list[int], repeats: int) -> list[dict]:
    """One night simulated once with the most lights; each case is a folder of links to its calibration
    frames and its first N lights, reduced in a fresh process (outputs deleted after each)."""
    night = tmp / f"night-{size}"
    simulate(night, size, frames, max(counts))
    files = sorted(night.glob("*.fits"))
    lights = [f for f in files if f.name.startswith("light")]
    calibration = [f for f in files if not f.name.startswith("light")]
    rows = []
    for count in counts:
        case = tmp / f"case-{count}"
        case.mkdir()
        for path in calibration + lights[:count]:
            (case / path.name).symlink_to(path)
        row = reduce_measured(case, tmp / "out", repeats)
        row.update(size=size, frames=frames, lights=count)
        rows.append(row)
        print(format_sweep(row), flush=True)
        shutil.rmtree(tmp / "out")
        shutil.rmtree(case)
    shutil.rmtree(night)
    return rows


def format_sweep(row: dict) -> str:
    time_ratio, memory_ratio = row["seconds"] / row["est_seconds"], row["peak_mb"] / row["est_mb"]
    spread = ", ".join(f"{s:.1f}" for s, _ in row["runs"])
    return (f"| {row['size']}², {row['frames']} bias/dark/flat, {row['lights']} lights | "
            f"{row['seconds']:.1f} s ({spread}) | {row['est_seconds']:.1f} s | {time_ratio:.2f} | "
            f"{row['peak_mb']:.0f} MB | {row['est_mb']:.0f} MB | {memory_ratio:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reduce")
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--no-peer", action="store_true", help="skip the main case (and its ccdproc run)")
    parser.add_argument("--sweep-size", type=int, default=4096)
    parser.add_argument("--sweep-frames", type=int, default=15, help="biases, darks and flats each")
    parser.add_argument("--sweep-lights", default="5,20,60", help="comma-separated; empty: no sweep")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each sweep case (best kept)")
    parser.add_argument("--small", default="2000,10,3", help="size,frames,lights of a small night to "
                        "check the estimate on; empty: none")
    args = parser.parse_args(argv)
    sweep = []
    print("| night | time, best (runs) | estimate | measured / estimate | peak RSS (most) | estimate | "
          "measured / estimate |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ccdgui-reduce-bench-") as tmp:
        tmp = Path(tmp)
        if args.small:
            size, frames, lights = map(int, args.small.split(","))
            sweep += lights_sweep(tmp, size, frames, [lights], args.repeats)
        counts = [int(c) for c in args.sweep_lights.split(",") if c]
        if counts:
            sweep += lights_sweep(tmp, args.sweep_size, args.sweep_frames, counts, args.repeats)
    if args.no_peer:
        print(json.dumps({"sweep": sweep}))
        return 0
    with tempfile.TemporaryDirectory(prefix="ccdgui-reduce-bench-") as tmp:
        tmp = Path(tmp)
        simulate(tmp / "night", args.size, args.frames, args.frames)
        row = reduce_measured(tmp / "night", tmp / "ours", args.repeats)
        row.update(size=args.size, frames=args.frames, lights=args.frames)
        print(format_sweep(row))
        sweep.append(row)
        ours, ours_mb = row["seconds"], row["peak_mb"]
        script = tmp / "ccdproc_reduce.py"
        script.write_text(CCDPROC_SCRIPT)
        theirs, theirs_mb, _ = timed([sys.executable, str(script), str(tmp / "night"), str(tmp / "theirs")])
        from astropy.io import fits
        from astropy.stats import mad_std

        worst = 0.0
        for path in sorted((tmp / "theirs").glob("*.fits")):
            a = fits.getdata(path).astype(np.float64)
            b = fits.getdata(tmp / "ours" / "calibrated" / path.name).astype(np.float64)
            worst = max(worst, float(np.max(np.abs(a - b)) / mad_std(a)))
    frames = 4 * args.frames
    print()
    print(f"| full reduce, {frames} files {args.size}² → {args.frames} calibrated | ccdgui reduce | "
          f"{ours:.1f} s | {ours_mb:.0f} MB | | |")
    print(f"| | ccdproc script | {theirs:.1f} s | {theirs_mb:.0f} MB | {theirs / ours:.1f}× | "
          f"lights differ by at most {worst:.1e} σ |")
    print(json.dumps({"ccdgui_s": ours, "ccdproc_s": theirs, "ratio": theirs / ours,
                      "max_diff_sigma": worst, "sweep": sweep}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
