"""One benchmark case for one tool, in its own process: prints a JSON line with time, memory, match."""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def make_stack(n: int, ny: int, nx: int, seed: int = 1) -> list[np.ndarray]:
    """Frames of Gaussian noise around 1000 ADU with a few hot outliers, float32."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frame = rng.normal(1000.0, 10.0, (ny, nx)).astype(np.float32)
        hits = rng.integers(0, ny * nx, size=ny * nx // 2000)
        frame.flat[hits] += 5000.0
        frames.append(frame)
    return frames


def run_ccdgui(stack, method, reject):
    from ccdgui.model.combine import CombineOptions, combine

    return combine(stack, CombineOptions(method=method, reject=reject)).data


def run_numpy(stack, method, reject):
    cube = np.stack(stack)
    if reject == "none":
        return (np.median(cube, axis=0) if method == "median" else np.mean(cube, axis=0)).astype(np.float32)
    from astropy.stats import mad_std

    centre = np.median(cube, axis=0)
    spread = mad_std(cube, axis=0)
    masked = np.ma.masked_array(cube, (cube < centre - 5 * spread) | (cube > centre + 5 * spread))
    result = np.ma.median(masked, axis=0) if method == "median" else np.ma.mean(masked, axis=0)
    return result.filled(np.nan).astype(np.float32)


def run_ccdproc(stack, method, reject):
    import ccdproc
    from astropy.nddata import CCDData
    from astropy.stats import mad_std

    ccds = [CCDData(frame, unit="adu") for frame in stack]
    kwargs = dict(method=method, dtype=np.float32, mem_limit=16e9)
    if reject == "sigma":
        kwargs.update(sigma_clip=True, sigma_clip_low_thresh=5, sigma_clip_high_thresh=5,
                      sigma_clip_func=np.ma.median, sigma_clip_dev_func=mad_std)
    return np.asarray(ccdproc.combine(ccds, **kwargs).data, dtype=np.float32)


RUNNERS = {"ccdgui": run_ccdgui, "numpy": run_numpy, "ccdproc": run_ccdproc}


def main() -> None:
    tool, case, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[4])
    n, ny, nx, method, reject = case
    stack = make_stack(n, ny, nx)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = float("inf")
    result = None
    for _ in range(max(1, repeats if tool != "ccdproc" else 1)):
        started = time.perf_counter()
        result = RUNNERS[tool](stack, method, reject)
        best = min(best, time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"tool": tool, "seconds": best, "peak_mb": peak_mb, "input_mb": baseline_mb}
    if tool != "ccdgui":
        ours = run_ccdgui(stack, method, reject)
        rel = np.abs(result - ours) / np.maximum(np.abs(ours), 1.0)
        maxrel = float(np.nanmax(rel)) if np.isfinite(rel).any() else 0.0
        report.update(match=bool(maxrel <= 1e-5), maxrel=maxrel)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
