"""ccdgui library add|list|remove|check, and reduce --library PATH --to-library: masters of one night
calibrate another, a changed library file is reported and refused, replay names and checks them."""

import json
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.cli import main
from ccdgui.model import masterlib
from ccdgui.model.files import sha256_of

from .conftest import one_line_error, simulated_folder

SMALL = ["--size", "60", "40", "--n-bias", "3", "--n-dark", "3", "--n-flat", "3", "--n-light", "2",
         "--seed", "3"]


@pytest.fixture(autouse=True)
def own_library(tmp_path, monkeypatch):
    """Every test gets its own default library (never the user's)."""
    monkeypatch.setenv(masterlib.ENV_VAR, str(tmp_path / "default-lib" / "library.sqlite"))


@pytest.fixture
def night(tmp_path):
    return simulated_folder(tmp_path, SMALL)


def lights_only(night, tmp_path):
    """A copy of the night's lights and flats alone (no bias, no dark)."""
    folder = tmp_path / "lights"
    folder.mkdir()
    for path in night.iterdir():
        kind = fits.getheader(path).get("IMAGETYP", "").lower()
        if "light" in kind or "flat" in kind:
            shutil.copy2(path, folder / path.name)
    return folder


def test_reduce_to_library_then_lights_and_flats_alone_give_identical_results(night, tmp_path, capsys):
    lib = tmp_path / "lib" / "library.sqlite"
    assert main(["reduce", str(night), str(tmp_path / "one"), "--quiet", "--library", str(lib),
                 "--to-library"]) == 0
    assert "3 master(s) added to" in capsys.readouterr().err
    assert main(["library", "list", "--library", str(lib), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(e["kind"] for e in listed) == ["bias", "dark", "flat"]
    assert all(e["sha256"] == sha256_of(e["path"]) for e in listed)
    lights = lights_only(night, tmp_path)
    assert main(["reduce", str(lights), str(tmp_path / "two"), "--dry-run", "--library", str(lib)]) == 0
    dry = capsys.readouterr().out
    assert "library: master_bias.fits (bias," in dry and "    dark: library master_dark_60s (" in dry
    assert main(["reduce", str(lights), str(tmp_path / "two"), "--quiet", "--library", str(lib)]) == 0
    for path in (tmp_path / "one" / "calibrated").iterdir():
        again = tmp_path / "two" / "calibrated" / path.name
        np.testing.assert_array_equal(fits.getdata(path), fits.getdata(again))
    record = json.loads((tmp_path / "two" / "recipe.json").read_text())
    assert sorted(m["name"] for m in record["library_masters"]) == ["master_bias.fits",
                                                                    "master_dark_60s.fits"]
    assert all(m["origin"].startswith(str(tmp_path / "one")) for m in record["library_masters"])
    assert main(["reduce", "--recipe", str(tmp_path / "two" / "recipe.json"), "--quiet"]) == 0
    assert "outputs reproduced bit for bit" in capsys.readouterr().err


def test_a_changed_library_file_is_reported_by_check_and_refused_by_reduce_and_replay(night, tmp_path,
                                                                                    capsys):
    assert main(["reduce", str(night), str(tmp_path / "one"), "--quiet", "--to-library"]) == 0  # default lib
    lights = lights_only(night, tmp_path)
    assert main(["reduce", str(lights), str(tmp_path / "two"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["library", "check"]) == 0
    dark = next(e for e in masterlib.open_entries(None) if e.kind == "dark")
    os.chmod(dark.path, 0o644)  # library copies are read-only
    with open(dark.path, "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"12345678")
    assert main(["library", "check"]) == 1
    out = capsys.readouterr()
    assert "master_dark_60s.fits: changed on disk since it was added" in out.out
    assert "2 of 3 master(s) intact" in out.err
    assert main(["reduce", str(lights), str(tmp_path / "three"), "--quiet"]) == 2
    assert "library master(s) missing or changed since they were added: refused" in one_line_error(capsys)
    assert not (tmp_path / "three" / "recipe.json").exists()
    assert main(["reduce", "--recipe", str(tmp_path / "two" / "recipe.json"), "--quiet"]) == 2
    assert "1 library master(s) differ from the recipe: refused" in one_line_error(capsys)
    assert main(["reduce", str(lights), str(tmp_path / "four"), "--quiet", "--no-library"]) == 0


def test_add_list_remove_and_their_one_line_errors(night, tmp_path, capsys):
    assert main(["reduce", str(night), str(tmp_path / "one"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["library", "add", str(tmp_path / "one" / "masters")]) == 0
    assert "3 master(s) added" in capsys.readouterr().err
    assert main(["library", "add", str(tmp_path / "one" / "masters" / "master_bias.fits")]) == 3
    assert "already in the library" in capsys.readouterr().err
    assert main(["library", "add", str(night / "bias_000.fits")]) == 3  # a raw frame: not a master
    assert "--kind" in capsys.readouterr().err
    assert main(["library", "add", str(night / "bias_000.fits"), "--kind", "bias"]) == 0
    assert main(["library", "list", "--kind", "bias"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and "bias_000.fits" in "\n".join(table)
    assert main(["library", "remove", "bias_000.fits"]) == 0
    assert main(["library", "remove", "nothing"]) == 2
    assert "nothing: no such master in the library" in one_line_error(capsys)
    assert main(["library", "add", str(tmp_path / "absent")]) == 2
    assert main(["library"]) == 2
    assert main(["reduce", str(night), str(tmp_path / "x"), "--library", str(tmp_path / "no.sqlite")]) == 2
    assert "no master library at" in one_line_error(capsys)
    assert [e.name for e in masterlib.open_entries(None)] == ["master_bias.fits", "master_dark_60s.fits",
                                                              "master_flat_r.fits"]


def test_inspect_pixel_of_a_light_shows_the_stacks_built_tonight_and_names_the_library_s(
        night, tmp_path, capsys):
    library = tmp_path / "lib.sqlite"
    assert main(["reduce", str(night), str(tmp_path / "first"), "--library", str(library), "--to-library",
                 "--quiet"]) == 0
    tonight = tmp_path / "tonight"
    tonight.mkdir()
    for path in night.iterdir():
        if not path.name.startswith("bias"):
            shutil.copy2(path, tonight / path.name)
    assert main(["reduce", str(tonight), str(tmp_path / "out"), "--library", str(library), "--quiet"]) == 0
    capsys.readouterr()
    light = sorted(p.name for p in tonight.glob("light*"))[0]
    assert main(["inspect", "pixel", str(tmp_path / "out"), "--master", light, "--x", "3", "--y", "4"]) == 0
    out, err = capsys.readouterr()
    assert "master_bias.fits (" in err and "came from the master library" in err
    assert "master_dark_" in out and "master_flat_" in out and "master_bias" not in out
