"""One benchmark case for one tool, in its own process: prints a JSON line with time, memory, match."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

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


def make_files(n: int, ny: int, nx: int, folder: Path) -> list[Path]:
    """The same kind of stack written as camera files: uint16 with BZERO = 32768, one per frame."""
    from astropy.io import fits

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(make_stack(n, ny, nx)):
        path = folder / f"frame_{index:03d}.fits"
        if not path.exists():
            hdu = fits.PrimaryHDU(np.clip(np.round(frame), 0, 65535).astype(np.uint16))
            hdu.header["IMAGETYP"] = "BIAS"
            hdu.writeto(path)
        paths.append(path)
    return paths


def run_ccdgui_files(paths, method, reject):
    """Headers first, then every band read straight from the files: memory does not grow with N."""
    from ccdgui.model import fitsio
    from ccdgui.model.combine import CombineOptions, combine

    frames, _ = fitsio.read_frames(paths, lazy=True)
    return combine([f.stack_source() for f in frames], CombineOptions(method=method, reject=reject)).data


def run_numpy_files(paths, method, reject):
    from astropy.io import fits

    return run_numpy([fits.getdata(p).astype(np.float32) for p in paths], method, reject)


def run_ccdproc_files(paths, method, reject):
    import ccdproc
    from astropy.stats import mad_std

    kwargs = dict(method=method, dtype=np.float32, unit="adu")
    if reject == "sigma":
        kwargs.update(sigma_clip=True, sigma_clip_low_thresh=5, sigma_clip_high_thresh=5,
                      sigma_clip_func=np.ma.median, sigma_clip_dev_func=mad_std)
    return np.asarray(ccdproc.combine([str(p) for p in paths], **kwargs).data, dtype=np.float32)


def run_siril_files(paths, method, reject):
    from benchmarks import siril

    if reject == "sigma" and method == "median":
        raise RuntimeError("Siril has no median with sigma clipping")
    kind = "median" if reject == "none" else "sigma-mean"
    out = siril.stack_with_siril(paths, paths[0].parent / "siril", kind)
    return siril.load_result(out["output"]).astype(np.float32)


RUNNERS = {"ccdgui": run_ccdgui, "numpy": run_numpy, "ccdproc": run_ccdproc}
FILE_RUNNERS = {"ccdgui": run_ccdgui_files, "numpy": run_numpy_files, "ccdproc": run_ccdproc_files,
                "siril": run_siril_files}


def main_files(tool: str, case: list, workdir: Path, repeats: int) -> dict:
    n, ny, nx, method, reject, _ = case
    paths = sorted((workdir / f"files_{n}x{ny}x{nx}").glob("frame_*.fits"))
    best, result = float("inf"), None
    for _ in range(max(1, repeats if tool != "ccdproc" else 1)):
        started = time.perf_counter()
        result = FILE_RUNNERS[tool](paths, method, reject)
        best = min(best, time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"tool": tool, "seconds": best, "peak_mb": peak_mb}
    if tool != "ccdgui":
        ours = run_ccdgui_files(paths, method, reject)
        rel = np.abs(result - ours) / np.maximum(np.abs(ours), 1.0)
        report.update(match=bool(np.nanmax(rel) <= 1e-5), maxrel=float(np.nanmax(rel)))
    return report


def main() -> None:
    if sys.argv[1] == "--make-files":
        n, ny, nx = (int(v) for v in sys.argv[2:5])
        make_files(n, ny, nx, Path(sys.argv[5]) / f"files_{n}x{ny}x{nx}")
        return
    tool, case, repeats = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[4])
    if len(case) == 6 and case[5] == "files":
        print(json.dumps(main_files(tool, case, Path(sys.argv[3]), repeats)))
        return
    n, ny, nx, method, reject = case[:5]
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
