"""The master library: an SQLite index of master files copied beside it; add, list, remove, check."""

import os
import sqlite3

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import masterlib
from ccdgui.model.files import sha256_of
from ccdgui.model.masterlib import Library, LibraryError


def write_master(path, imagetyp="MASTER DARK", exptime=300.0, temp=-10.0, gain=None, value=5.0, shape=(8, 10),
                 **extra):
    header = fits.Header()
    header["IMAGETYP"] = imagetyp
    header["EXPTIME"] = exptime
    header["SET-TEMP"] = temp
    header["CCD-TEMP"] = temp + 0.21
    header["INSTRUME"] = "Test Cam"
    header["JD"] = 2458410.7060185187  # 2018-10-19T04:56:40: ccdgui's masters keep JD, not DATE-OBS
    header["NCOMBINE"] = 5
    if gain is not None:
        header["GAIN"] = gain
    for key, item in extra.items():
        header[key.replace("_", "-")] = item
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full(shape, value, np.float32), header).writeto(path)
    return path


@pytest.fixture
def lib(tmp_path, monkeypatch):
    monkeypatch.setenv(masterlib.ENV_VAR, str(tmp_path / "lib" / "library.sqlite"))
    with Library() as library:
        yield library


def test_default_path_follows_the_environment_and_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(masterlib.ENV_VAR, str(tmp_path / "x.sqlite"))
    assert masterlib.default_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv(masterlib.ENV_VAR)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if masterlib.sys.platform.startswith("linux"):
        assert masterlib.default_path() == tmp_path / "data" / "ccdgui" / "library.sqlite"


def test_add_indexes_what_matching_needs_and_copies_the_file(lib, tmp_path):
    source = write_master(tmp_path / "in" / "master_dark_300s.fits", gain=100, OFFSET=10, READOUTM="Fast",
                          EGAIN=1.25, QANOISE=3.5, QAREJECT=0.02, FILTER="r")
    before = sha256_of(source)
    done = lib.add([source])
    assert done.skipped == [] and len(done.added) == 1
    entry = lib.entries()[0]
    assert (entry.kind, entry.instrument, entry.shape, entry.binning) == ("dark", "Test Cam", (8, 10), (1, 1))
    assert (entry.gain, entry.offset, entry.readout, entry.egain) == ("100", "10", "Fast", 1.25)
    assert (entry.set_temp, entry.ccd_temp) == (-10.0, pytest.approx(-9.79))
    assert (entry.exptime, entry.filter) == (300.0, None)  # a dark's filter is not a matching criterion
    assert entry.date == "2018-10-19T04:56:40" and entry.night == "2018-10-18" and entry.ncombine == 5
    assert entry.qa == {"QANOISE": 3.5, "QAREJECT": 0.02}
    assert entry.sha256 == before == sha256_of(entry.path)
    assert entry.origin == str(source.resolve()) and entry.path != str(source.resolve())
    assert entry.path.startswith(str(lib.folder)) and sha256_of(source) == before  # input untouched
    assert masterlib.LibraryMaster.from_dict(entry.to_dict()) == entry


def test_a_second_copy_of_a_file_is_not_added_twice_and_names_stay_unique(lib, tmp_path):
    first = write_master(tmp_path / "a" / "master_bias.fits", "MASTER BIAS", exptime=0.0, value=1.0)
    second = write_master(tmp_path / "b" / "master_bias.fits", "MASTER BIAS", exptime=0.0, value=2.0)
    assert len(lib.add([first]).added) == 1
    again = lib.add([first])
    assert again.added == [] and "already in the library as master_bias.fits" in again.skipped[0]
    assert [e.name for e in lib.add([second]).added] == ["master_bias_2018-10-18.fits"]  # its night
    third = write_master(tmp_path / "c" / "master_bias.fits", "MASTER BIAS", exptime=0.0, value=3.0)
    assert [e.name for e in lib.add([third]).added] == ["master_bias_2018-10-18_2.fits"]
    assert sorted(e.name for e in lib.entries("bias")) == ["master_bias.fits", "master_bias_2018-10-18.fits",
                                                           "master_bias_2018-10-18_2.fits"]


def test_kind_from_the_header_the_user_or_refused(lib, tmp_path):
    ccdproc_like = write_master(tmp_path / "combined.fits", "Dark Frame")  # NCOMBINE 5: a master
    siril_like = write_master(tmp_path / "stacked.fit", "Bias Frame", exptime=0.0, STACKCNT=20)
    fits.delval(siril_like, "NCOMBINE")
    siril = lib.add([siril_like]).added[0]
    assert (siril.kind, siril.ncombine) == ("bias", 20)  # Siril's count of stacked frames
    raw = write_master(tmp_path / "raw_dark.fits", "Dark Frame", NCOMBINE=1)
    light = write_master(tmp_path / "m31.fits", "Light Frame")
    done = lib.add([ccdproc_like, raw, light])
    assert [e.kind for e in done.added] == ["dark"]
    assert any("raw_dark.fits: the header does not say" in s and "--kind" in s for s in done.skipped)
    assert any("m31.fits is a light" in s for s in done.skipped)
    assert [e.kind for e in lib.add([raw], kind="flat").added] == ["flat"]
    with pytest.raises(LibraryError, match="kind 'sky'"):
        masterlib.describe_file(raw, "sky")


def test_unreadable_files_are_skipped_with_a_reason(lib, tmp_path):
    bad = tmp_path / "master_flat.fits"
    bad.write_bytes(b"\0" * 2880)
    done = lib.add([bad, tmp_path])  # a folder: every FITS file below it
    assert done.added == [] and all("master_flat.fits" in s for s in done.skipped)


def test_list_filters_by_kind_and_camera_remove_and_check(lib, tmp_path):
    dark = write_master(tmp_path / "master_dark.fits")
    bias = write_master(tmp_path / "master_bias.fits", "MASTER BIAS", exptime=0.0, INSTRUME="Other")
    lib.add([tmp_path])
    assert [e.name for e in lib.entries(kind="dark")] == [dark.name]
    assert [e.name for e in lib.entries(camera="Other")] == [bias.name]
    assert lib.check() == []
    stored = lib.entries(kind="dark")[0]
    os.chmod(stored.path, 0o644)  # library copies are read-only
    with open(stored.path, "r+b") as handle:  # changed on disk
        handle.seek(-4, 2)
        handle.write(b"\1\2\3\4")
    problems = lib.check()
    assert len(problems) == 1 and "master_dark.fits: changed on disk since it was added" in problems[0]
    removed, unknown = lib.remove(["master_dark", "nothing"])
    assert [e.name for e in removed] == ["master_dark.fits"] and unknown == ["nothing: no such master in the "
                                                                              "library"]
    assert not (lib.folder / stored.path).exists() and [e.name for e in lib.entries()] == [bias.name]
    masterlib.Path(lib.entries()[0].path).unlink()
    assert "master_bias.fits: missing" in lib.check()[0]
    assert dark.exists() and bias.exists()  # the originals are never touched


def test_find_by_id_name_or_sha_prefix(lib, tmp_path):
    lib.add([write_master(tmp_path / "master_dark.fits")])
    entry = lib.entries()[0]
    assert lib.find(str(entry.id)) == entry == lib.find("master_dark.fits") == lib.find(entry.sha256[:10])
    assert lib.find(entry.sha256[:4]) is None


def test_the_database_survives_reopening_and_is_plain_sqlite(tmp_path, monkeypatch):
    path = tmp_path / "lib.sqlite"
    with Library(path) as lib:
        lib.add([write_master(tmp_path / "master_dark.fits")])
    with Library(path) as lib:
        assert [e.name for e in lib.entries()] == ["master_dark.fits"]
    rows = sqlite3.connect(path).execute("SELECT kind, exptime, set_temp FROM masters").fetchall()
    assert rows == [("dark", 300.0, -10.0)]
    assert masterlib.open_entries(path)[0].name == "master_dark.fits"
    monkeypatch.setenv(masterlib.ENV_VAR, str(tmp_path / "absent" / "library.sqlite"))
    assert masterlib.open_entries(None) == []  # a missing default library is no library, not an error
    assert not (tmp_path / "absent").exists()
    with pytest.raises(LibraryError, match="no master library"):
        masterlib.open_entries(tmp_path / "none.sqlite")


def test_library_copies_are_read_only_and_a_failed_copy_leaves_nothing(tmp_path, monkeypatch):
    """A master in the library is not edited in place by accident; a copy that fails (a full disk)
    leaves no partial file and no entry."""
    import errno
    import shutil as shell

    from ccdgui.model import masterlib as ml

    source = tmp_path / "m"
    source.mkdir()
    write_master(source / "master_bias.fits", "MASTER BIAS", exptime=0.0)
    with ml.Library(tmp_path / "lib" / "library.sqlite") as lib:
        stored = lib.add([source / "master_bias.fits"]).added[0]
        assert os.stat(stored.path).st_mode & 0o222 == 0
        write_master(source / "master_dark.fits")

        def full_disk(src, dst, *args, **kwargs):
            with open(dst, "wb") as handle:
                handle.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(shell, "copyfile", full_disk)
        result = lib.add([source / "master_dark.fits"])
        assert not result.added and "No space left" in str(result.skipped)
        assert [e.name for e in lib.entries()] == ["master_bias.fits"]
    assert not list((tmp_path / "lib").rglob("*.part"))
