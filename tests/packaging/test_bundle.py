"""The PyInstaller bundle, built from this checkout by packaging/build.sh, starts, reports its version,
passes its smoke test (offscreen and on a real X server), runs from its unpacked archive, reads real
FITS frames and writes valid calibrated ones (slow: about 2.5 minutes, most of it the build).

CCDGUI_REUSE_BUNDLE=1 skips the build and tests the dist/ccdgui/ already there (for quick iteration)."""

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ccdgui import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / "dist" / "ccdgui" / "ccdgui"
ARCHIVE = ROOT / "dist" / f"ccdgui-{__version__}-linux-{os.uname().machine}.tar.gz"
SHARED_DATA = ROOT.parent / "shared" / "data"
ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")} | {
    "QT_QPA_PLATFORM": "offscreen"}


@pytest.fixture(scope="module")
def bundle():
    if os.environ.get("CCDGUI_REUSE_BUNDLE") == "1" and FROZEN.is_file() and ARCHIVE.is_file():
        print(f"\nCCDGUI_REUSE_BUNDLE=1: testing the existing {FROZEN}, not rebuilt")
        return FROZEN
    started = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"\nbuild.sh: {time.perf_counter() - started:.0f} s\n{done.stdout[-600:]}")
    return FROZEN


def _run(args, timeout, env=ENV, cwd=None):
    started = time.perf_counter()
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout)
    return done, time.perf_counter() - started


def test_version(bundle):
    done, wall = _run([bundle, "--version"], 60)
    assert done.returncode == 0 and done.stdout.strip() == f"ccdgui {__version__}", done.stderr
    print(f"frozen --version: {wall:.2f} s")


def test_smoke_test(bundle, tmp_path):
    done, wall = _run([bundle, "--smoke-test"], 120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test: ok" in done.stdout
    print(f"frozen smoke test (offscreen): {wall:.2f} s wall, process start to exit; {done.stdout.strip()}")


def test_smoke_test_on_x_server(bundle, tmp_path):
    """The bundled xcb platform plugin and the libraries it needs load against a real X server."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed: the xcb platform plugin is not exercised")
    env = {k: v for k, v in ENV.items() if k != "QT_QPA_PLATFORM"} | {"QT_DEBUG_PLUGINS": "1"}
    done, wall = _run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", bundle, "--smoke-test"], 120,
                      env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "smoke test: ok" in done.stdout
    xcb = f'{bundle.parent}/_internal/PyQt6/Qt6/plugins/platforms/libqxcb.so" loaded library'
    assert xcb in done.stderr, done.stderr[-3000:]  # Qt's plugin log: the bundle's own xcb plugin
    print(f"frozen smoke test (Xvfb, xcb): {wall:.2f} s wall; {done.stdout.strip()}")


def test_bundle_size(bundle):
    size_mb = int(subprocess.run(["du", "-sm", str(bundle.parent)], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
    print(f"bundle {size_mb} MB (du), archive {ARCHIVE.stat().st_size / 2**20:.0f} MB")
    assert size_mb < 300


def test_bundle_carries_the_compiled_combine_kernel(bundle):
    """Built where a C compiler is (as here): the frozen app combines with the compiled kernel."""
    from ccdgui.model import combine

    if combine._stack is None:
        pytest.skip("the kernel was not built in this checkout (no C compiler)")
    kernels = list((bundle.parent / "_internal" / "ccdgui" / "model").glob("_stack*"))
    assert len(kernels) == 1, kernels


def test_unpacked_archive_runs_elsewhere(bundle, tmp_path):
    """The archive is self-contained: unpacked in another folder, the app runs without the build tree."""
    with tarfile.open(ARCHIVE) as archive:
        names = archive.getnames()
        assert "ccdgui/ccdgui" in names and all(n == "ccdgui" or n.startswith("ccdgui/") for n in names)
        archive.extractall(tmp_path, filter="tar")
    done, _ = _run([tmp_path / "ccdgui" / "ccdgui", "--version"], 60, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"ccdgui {__version__}", done.stderr


def test_frozen_app_reduces_real_frames(bundle, tmp_path):
    night = SHARED_DATA / "umd_st8_ngc520" / "2018-10-19_r"
    if not night.is_dir():
        pytest.skip(f"real test data {night} is absent (it lives in ../shared/data beside the project)")
    # One consistent night (SBIG ST-8, Sloan r'): 3 biases, 3 x 300 s and 3 x 3 s darks, 3 x 3 s flats
    # and 3 x 300 s lights, 47 MB. Copied: the shared data folder is read-only and must stay untouched.
    indir, out = tmp_path / "night", tmp_path / "reduced"
    indir.mkdir()
    for path in night.glob("*.fit"):
        shutil.copyfile(path, indir / path.name)
    lights = sorted(p.name for p in indir.glob("NGC520-*.fit"))
    done, wall = _run([bundle, "reduce", indir, out], 300)
    assert done.returncode == 0, done.stderr
    print(f"frozen reduce of {len(list(indir.iterdir()))} real frames: {wall:.2f} s wall; "
          f"{done.stderr.strip().splitlines()[-1]}")

    calibrated = sorted((out / "calibrated").iterdir())
    masters = sorted((out / "masters").iterdir())
    assert [p.name for p in calibrated] == lights
    master_names = " ".join(p.name for p in masters)
    for kind in ("bias", "dark", "flat"):
        assert kind in master_names, master_names
    # Frozen numpy/astropy give the same numbers as the data's README: bias ~897 ADU, sky ~780-790 ADU.
    bias = next(p for p in masters if "bias" in p.name)
    assert 880 < float(np.nanmedian(fits.getdata(bias))) < 915
    for path in calibrated:
        assert 750 < float(np.nanmedian(fits.getdata(path))) < 830, path.name

    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed: outputs not verified")
    outputs = [str(p) for p in calibrated + masters]
    verified = subprocess.run(["fitsverify", "-q", "-e", *outputs], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("verification OK") == len(outputs), verified.stdout
