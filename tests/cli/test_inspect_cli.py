"""ccdgui inspect pixel / qa: JSON and tables, and one-line errors with exit 2."""

import json

import pytest

from ccdgui.cli import main

SMALL = ["--size", "80", "60", "--n-bias", "4", "--n-dark", "4", "--n-flat", "4", "--n-light", "1",
         "--seed", "3", "--read-noise", "12"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    assert main(["simulate", str(base / "night"), *SMALL]) == 0
    assert main(["reduce", str(base / "night"), str(base / "out"), "--quiet"]) == 0
    return base / "out"


def test_inspect_pixel_json(out, capsys):
    assert main(["inspect", "pixel", str(out / "recipe.json"), "--master", "master_bias.fits", "--x", "5",
                 "--y", "7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["x"], data["y"], data["count"], data["matches"]) == (5, 7, 4, True)
    assert [f["frame"] for f in data["frames"]] == [f"bias_{i:03d}.fits" for i in range(4)]
    assert all(f["reason"] == "kept" for f in data["frames"] if f["kept"])


def test_inspect_pixel_of_a_light_gives_its_masters_stacks(out, capsys):
    assert main(["inspect", "pixel", str(out), "--master", "light_r_000.fits", "--x", "80", "--y", "60"]) == 0
    text = capsys.readouterr().out
    assert "master_bias.fits" in text and "master_flat_r.fits" in text and "equals the master" in text


def test_inspect_qa_table_and_json(out, capsys):
    masters = sorted(str(p) for p in (out / "masters").glob("*.fits"))
    assert main(["inspect", "qa", *masters]) == 0
    text = capsys.readouterr().out
    assert "read noise" in text and "QARDNOIS" in text and "hot pixels" in text
    assert main(["inspect", "qa", *masters, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    bias = next(d for d in data if d["master"] == "master_bias.fits")
    assert bias["figures"]["QARDNOIS"]["value"] == pytest.approx(12, rel=0.1)


@pytest.mark.parametrize("argv, message", [
    (["inspect"], "inspect needs a command"),
    (["inspect", "pixel", "missing.json", "--master", "m", "--x", "1", "--y", "1"], "cannot read"),
    (["inspect", "pixel", "{out}", "--master", "ghost.fits", "--x", "1", "--y", "1"],
     "no master or light 'ghost.fits'"),
    (["inspect", "pixel", "{out}", "--master", "master_bias.fits", "--x", "81", "--y", "1"], "outside"),
    (["inspect", "pixel", "{out}", "--master", "master_bias.fits", "--x", "a", "--y", "1"], "invalid int"),
    (["inspect", "qa", "{out}/recipe.json"], "no master with QA"),
])
def test_errors_are_one_line_with_exit_2(out, capsys, argv, message):
    assert main([a.replace("{out}", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    assert all(line.startswith("ccdgui") for line in err.splitlines())  # one line per problem
