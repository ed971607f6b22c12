"""Siril (``siril-cli``, tested with Debian's 1.0.6) as a benchmark peer for stacking FITS files.

Siril stacks a *sequence* of images named ``name_00001.fits``…; making one from arbitrary FITS files is
its ``convert`` command, so a Siril user runs two steps and both are timed here, each as its own
``siril-cli`` process (wall time, including Siril's start-up of about 0.1 s; Siril's own "Total
execution time" of each run is returned too):

1. convert, run in a private folder holding symbolic links to the given files (Siril's ``convert``
   takes *every* image in its working directory, in name order)::

       requires 1.0.0
       setcpu 2
       set32bits
       setext fits
       convert frames_ -out=../seq            (+ -fitseq, see below)

2. stack, run in ``seq/``, one of::

       stack frames_ median -nonorm -out=result_median
       stack frames_ rej s 5 5 -nonorm -out=result_sigma-mean      (sigma clipping, then mean)
       stack frames_ rej a 7.413 7.413 -nonorm -out=result_mad-mean (k-MAD clipping, then mean)

``-nonorm`` turns off Siril's default additive+scale normalisation and ``set32bits`` makes the result
32-bit float, so the result is a plain median / clipped mean of the pixel values. Each run uses an
initialisation file of its own in the work folder (which need not exist), so preferences saved by an
interactive Siril do not leak in.

What Siril does with the pixel values (read from the 1.0.6 source and checked against numpy):

* Siril works in [0, 1]: uint16 (BITPIX 16, BZERO 32768) is divided by 65535 when read; 32-bit float
  is divided by 65535 only when its maximum is above 2 (it looks at the DATAMAX keyword when it reads
  a sequence of files; when it converts, at the data). Results above 1 are clipped to 1. So float
  frames in ADU *without* DATAMAX, merely linked into a sequence, come out as an image of 1.0. In
  that case this module converts with ``-fitseq`` (Siril reads every frame and writes them into one
  FITS cube in [0, 1]), a real conversion that then shows in the convert time. Uint16 frames and
  float frames with DATAMAX are only linked (convert takes milliseconds).
* ``load_result`` multiplies the result back to the input's units (the factor is written into the
  result's header as ``CCDGSCAL`` after the timed runs).
* Orientation: none to undo. Siril reads FITS rows bottom-up as stored and writes them back in the
  same order; the result matches ``np.median(cube, axis=0)`` row for row (the flipped image does not).
* Median: ``quickmedian_float`` — the exact median, the mean of the two middle values for even N.
* Sigma clipping (``rej s lo hi``), per pixel: drop zeros; then repeat — centre = median and
  spread = *sample* standard deviation (N−1) of the values still kept, reject v with
  centre − v > lo·spread or v − centre > hi·spread (strict) — until nothing changes or N ≤ 3; no
  more rejections once fewer than about 5 would be left; then the plain mean of what is kept. That is
  ``astropy.stats.sigma_clip(cenfunc="median", stdfunc=std with ddof=1, maxiters=None)``. With the
  spread measured *including* the outlier, one outlier among N values can be at most
  (N−1)/√N sample standard deviations away (4.25 for N = 20), so ``rej s 5 5`` on 20 frames never
  rejects anything: it is the plain mean.
* k-MAD clipping (``rej a lo hi``): as above, but the spread is the *raw* MAD (not ×1.4826),
  estimated with a histogram that has as many bins as there are frames, so it is coarse for small
  stacks. ``method="mad-mean"`` multiplies the given sigmas by 1.4826 so that they mean multiples of
  ``astropy.stats.mad_std``, like ``benchmarks.worker``'s numpy reference (which clips once, not
  iteratively).

Run ``python -m benchmarks.siril --frames 20 --size 2048`` to time Siril and compare it with numpy.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SIRIL_CLI = "siril-cli"
#: Siril's [0, 1] range corresponds to 0..65535 ADU.
USHRT_MAX = 65535.0
#: mad_std = MAD_TO_STD * MAD for Gaussian data.
MAD_TO_STD = 1.482602218505602
METHODS = ("median", "sigma-mean", "mad-mean")
SEQUENCE = "frames_"
SCALE_KEY = "CCDGSCAL"


def siril_available() -> bool:
    """Whether ``siril-cli`` is on PATH."""
    return shutil.which(SIRIL_CLI) is not None


@functools.lru_cache(maxsize=1)
def siril_version() -> str:
    """Siril's version, e.g. ``"1.0.6"`` (``siril-cli --version`` prints ``siril 1.0.6``)."""
    done = subprocess.run([SIRIL_CLI, "--version"], capture_output=True, text=True, timeout=60, check=True)
    words = done.stdout.split()
    return words[-1] if words else "unknown"


def _input_scale(files: list[Path]) -> tuple[float, bool]:
    """Factor from Siril's values back to the files' values, and whether a real conversion is needed.

    Raises ValueError for pixel types whose mapping to [0, 1] was not checked (or, for 32-bit integers,
    depends on the data: Siril stretches them min..max).
    """
    from astropy.io import fits

    kinds = set()
    for path in files:
        header = fits.getheader(path)
        bitpix = header["BITPIX"]
        if bitpix == 16 and header.get("BZERO", 0) == 32768 and header.get("BSCALE", 1) == 1:
            kinds.add(("uint16", None))
        elif bitpix in (-32, -64):
            kinds.add(("float", header.get("DATAMAX")))
        else:
            raise ValueError(f"{path}: BITPIX {bitpix} is not supported here (only uint16 and float)")
    if len({kind for kind, _ in kinds}) > 1:
        raise ValueError("the files mix uint16 and float pixels")
    kind = next(iter(kinds))[0]
    if kind == "uint16":
        return USHRT_MAX, False
    datamax = [value for _, value in kinds]
    if all(value is not None for value in datamax):
        if all(value > 2.0 for value in datamax):
            return USHRT_MAX, False
        if all(value <= 2.0 for value in datamax):
            return 1.0, False
        raise ValueError("the files' DATAMAX are on both sides of 2: Siril would scale them differently")
    # No DATAMAX: Siril decides from the data when it converts; look at the first frame.
    top = float(np.nanmax(fits.getdata(files[0])))
    return (USHRT_MAX, True) if top > 2.0 else (1.0, False)


def _script(threads: int, command: str) -> str:
    return f"requires 1.0.0\nsetcpu {int(threads)}\nset32bits\nsetext fits\n{command}\n"


_TIME = re.compile(r"Total execution time: (?:(\d+) h )?(?:(\d+) min )?([\d.]+) (ms|s)\.")
_REJECTED = re.compile(r"Pixel rejection in channel #0: ([\d.]+)% - ([\d.]+)%")


def _siril_seconds(log: str) -> float | None:
    """Siril's own "Total execution time" of a script run, in seconds."""
    found = _TIME.findall(log)
    if not found:
        return None
    hours, minutes, value, unit = found[-1]
    seconds = float(value) / (1000.0 if unit == "ms" else 1.0)
    return seconds + 60.0 * int(minutes or 0) + 3600.0 * int(hours or 0)


def _run_siril(script: str, name: str, cwd: Path, workdir: Path, threads: int) -> tuple[float, str]:
    """Write ``script`` to ``workdir/name.ssf``, run it in ``cwd``; returns (wall seconds, log)."""
    path = workdir / f"{name}.ssf"
    path.write_text(script)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    command = [SIRIL_CLI, "-i", str(workdir / "siril.config"), "-d", str(cwd), "-s", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - started
    log = done.stdout + done.stderr
    (workdir / f"{name}.log").write_text(log)
    if done.returncode != 0 or "Script execution finished successfully" not in log:
        clean = re.sub(r"\x1b\[[0-9;]*[A-Za-z]T?", "", log)
        lines = [line for line in clean.splitlines() if line.strip() and "progress:" not in line]
        tail = "\n".join(lines[-15:])
        raise RuntimeError(f"siril-cli {name} failed (exit {done.returncode}):\n{tail}")
    return seconds, log


def _stack_command(method: str, sigma_low: float, sigma_high: float, out: str) -> str:
    if method == "median":
        return f"stack {SEQUENCE} median -nonorm -out={out}"
    if method == "sigma-mean":
        return f"stack {SEQUENCE} rej s {sigma_low:g} {sigma_high:g} -nonorm -out={out}"
    if method == "mad-mean":
        low, high = sigma_low * MAD_TO_STD, sigma_high * MAD_TO_STD
        return f"stack {SEQUENCE} rej a {low:.4f} {high:.4f} -nonorm -out={out}"
    raise ValueError(f"method must be one of {METHODS}, not {method!r}")


def stack_with_siril(
    files: list[Path],
    workdir: Path,
    method: str,
    sigma_low: float = 5.0,
    sigma_high: float = 5.0,
    threads: int = 2,
    *,
    fitseq: bool | None = None,
) -> dict:
    """Stack ``files`` with Siril: convert them into a sequence, then stack it; both steps timed.

    ``method`` is "median", "sigma-mean" (Siril's iterative sigma clipping, then the mean) or
    "mad-mean" (Siril's k-MAD clipping with the sigmas in units of mad_std, then the mean).
    ``fitseq`` forces (True) or forbids (False) converting into a FITS cube instead of linking; by
    default it is used only when Siril would otherwise misread float frames (see the module's doc).
    Everything goes into ``workdir`` (emptied of a previous run's files); returns ``convert_s`` and
    ``stack_s`` (wall seconds of each siril-cli run), ``seconds`` (their sum), the same from Siril's
    own log (``siril_convert_s``, ``siril_stack_s``), ``output`` (the result FITS, read it with
    ``load_result``), ``rejected_pct`` (low, high) for clipping methods, ``version`` and ``commands``.
    Raises RuntimeError with the end of Siril's log when a run fails.
    """
    from astropy.io import fits

    if not siril_available():
        raise RuntimeError(f"{SIRIL_CLI} is not on PATH (Debian: apt-get install siril)")
    _stack_command(method, sigma_low, sigma_high, "x")  # validate the method before any work
    files = [Path(f).resolve() for f in files]
    if len(files) < 3:
        raise ValueError("Siril needs at least 3 frames for these methods")
    scale, needs_fitseq = _input_scale(files)
    use_fitseq = needs_fitseq if fitseq is None else fitseq

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    inputs, sequence = workdir / "input", workdir / "seq"
    for folder in (inputs, sequence):
        if folder.exists():
            shutil.rmtree(folder)
    inputs.mkdir()
    suffixes = {path.suffix.lower() for path in files}
    suffix = suffixes.pop() if len(suffixes) == 1 else ".fits"
    for index, path in enumerate(files):
        (inputs / f"in_{index + 1:05d}{suffix}").symlink_to(path)

    convert = f"convert {SEQUENCE} -out=../seq" + (" -fitseq" if use_fitseq else "")
    convert_s, convert_log = _run_siril(_script(threads, convert), "convert", inputs, workdir, threads)

    out = f"result_{method}"
    stack = _stack_command(method, sigma_low, sigma_high, out)
    stack_s, stack_log = _run_siril(_script(threads, stack), f"stack_{method}", sequence, workdir, threads)
    found = sorted(sequence.glob(f"{out}.fit*"))
    if not found:
        raise RuntimeError(f"Siril reported success but wrote no {out}.fits in {sequence}")
    output = found[0]
    fits.setval(output, SCALE_KEY, value=scale, comment="ccdgui: Siril value * this = input units")

    rejected = _REJECTED.findall(stack_log)
    return {
        "convert_s": convert_s,
        "stack_s": stack_s,
        "seconds": convert_s + stack_s,
        "siril_convert_s": _siril_seconds(convert_log),
        "siril_stack_s": _siril_seconds(stack_log),
        "output": output,
        "scale": scale,
        "fitseq": use_fitseq,
        "rejected_pct": tuple(float(v) for v in rejected[-1]) if rejected else None,
        "version": siril_version(),
        "commands": [convert, stack],
    }


def load_result(path: Path | str) -> np.ndarray:
    """A Siril result as float32 in the input files' units (no flip is needed: see the module's doc).

    Uses the ``CCDGSCAL`` factor that ``stack_with_siril`` writes; a Siril float result without it is
    taken to be in Siril's [0, 1] range for 16-bit data, i.e. multiplied by 65535.
    """
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        header, data = hdul[0].header, hdul[0].data
        scale = header.get(SCALE_KEY)
        if scale is None:
            from_siril = str(header.get("PROGRAM", "")).lower().startswith("siril")
            scale = USHRT_MAX if from_siril and header["BITPIX"] < 0 else 1.0
        result = np.asarray(data, dtype=np.float32)
    return result * np.float32(scale) if scale != 1.0 else result


# --------------------------------------------------------------------------------------------------
# Stand-alone check: python -m benchmarks.siril --frames 20 --size 2048


def _make_files(folder: Path, frames: int, size: int, kind: str, seed: int = 1) -> list[Path]:
    """Gaussian noise around 1000 ADU (sigma 10) with a few +5000 outliers, as float32 or uint16 FITS."""
    from astropy.io import fits

    from benchmarks.worker import make_stack

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(make_stack(frames, size, size, seed)):
        path = folder / f"frame_{index:03d}.fits"
        if kind == "uint16":  # astropy writes BITPIX 16 with BZERO 32768, as cameras do
            fits.writeto(path, np.clip(np.round(frame), 0, 65535).astype(np.uint16), overwrite=True)
        elif kind == "float32":
            fits.writeto(path, frame, overwrite=True)
        elif kind == "float32+datamax":
            header = fits.Header([("DATAMAX", float(frame.max()))])
            fits.writeto(path, frame, header=header, overwrite=True)
        else:
            raise ValueError(kind)
        paths.append(path)
    return paths


def _siril_clip_mean(cube: np.ndarray, low: float, high: float) -> tuple[np.ndarray, int]:
    """Siril 1.0.6's ``rej s`` in numpy: iterative, centre median, spread std with ddof=1, strict >.

    Siril stops rejecting a pixel's values in the middle of a pass once too few would remain, in the
    order of its partly sorted buffer; here such a pass rejects nothing at that pixel instead. Returns
    (mean of the kept values, number of pixels where that happened).
    """
    data = cube.astype(np.float64)
    keep = data != 0
    removed = np.zeros(data.shape[1:], dtype=np.int64)
    floored = np.zeros(data.shape[1:], dtype=bool)
    while True:
        masked = np.where(keep, data, np.nan)
        count = keep.sum(axis=0)
        centre = np.nanmedian(masked, axis=0)
        spread = np.nanstd(masked, axis=0, ddof=1)
        reject = keep & ((centre - data > low * spread) | (data - centre > high * spread))
        new = reject.sum(axis=0)
        limit = np.maximum(count - removed - 4, 0)  # Siril: reject only while N - r > 4
        blocked = new > limit
        floored |= blocked & (new > 0)
        reject &= ~blocked & (count > 3)
        if not reject.any():
            break
        keep &= ~reject
        removed += reject.sum(axis=0)
    mean = np.where(keep, data, 0.0).sum(axis=0) / np.maximum(keep.sum(axis=0), 1)
    return mean, int(floored.sum())


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| / |b|."""
    b = np.asarray(b, dtype=np.float64)
    return float(np.nanmax(np.abs(np.asarray(a, dtype=np.float64) - b) / np.maximum(np.abs(b), 1e-30)))


def _references(cube: np.ndarray, method: str, low: float, high: float) -> dict[str, np.ndarray]:
    """What Siril's result is compared with, by name."""
    from astropy.stats import mad_std, sigma_clip

    if method == "median":
        return {"np.median": np.median(cube, axis=0)}
    cube64 = cube.astype(np.float64)
    refs: dict[str, np.ndarray] = {}
    if method == "sigma-mean":
        refs["siril emulation"], floored = _siril_clip_mean(cube64, low, high)
        refs["np.mean (no clipping)"] = cube64.mean(axis=0)
        if floored:
            print(f"   (emulation: {floored} pixels hit Siril's 'keep at least ~4' floor; approximate there)")
        for iters, ddof in ((None, 1), (None, 0), (1, 0)):
            def std(x, axis=None, ddof=ddof):
                return np.nanstd(x, axis=axis, ddof=ddof)

            clipped = sigma_clip(cube64, sigma_lower=low, sigma_upper=high, axis=0, cenfunc="median",
                                 stdfunc=std, maxiters=iters, masked=True)
            name = f"sigma_clip(median, std ddof={ddof}, maxiters={iters})"
            refs[name] = clipped.mean(axis=0).filled(np.nan)
    else:  # mad-mean: benchmarks.worker's numpy reference (one pass, centre median, mad_std)
        centre, spread = np.median(cube64, axis=0), mad_std(cube64, axis=0)
        bad = (cube64 < centre - low * spread) | (cube64 > centre + high * spread)
        once = np.ma.masked_array(cube64, bad).mean(axis=0)
        refs["worker reference (1 pass, mad_std)"] = once.filled(np.nan)
        refs["np.mean (no clipping)"] = cube64.mean(axis=0)
    return refs


def main(argv: list[str] | None = None) -> None:
    """Generate frames, stack them with Siril (best of ``--repeats``) and compare with numpy."""
    from astropy.io import fits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sigma", type=float, default=5.0)
    parser.add_argument("--kinds", default="uint16,float32,float32+datamax",
                        help="comma-separated: uint16, float32, float32+datamax")
    parser.add_argument("--methods", default="median,sigma-mean,mad-mean")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args(argv)
    if not siril_available():
        raise SystemExit(f"{SIRIL_CLI} not found (apt-get install siril)")
    print(f"Siril {siril_version()}, {args.frames} x {args.size}², {args.threads} threads, "
          f"best of {args.repeats}")

    with tempfile.TemporaryDirectory(prefix="siril-bench-") as temporary:
        root = args.workdir or Path(temporary)
        rows = []
        for kind in args.kinds.split(","):
            files = _make_files(root / kind / "frames", args.frames, args.size, kind)
            cube = np.stack([fits.getdata(path).astype(np.float32) for path in files])
            for method in args.methods.split(","):
                runs = []
                for _ in range(args.repeats):
                    runs.append(stack_with_siril(files, root / kind / "siril", method, args.sigma,
                                                 args.sigma, args.threads))
                best = min(runs, key=lambda run: run["seconds"])
                result = load_result(best["output"])
                refs = _references(cube, method, args.sigma, args.sigma)
                first = next(iter(refs.values()))
                flipped = _rel(result[::-1], first)
                print(f"\n{kind} / {method}: {best['commands']}  fitseq={best['fitseq']}  "
                      f"rejected low/high %={best['rejected_pct']}")
                print(f"   convert {[round(r['convert_s'], 3) for r in runs]} s, "
                      f"stack {[round(r['stack_s'], 3) for r in runs]} s; "
                      f"Siril's log: convert {best['siril_convert_s']:.3f} s, "
                      f"stack {best['siril_stack_s']:.3f} s")
                for name, ref in refs.items():
                    print(f"   max rel diff vs {name}: {_rel(result, ref):.3g}")
                print(f"   (flipped bottom-up instead: {flipped:.3g})")
                rows.append((kind, method, min(r["convert_s"] for r in runs),
                             min(r["stack_s"] for r in runs), best["seconds"], _rel(result, first),
                             next(iter(refs))))
        print("\n| files | method | convert s | stack s | total s | max rel diff | vs |")
        print("|---|---|---:|---:|---:|---:|---|")
        for kind, method, convert_s, stack_s, total, diff, name in rows:
            print(f"| {kind} | {method} | {convert_s:.3f} | {stack_s:.3f} | {total:.3f} | {diff:.2g} "
                  f"| {name} |")


if __name__ == "__main__":
    main()
