"""The PyInstaller bundle, built from this checkout by packaging/build.sh, starts, reports its version,
passes its smoke test, reads real FITS frames and writes valid calibrated ones (slow: minutes)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ccdgui import __version__

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / "dist" / "ccdgui" / "ccdgui"
SHARED_DATA = ROOT.parent / "shared" / "data"
ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")} | {
    "QT_QPA_PLATFORM": "offscreen"}


@pytest.fixture(scope="module")
def bundle():
    started = time.perf_counter()
    done = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"\nbuild.sh: {time.perf_counter() - started:.0f} s\n{done.stdout[-600:]}")
    return FROZEN


def test_version(bundle):
    started = time.perf_counter()
    done = subprocess.run([str(bundle), "--version"], capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"ccdgui {__version__}", done.stderr
    print(f"frozen --version: {time.perf_counter() - started:.2f} s")


def test_smoke_test(bundle):
    started = time.perf_counter()
    done = subprocess.run([str(bundle), "--smoke-test"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke test: ok" in done.stdout
    print(f"frozen smoke test: {time.perf_counter() - started:.2f} s wall; {done.stdout.strip()}")


def test_archive_and_size(bundle):
    archive = ROOT / "dist" / f"ccdgui-{__version__}-linux-{os.uname().machine}.tar.gz"
    assert archive.is_file()
    size = sum(p.lstat().st_size for p in bundle.parent.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"bundle {size / 2**20:.0f} MB, archive {archive.stat().st_size / 2**20:.0f} MB")
    assert size < 300 * 2**20


def test_frozen_app_reduces_real_frames(bundle, tmp_path):
    night = SHARED_DATA / "umd_st8_ngc520" / "2018-10-19_r"
    if not night.is_dir():
        pytest.skip(f"real test data {night} is absent (it lives in ../shared/data beside the project)")
    shutil.copytree(night, tmp_path / "night")
    out = tmp_path / "reduced"
    done = subprocess.run([str(bundle), "reduce", str(tmp_path / "night"), str(out)], capture_output=True,
                          text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    outputs = sorted(out.rglob("*.fits"))
    assert len(list((out / "calibrated").iterdir())) == 3 and len(list((out / "masters").iterdir())) == 4
    if shutil.which("fitsverify") is None:
        pytest.skip("fitsverify is not installed: outputs not verified")
    verified = subprocess.run(["fitsverify", "-q", "-e", *map(str, outputs)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
