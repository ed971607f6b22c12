"""The pixel-stack inspector: each input's value at a pixel as the combine saw it, the rejected set and
the result equal to the stack recomputed with numpy and to the master's pixel; a light's stacks are its
masters'; hostile requests end in one line."""

import json

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.cli import main
from ccdgui.model.combine import MAD_TO_SIGMA
from ccdgui.model.inspect import InspectError, Inspector, light_stacks, pixel_stack

SMALL = ["--size", "90", "70", "--n-bias", "7", "--n-dark", "5", "--n-flat", "5", "--n-light", "2",
         "--seed", "11", "--read-noise", "15"]
HOT = (23, 17)  # 1-based x, y given a cosmic-ray-like value in one bias


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("inspect")
    assert main(["simulate", str(base / "night"), *SMALL]) == 0
    with fits.open(base / "night" / "bias_003.fits", mode="update") as hdul:
        hdul[0].data[HOT[1] - 1, HOT[0] - 1] += 5000
    assert main(["reduce", str(base / "night"), str(base / "out"), "--quiet"]) == 0
    return base


def numpy_sigma_clip(values, low=5.0, high=5.0):
    centre = np.median(values)
    spread = MAD_TO_SIGMA * np.median(np.abs(values - centre))
    kept = (values >= centre - low * spread) & (values <= centre + high * spread)
    return kept, values[kept].mean()


def raw(run, name, x, y):
    return fits.getdata(run / "night" / name)[y - 1, x - 1].astype(np.float64)


def master(run, name, x, y):
    return fits.getdata(run / "out" / "masters" / name)[y - 1, x - 1]


def test_a_bias_pixel_with_a_hit_equals_numpy_with_the_same_rejected_set(run):
    stack = pixel_stack(run / "out" / "recipe.json", "master_bias.fits", *HOT)
    values = np.array([raw(run, f"bias_{i:03d}.fits", *HOT) for i in range(7)])
    kept, mean = numpy_sigma_clip(values)
    assert np.allclose(stack.values, values, rtol=0, atol=1e-3)
    assert list(stack.kept) == list(kept) and not kept[3]
    assert stack.reasons[3] == "sigma high" and stack.reasons.count("kept") == 6
    assert stack.result == pytest.approx(mean, rel=1e-6)
    assert stack.result == master(run, "master_bias.fits", *HOT) and stack.matches
    assert stack.low < stack.centre < stack.high and values[3] > stack.high


@pytest.mark.parametrize("x, y", [(1, 1), (90, 70), (45, 12)])
def test_dark_and_flat_stacks_are_prepared_and_scaled_as_the_combine_did(run, x, y):
    bias = master(run, "master_bias.fits", x, y)
    dark = pixel_stack(run / "out", "master_dark_60s.fits", x, y)
    prepared = np.array([raw(run, f"dark_060s_{i:03d}.fits", x, y) - bias for i in range(5)])
    assert np.allclose(dark.prepared, prepared, atol=1e-3)
    kept, mean = numpy_sigma_clip(prepared)
    assert list(dark.kept) == list(kept)
    assert dark.result == master(run, "master_dark_60s.fits", x, y)
    flat = pixel_stack(run / "out" / "recipe.json", "master_flat_r.fits", x, y)
    scales = json.loads((run / "out" / "recipe.json").read_text())["values"]["master_flat_r.fits"]["scales"]
    master_dark = master(run, "master_dark_60s.fits", x, y)
    flats = np.array([raw(run, f"flat_r_{i:03d}.fits", x, y) - bias - master_dark * 5 / 60 for i in range(5)])
    assert np.allclose(flat.prepared, flats, rtol=1e-5)
    assert np.allclose(flat.values, flats * np.array(scales), rtol=1e-5)
    kept, mean = numpy_sigma_clip(flat.values.astype(np.float64))
    assert list(flat.kept) == list(kept)
    assert flat.result == pytest.approx(mean, rel=1e-6)
    assert flat.result == master(run, "master_flat_r.fits", x, y)


def test_a_lights_stacks_are_those_of_its_masters(run):
    stacks = light_stacks(run / "out" / "recipe.json", "light_r_001.fits", 5, 6)
    assert [s.master for s in stacks] == ["master_bias.fits", "master_dark_60s.fits", "master_flat_r.fits"]
    assert all(s.matches for s in stacks)
    assert stacks[0].paths[0].endswith("bias_000.fits")


def test_hostile_requests_are_one_line_errors(run, tmp_path):
    with pytest.raises(InspectError, match="no master 'nope'.*master_bias.fits"):
        pixel_stack(run / "out" / "recipe.json", "nope", 1, 1)
    with pytest.raises(InspectError, match=r"outside master_bias.fits \(1…90 × 1…70\)"):
        pixel_stack(run / "out" / "recipe.json", "master_bias.fits", 91, 1)
    with pytest.raises(InspectError, match="cannot read"):
        Inspector(tmp_path / "recipe.json")
    (tmp_path / "recipe.json").write_text('{"recipe": {}}')
    with pytest.raises(InspectError, match="lists no inputs"):
        Inspector(tmp_path / "recipe.json")
    with pytest.raises(InspectError, match="no light"):
        Inspector(run / "out").light_masters("ghost.fits")


def test_inputs_are_not_modified(run):
    before = (run / "night" / "bias_000.fits").read_bytes()
    pixel_stack(run / "out" / "recipe.json", "master_bias.fits", 3, 3)
    assert (run / "night" / "bias_000.fits").read_bytes() == before
