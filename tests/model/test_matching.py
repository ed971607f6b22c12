"""Matching masters with reasons: sensor settings (GAIN, OFFSET, READOUTM and synonyms), exact / nearby /
refused candidates from tonight's frames and the library, the user's choice, overscan-only lights, and
real nights calibrated with masters of the library."""

import json

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.model import execute, fitsio, library, masterlib, plan
from ccdgui.model.library import Facts, Settings, Tolerances
from ccdgui.model.progress import drive
from ccdgui.model.recipe import Recipe


def write(folder, name, imagetyp, exptime, value, temp=-10.0, date="2026-11-14T22:00:00", shape=(6, 8),
          **extra):
    header = fits.Header()
    header["IMAGETYP"], header["EXPTIME"] = imagetyp, exptime
    header["SET-TEMP"], header["DATE-OBS"] = temp, date
    header["INSTRUME"] = "Test Cam"
    for key, item in extra.items():
        header[key] = item
    folder.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full(shape, value, np.float32), header).writeto(folder / name)
    return folder / name


def frames_in(folder):
    frames, problems = fitsio.scan_folder(folder, lazy=True)
    assert problems == []
    return frames


def run_plan(made, recipe, outdir):
    return drive(execute.execute(made, recipe, outdir))


def light_steps(made, name):
    return next(s for s in made.lights if s.frame.name == name)


# --- sensor settings -------------------------------------------------------------------------------
def test_settings_and_their_synonyms_are_read_and_egain_is_electrons_per_adu():
    header = fits.Header({"GAIN": 100, "BLKLEVEL": 30.0, "READMODE": " High Gain ", "EGAIN": 0.25})
    assert library.sensor_settings(header) == Settings("100", "30", "High Gain")
    assert library.electrons_per_adu(header) == 0.25
    assert library.electrons_per_adu(fits.Header({"GAIN": 1.5})) == 1.5
    assert library.electrons_per_adu(fits.Header({"E-GAIN": 2.06, "GAIN": 100})) == 2.06
    assert library.sensor_settings(fits.Header({"OFFSET": 10, "READOUTM": "Normal"})) == Settings(None, "10",
                                                                                                  "Normal")


def test_frames_at_two_gains_never_share_a_master(tmp_path):
    night = tmp_path / "night"
    for gain, level in ((0, 100.0), (100, 300.0)):
        for i in range(2):
            write(night, f"bias_g{gain}_{i}.fits", "Bias Frame", 0.0, level, GAIN=gain)
            write(night, f"dark_g{gain}_{i}.fits", "Dark Frame", 60.0, level + 6.0, GAIN=gain)
        write(night, f"light_g{gain}.fits", "Light Frame", 60.0, level + 6.0 + 50.0, GAIN=gain)
    frames = frames_in(night)
    before = {f.name: f.header.tostring() for f in frames}
    made = plan.make_plan(frames, Recipe(), root=night)
    assert sorted(m.name for m in made.masters) == [
        "master_bias_gain0.fits", "master_bias_gain100.fits", "master_dark_60s_gain0.fits",
        "master_dark_60s_gain100.fits"]
    for master in made.masters:
        gains = {step.frame.header["GAIN"] for step in master.inputs}
        assert gains == {int(master.name.split("gain")[1].split(".")[0])}
    for gain in (0, 100):
        steps = light_steps(made, f"light_g{gain}.fits")
        assert steps.bias.name == f"master_bias_gain{gain}.fits"
        assert steps.dark.name == f"master_dark_60s_gain{gain}.fits"
    assert {f.name: f.header.tostring() for f in frames} == before  # inputs not modified
    result = run_plan(made, Recipe(), tmp_path / "out")
    for light in result.calibrated:
        assert float(np.median(light.data)) == pytest.approx(50.0)


def test_a_library_master_of_another_gain_is_refused_with_its_reason(tmp_path):
    lib = tmp_path / "lib"
    entry = masterlib.describe_file(write(lib, "master_dark_60s.fits", "MASTER DARK", 60.0, 5.0, GAIN=0))
    night = tmp_path / "night"
    write(night, "light.fits", "Light Frame", 60.0, 50.0, GAIN=100)
    made = plan.make_plan(frames_in(night), Recipe(), root=night, masters=[entry])
    steps = made.lights[0]
    assert steps.dark is None and steps.skip and made.library_masters == []
    ranked = plan.candidates(made, steps, "dark")
    assert [(c.verdict, c.reason) for c in ranked] == [("refused", "gain 0 vs 100: refused")]


# --- exact, nearby, refused ---------------------------------------------------------------------------
def facts(kind="dark", temperature=-10.0, exptime=300.0, night="2026-11-02", **changes):
    base = Facts(kind, "Cam", (10, 10), (1, 1), Settings("100", "10", None), temperature, exptime, None,
                 night, True, 10)
    return base._replace(**changes)


def test_verdicts_and_reasons_name_the_numbers():
    tolerances = Tolerances(temperature=1.0, temperature_nearby=3.0, age_days=1.0)
    light = facts("light", temperature=-9.6, night="2026-11-14")
    assert library.judge(facts(), light, tolerances) == (
        "nearby", "2026-11-02, 12 days old, −10.0 °C vs −9.6 °C: nearby")
    assert library.judge(facts(night="2026-11-14"), light, tolerances) == (
        "exact", "2026-11-14, same night, −10.0 °C vs −9.6 °C: exact")
    assert library.judge(facts(night="2026-11-14", exptime=600.0), light, tolerances)[1] == \
        "2026-11-14, same night, −10.0 °C vs −9.6 °C, scaled ×0.5: nearby"
    assert library.judge(facts(temperature=-5.0), light, tolerances) == (
        "refused", "−5.0 °C vs −9.6 °C: more than ±3 °C apart: refused")
    assert library.judge(facts(binning=(2, 2)), light, tolerances)[1] == "binning 2x2 vs 1x1: refused"
    assert library.judge(facts(instrument="Other"), light, tolerances)[1] == \
        "another camera (Other vs Cam): refused"
    assert library.judge(facts(settings=Settings("100", "20", None)), light, tolerances)[1] == \
        "offset 20 vs 10: refused"
    no_scaling = Tolerances(scale_dark=False)
    assert library.judge(facts(exptime=600.0), light, no_scaling)[1] == \
        "exposure 600 s vs 300 s, cannot scale: refused"
    # a bias of another temperature is only nearby; a flat of another filter is refused
    assert library.judge(facts("bias", temperature=-5.0, exptime=0.0), light, tolerances)[0] == "nearby"
    flat = facts("flat", filter="g")
    assert library.judge(flat, light._replace(filter="r"), tolerances)[1] == "filter g vs r: refused"


# --- the plan: library masters, preference, the user's choice, overscan, one-frame masters ------------
@pytest.fixture
def night_and_library(tmp_path):
    """A night of lights and flats (no bias or dark) and a library of a bias and two darks."""
    night = tmp_path / "night"
    write(night, "light_1.fits", "Light Frame", 300.0, 1000.0, temp=-9.6, FILTER="r")
    for i in range(3):
        write(night, f"flat_{i}.fits", "Flat Field", 300.0, 20000.0, FILTER="r")
    entries = []
    old = "2026-11-02T22:00:00"
    for name, kind, exptime, value, temp in (
            ("master_bias.fits", "MASTER BIAS", 0.0, 100.0, -10.0),
            ("master_dark_300s_-10C.fits", "MASTER DARK", 300.0, 30.0, -10.0),
            ("master_dark_300s_-5C.fits", "MASTER DARK", 300.0, 60.0, -5.0)):
        entries.append(masterlib.describe_file(write(tmp_path / "lib", name, kind, exptime, value, temp=temp,
                                                     date=old, NCOMBINE=9)))
    return night, entries


def test_a_light_without_masters_tonight_gets_the_library_s_with_the_reason(night_and_library, tmp_path):
    night, entries = night_and_library
    made = plan.make_plan(frames_in(night), Recipe(), root=night, masters=entries)
    steps = made.lights[0]
    assert steps.bias.library is entries[0] and steps.dark.library is entries[1]
    assert steps.choices["dark"].describe() == \
        "dark: library master_dark_300s_-10C (2026-11-02, 12 days old, −10.0 °C vs −9.6 °C: nearby)"
    assert steps.notes == []
    text = plan.format_plan(made)
    assert "    dark: library master_dark_300s_-10C (2026-11-02, 12 days old, −10.0 °C vs −9.6 °C: nearby)" \
        in text
    assert "    flat_0.fits: bias: library master_bias (" in text
    assert "dark: library master_dark_300s_-10C" in text
    assert [m.name for m in made.library_masters] == ["master_bias.fits", "master_dark_300s_-10C.fits"]
    record = json.loads(json.dumps(made.to_dict()))
    assert [m["sha256"] for m in record["library_masters"]] == [entries[0].sha256, entries[1].sha256]
    assert record["lights"][0]["choices"]["dark"]["library"] is True
    ranked = plan.candidates(made, steps, "dark")
    assert [(c.master.name, c.verdict, c.chosen) for c in ranked] == [
        ("master_dark_300s_-10C.fits", "nearby", True), ("master_dark_300s_-5C.fits", "refused", False)]
    result = run_plan(made, Recipe(), tmp_path / "out")
    assert result.problems == [] and len(result.calibrated) == 1
    # (1000 - 100 - 30) / normalised flat of 1: known answer
    assert float(np.median(result.calibrated[0].data)) == pytest.approx(870.0)
    assert result.record["library_masters"][1]["origin"].endswith("master_dark_300s_-10C.fits")


def test_a_library_master_whose_file_is_gone_or_resized_is_refused_and_the_next_one_serves(
        night_and_library, tmp_path):
    """Planning looks at the library's files (no reading): a missing or resized one is refused with the
    reason, and the next candidate serves instead of a run that would be refused."""
    night, entries = night_and_library
    older = masterlib.describe_file(write(tmp_path / "lib2", "master_bias_old.fits", "MASTER BIAS", 0.0,
                                          101.0, date="2026-10-20T22:00:00", NCOMBINE=9))
    entries = [*entries, older]
    (tmp_path / "lib" / "master_dark_300s_-10C.fits").unlink()
    with open(entries[0].path, "ab") as handle:  # the newer bias grows by a block
        handle.write(b"\0" * 2880)
    made = plan.make_plan(frames_in(night), Recipe(), root=night, masters=entries)
    steps = light_steps(made, "light_1.fits")
    assert steps.bias.name == "master_bias_old.fits" and steps.dark is None
    ranked = {c.master.name: (c.verdict, c.reason) for c in plan.candidates(made, steps, "bias")}
    assert ranked["master_bias.fits"][0] == "refused"
    assert "changed since it was added" in ranked["master_bias.fits"][1] and "library check" in \
        ranked["master_bias.fits"][1]
    dark = {c.master.name: c for c in plan.candidates(made, steps, "dark")}["master_dark_300s_-10C.fits"]
    assert dark.verdict == "refused" and "its file is missing" in dark.reason
    assert [m.name for m in made.library_masters] == ["master_bias_old.fits"]


def test_tonight_wins_unless_the_library_is_preferred(night_and_library):
    night, entries = night_and_library
    for i in range(2):
        write(night, f"dark_{i}.fits", "Dark Frame", 300.0, 130.0, temp=-9.8)
    frames = frames_in(night)
    made = plan.make_plan(frames, Recipe(), root=night, masters=entries)
    assert made.lights[0].dark.library is None and made.lights[0].choices["dark"].verdict == "exact"
    preferring = plan.make_plan(frames, Recipe(prefer_library=True), root=night, masters=entries)
    assert preferring.lights[0].dark.library is entries[1]


def test_the_user_s_choice_is_honoured_recorded_or_refused(night_and_library):
    night, entries = night_and_library
    frames = frames_in(night)
    chosen = Recipe(master_overrides={"light_1.fits:dark": f"library:{entries[2].sha256}",
                                      "light_1.fits:bias": "none"})
    made = plan.make_plan(frames, chosen, root=night, masters=entries)
    steps = made.lights[0]
    assert steps.dark.library is entries[1]  # the -5 °C dark cannot serve a -9.6 °C light: automatic choice
    assert any("dark library master_dark_300s_-5C chosen by the user cannot serve (−5.0 °C vs −9.6 °C: more "
               "than ±3 °C apart: refused)" in note for note in steps.notes)
    assert steps.bias is None and "no bias: chosen by the user" in steps.notes
    nearer = Recipe(master_overrides={"light_1.fits:dark": "master_dark_300s_-10C.fits"})
    made = plan.make_plan(frames, nearer, root=night, masters=entries)
    assert made.lights[0].choices["dark"].by_user
    assert made.to_dict()["lights"][0]["choices"]["dark"]["by_user"]
    assert Recipe.from_dict(json.loads(nearer.to_json())).master_overrides == nearer.master_overrides


def test_a_light_with_an_overscan_and_no_master_bias_gets_overscan_only(tmp_path):
    night = tmp_path / "night"
    write(night, "light.fits", "Light Frame", 30.0, 500.0, shape=(6, 12), BIASSEC="[11:12,1:6]",
          TRIMSEC="[1:10,1:6]")
    made = plan.make_plan(frames_in(night), Recipe(), root=night)
    steps = made.lights[0]
    assert not steps.skip and steps.describe() == "overscan only"
    assert "no master bias for 10x6, bin 1x1, -10 °C, night of 2026-11-14: overscan subtracted only" \
        in steps.notes
    assert "calibrated with overscan only: no master matches it" in steps.notes
    result = run_plan(made, Recipe(), tmp_path / "out")
    assert result.calibrated[0].shape == (6, 10) and float(np.median(result.calibrated[0].data)) == 0.0


def test_a_master_from_one_frame_is_noted(tmp_path):
    night = tmp_path / "night"
    write(night, "bias.fits", "Bias Frame", 0.0, 100.0)
    write(night, "light.fits", "Light Frame", 0.0, 100.0)
    made = plan.make_plan(frames_in(night), Recipe(), root=night)
    assert "master_bias.fits: master bias from 1 frame: noise not reduced" in made.notes


# --- real nights -----------------------------------------------------------------------------------
def _library_of(tmp_path, folder, recipe=None):
    """Reduce a real folder and add its masters to a new library; (Library, result)."""
    frames, _ = fitsio.scan_folder(folder, lazy=True)
    made = plan.make_plan(frames, recipe or Recipe(), root=folder)
    result = run_plan(made, recipe or Recipe(), tmp_path / "first")
    lib = masterlib.Library(tmp_path / "lib" / "library.sqlite")
    assert len(lib.add_run(made, tmp_path / "first").added) == len(made.masters)
    return lib, result


def test_umd_r_masters_from_the_library_calibrate_lights_and_flats_identically(shared_data, tmp_path):
    folder = shared_data("umd_st8_ngc520/2018-10-19_r")
    lib, whole = _library_of(tmp_path, folder)
    assert sorted(e.name for e in lib.entries()) == ["master_bias.fits", "master_dark_300s.fits",
                                                     "master_dark_3s.fits", "master_flat_Sloan_r.fits"]
    assert {e.night for e in lib.entries()} == {"2018-10-18"}
    frames, _ = fitsio.scan_folder(folder, lazy=True)
    only = [f for f in frames if f.kind.value in ("light", "flat")]
    made = plan.make_plan(only, Recipe(), root=folder, masters=lib.entries())
    assert [m.name for m in made.masters] == ["master_flat_Sloan_r.fits"]  # tonight's flats win
    assert all(c.verdict == "exact" for s in made.lights for c in s.choices.values())
    result = run_plan(made, Recipe(), tmp_path / "second")
    assert len(result.calibrated) == 3
    for light in result.calibrated:
        ours = next(f for f in whole.calibrated if f.name == light.name)
        np.testing.assert_array_equal(light.data, ours.data)
    lib.close()


def test_umd_g_lights_with_the_r_night_s_bias_and_darks_from_the_library(shared_data, tmp_path):
    lib, _ = _library_of(tmp_path, shared_data("umd_st8_ngc520/2018-10-19_r"))
    folder = shared_data("umd_st8_ngc520/2018-10-14_g")
    frames, _ = fitsio.scan_folder(folder, lazy=True)
    only = [f for f in frames if f.kind.value in ("light", "flat")]
    made = plan.make_plan(only, Recipe(), root=folder, masters=lib.entries())
    flat = made.masters[0]
    assert flat.name == "master_flat_Sloan_g.fits"
    for step in flat.inputs:  # 10 s flats: the 300 s library dark scaled, another night
        assert step.dark.name == "master_dark_300s.fits" and step.dark_factor() == pytest.approx(10 / 300)
        assert step.choices["dark"].reason.startswith("2018-10-18, 5 days newer") and \
            step.choices["dark"].verdict == "nearby"
    for steps in made.lights:
        assert steps.bias.library is not None and steps.dark.name == "master_dark_300s.fits"
        assert steps.choices["bias"].verdict == "nearby" and "5 days newer" in steps.choices["bias"].reason
        assert steps.choices["flat"].verdict == "exact"
    result = run_plan(made, Recipe(), tmp_path / "g")
    assert len(result.calibrated) == 2
    for light in result.calibrated:
        assert 625 < np.median(light.data) < 660
    lib.close()


def test_stonybrook_darks_at_two_temperatures_stay_apart_and_are_chosen_by_temperature(shared_data, tmp_path):
    folder = shared_data("stonybrook_stl1001e")
    lib, _ = _library_of(tmp_path, folder)
    darks = lib.entries("dark")
    assert sorted((e.exptime, e.set_temp) for e in darks) == [(20.0, -5.0), (30.0, -5.0), (60.0, -10.0),
                                                               (60.0, -5.0), (300.0, -10.0), (300.0, -5.0)]
    # two "lights": a flat relabelled at each temperature
    night = tmp_path / "lights"
    night.mkdir()
    for temp in (-5.0, -10.0):
        with fits.open(folder / "flat-expos23s-Neg5-Vis.00000000.FIT") as hdul:
            hdul[0].header["IMAGETYP"], hdul[0].header["SET-TEMP"] = "Light Frame", temp
            hdul[0].header["EXPTIME"] = 300.0
            hdul.writeto(night / f"light{temp:g}.fits")
    made = plan.make_plan(frames_in(night), Recipe(), root=night, masters=lib.entries())
    for temp in (-5.0, -10.0):
        steps = light_steps(made, f"light{temp:g}.fits")
        assert steps.dark.library.set_temp == temp and steps.dark.exptime == 300.0
        assert steps.bias.library.set_temp == temp
        assert steps.choices["dark"].verdict == "exact", steps.choices["dark"].reason
        refused = [c for c in plan.candidates(made, steps, "dark") if c.verdict == "refused"]
        assert len(refused) == (4 if temp == -10.0 else 2) and all("more than ±3 °C" in c.reason
                                                                         for c in refused)
    lib.close()
