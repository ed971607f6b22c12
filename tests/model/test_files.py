"""Files before FITS parsing: FITS names, checksums taken in the background, a cheap import."""

import hashlib
import subprocess
import sys

import pytest

from ccdgui.model.files import Checksums, iter_fits_paths, sha256_of


def test_checksums_match_hashlib_for_known_and_unknown_paths(tmp_path):
    paths = []
    for index in range(5):
        path = tmp_path / f"f{index}.fits"
        path.write_bytes(bytes([index]) * (3 << 20 | index))  # several 1 MiB chunks and a tail
        paths.append(path)
    late = tmp_path / "late.fits"
    late.write_bytes(b"x" * 1000)
    with Checksums(paths[:4]) as checksums:
        for path in paths + [late]:  # the last two were not given at the start: hashed on demand
            assert checksums.of(path) == hashlib.sha256(path.read_bytes()).hexdigest()
        assert checksums.of(tmp_path / "." / "f0.fits") == sha256_of(paths[0])  # same file, other spelling


def test_closed_checksums_do_not_start_more_work(tmp_path):
    paths = [tmp_path / f"f{i}.fits" for i in range(50)]
    for path in paths:
        path.write_bytes(b"\0" * (1 << 20))
    checksums = Checksums(paths)
    checksums.close()
    cancelled = sum(future.cancelled() for future in checksums._digests.values())
    assert cancelled >= 40  # at most the running one (and a few finished) were not dropped


def test_fits_names(tmp_path):
    for name in ("a.fits", "b.FIT", "c.fits.fz", "d.fts.gz", ".hidden.fits", "e.txt", "f.fits.part"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "g.fit").write_bytes(b"")
    found = [p.name for p in iter_fits_paths(tmp_path)]
    assert found == ["a.fits", "b.FIT", "c.fits.fz", "d.fts.gz", "g.fit"]


def test_importing_files_does_not_import_astropy():
    """The command line starts checksumming while astropy is still being imported."""
    code = "import sys, ccdgui.model.files; print(any(m.startswith('astropy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_model_package_still_offers_frame():
    from ccdgui.model import Frame, FrameKind
    from ccdgui.model.frame import Frame as FrameClass

    assert Frame is FrameClass and FrameKind.LIGHT.value
    with pytest.raises(ImportError):
        from ccdgui.model import NoSuchThing  # noqa: F401
