"""Planning from headers alone: no pixel is read, outputs are unique, products of a run are never inputs,
and the plan is data (what recipe.json records)."""

import json
import time

import numpy as np
import pytest

from ccdgui.model import execute, fitsio, plan, rows
from ccdgui.model.estimate import estimate_run
from ccdgui.model.frame import Frame, FrameKind
from ccdgui.model.progress import drive
from ccdgui.model.recipe import Recipe
from ccdgui.model.simulate import SimParams, iter_night


def write_night(folder, sections=False, **params):
    folder.mkdir(parents=True, exist_ok=True)
    defaults = dict(nx=64, ny=48, n_bias=3, n_dark=3, n_flat=3, n_light=2, seed=2)
    for frame in iter_night(SimParams(**{**defaults, **params})):
        if sections:
            frame.header["BIASSEC"] = "[1:4,1:48]"
            frame.header["TRIMSEC"] = "[5:64,1:48]"
        fitsio.write_frame(frame, folder / frame.name)
    return folder


def lazy_frames(folder):
    frames, problems = fitsio.scan_folder(folder, lazy=True)
    assert not problems
    return frames


@pytest.fixture
def no_pixels(monkeypatch):
    """Any pixel read fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("a pixel was read while planning")

    monkeypatch.setattr(rows.RawRows, "read_raw", refuse)
    monkeypatch.setattr(rows.RawRows, "read_into", refuse)
    monkeypatch.setattr(Frame, "data", property(refuse))


def test_planning_reads_no_pixel_even_with_overscan_and_trim(tmp_path, request):
    folder = write_night(tmp_path / "night", sections=True)
    frames = lazy_frames(folder)
    request.getfixturevalue("no_pixels")
    made = plan.make_plan(frames, Recipe(), root=folder)
    estimate_run(made, Recipe())
    text = plan.format_plan(made)
    record = json.dumps(made.to_dict())
    names = ["master_bias.fits", "master_dark_60s.fits", "master_flat_r.fits"]
    assert [m.name for m in made.masters] == names
    assert all(s.frame.shape == (48, 60) for m in made.masters for s in m.inputs)  # trimmed shape, planned
    assert made.lights[0].output == "calibrated/light_r_000.fits"
    assert "masters/master_bias.fits: 3 frame(s)" in text and "light_r_001.fits" in record


def test_overscan_and_trim_happen_when_executed(tmp_path):
    folder = write_night(tmp_path / "night", sections=True)
    result = execute.run_to_end(lazy_frames(folder), Recipe(), outdir=tmp_path / "out")
    assert all(m.shape == (48, 60) for m in result.masters)
    header = result.calibrated[0].header
    assert header["TRIMIM"] == "[5:64,1:48]" and "BIASSEC" not in header and "OVERSCAN" in header


def test_planning_200_frames_takes_well_under_a_tenth_of_a_second(tmp_path):
    folder = write_night(tmp_path / "night", nx=16, ny=16, n_bias=50, n_dark=50, n_flat=50, n_light=50)
    frames = lazy_frames(folder)
    assert len(frames) == 200
    best = min(_timed(lambda: plan.make_plan(frames, Recipe(), root=folder)) for _ in range(3))
    assert best < 0.1


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def test_same_names_in_two_subfolders_give_two_outputs(tmp_path):
    root = tmp_path / "nights"
    write_night(root / "A", seed=1)
    write_night(root / "B", seed=2, n_bias=0, n_dark=0, n_flat=0)
    result = execute.run_to_end(lazy_frames(root), Recipe(), outdir=tmp_path / "out")
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.fits"))
    assert "calibrated/A/light_r_000.fits" in written and "calibrated/B/light_r_000.fits" in written
    assert len(result.calibrated) == 4
    a = fitsio.read_frame(tmp_path / "out/calibrated/A/light_r_000.fits").data
    b = fitsio.read_frame(tmp_path / "out/calibrated/B/light_r_000.fits").data
    assert not np.array_equal(a, b)


def test_outputs_of_a_run_are_never_inputs_of_the_next(tmp_path):
    folder = write_night(tmp_path / "night")
    drive(execute.run(lazy_frames(folder), Recipe(), outdir=folder / "reduced"))
    frames = lazy_frames(folder)  # the reduced/ folder inside the night is read as well
    kinds = {f.name: f.kind for f in frames}
    assert kinds["master_bias.fits"] is FrameKind.MASTER_BIAS
    assert kinds["light_r_000.fits"] in (FrameKind.LIGHT, FrameKind.CALIBRATED)
    made = plan.make_plan(frames, Recipe(), root=folder)
    assert len(made.lights) == 2 and all("reduced" not in s.source for s in made.lights)
    assert all("reduced" not in step.source for m in made.masters for step in m.inputs)
    assert any("not used as raw inputs" in note for note in made.notes)


def test_plan_records_the_masters_each_light_gets(tmp_path):
    folder = write_night(tmp_path / "night", light_exposure=30.0)
    made = plan.make_plan(lazy_frames(folder), Recipe(), root=folder).to_dict()
    light = made["lights"][0]
    assert light.pop("choices")["dark"]["verdict"] == "nearby"  # scaled from 60 s
    assert light == {"file": "light_r_000.fits", "output": "calibrated/light_r_000.fits",
                     "bias": "master_bias.fits", "dark": "master_dark_60s.fits", "dark_scale": 0.5,
                     "flat": "master_flat_r.fits", "notes": []}
    assert made["masters"][1]["inputs"] == ["dark_060s_000.fits", "dark_060s_001.fits", "dark_060s_002.fits"]


def test_a_master_that_cannot_be_made_is_reported_and_its_lights_are_noted(tmp_path):
    folder = write_night(tmp_path / "night", n_bias=0, n_dark=0, n_flat=2)
    for path in folder.glob("flat_*.fits"):  # flats of median 0 cannot be scaled by their inverse median
        frame = fitsio.read_frame(path)
        fitsio.write_frame(frame.derive(np.zeros_like(frame.data)), path, overwrite=True)
    result = execute.run_to_end(lazy_frames(folder), Recipe(), outdir=tmp_path / "out")
    assert any(p.startswith("master_flat_r.fits could not be made") for p in result.problems)
    assert any("light light_r_000.fits: not calibrated: master_flat_r.fits" in p for p in result.problems)
    assert result.masters == [] and result.calibrated == []
    assert json.loads((tmp_path / "out/recipe.json").read_text())["outputs"] == []
