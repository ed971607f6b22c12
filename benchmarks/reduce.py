"""Full reduction, files → files: ``ccdgui reduce`` against a ccdproc script doing the same work (the
Astropy CCD Data Reduction Guide's recipe) on one simulated night, in the same run.

    python -m benchmarks.reduce [--size 2000] [--frames 10]

Prints wall time and peak memory of each, the ratio, and how far apart the calibrated lights are (the
largest pixel difference in units of the light's noise).
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"{command[2]} failed: {child.stderr.read().decode()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reduce")
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ccdgui-reduce-bench-") as tmp:
        tmp = Path(tmp)
        n = str(args.frames)
        subprocess.run([sys.executable, "-m", "ccdgui", "simulate", str(tmp / "night"), "--size",
                        str(args.size), str(args.size), "--n-bias", n, "--n-dark", n, "--n-flat", n,
                        "--n-light", n, "--seed", "1"], check=True, capture_output=True)
        for extra in (tmp / "night" / "truth").iterdir():  # keep the truth out of both reductions
            extra.rename(tmp / extra.name)
        (tmp / "night" / "truth").rmdir()
        ours, ours_mb = timed([sys.executable, "-m", "ccdgui", "reduce", str(tmp / "night"),
                               str(tmp / "ours"), "--quiet"])
        script = tmp / "ccdproc_reduce.py"
        script.write_text(CCDPROC_SCRIPT)
        theirs, theirs_mb = timed([sys.executable, str(script), str(tmp / "night"), str(tmp / "theirs")])
        from astropy.io import fits
        from astropy.stats import mad_std

        worst = 0.0
        for path in sorted((tmp / "theirs").glob("*.fits")):
            a = fits.getdata(path).astype(np.float64)
            b = fits.getdata(tmp / "ours" / "calibrated" / path.name).astype(np.float64)
            worst = max(worst, float(np.max(np.abs(a - b)) / mad_std(a)))
    frames = 4 * args.frames
    print(f"| full reduce, {frames} files {args.size}² → {args.frames} calibrated | ccdgui reduce | "
          f"{ours:.1f} s | {ours_mb:.0f} MB | | |")
    print(f"| | ccdproc script | {theirs:.1f} s | {theirs_mb:.0f} MB | {theirs / ours:.1f}× | "
          f"lights differ by at most {worst:.1e} σ |")
    print(json.dumps({"ccdgui_s": ours, "ccdproc_s": theirs, "ratio": theirs / ours,
                      "max_diff_sigma": worst}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
