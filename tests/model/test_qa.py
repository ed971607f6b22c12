"""Master QA on simulated nights with known parameters: read noise, dark current, hot pixels, a light
leak flagged by name, figures in the header and recipe.json, warnings against the header and a
previous master."""

import json
import math
import re

import numpy as np
import pytest
from astropy.io import fits

from ccdgui.cli import main
from ccdgui.model import qa
from ccdgui.model.combine import CombineOptions, combine, explain_stack, iter_combine
from ccdgui.model.progress import drive

KNOWN = dict(size=("600", "500"), read_noise=30.0, gain=2.0, dark_current=0.5)


def simulate(folder, *extra):
    args = ["simulate", str(folder), "--size", *KNOWN["size"], "--n-bias", "6", "--n-dark", "6",
            "--n-flat", "4", "--n-light", "1", "--read-noise", str(KNOWN["read_noise"]), "--gain",
            str(KNOWN["gain"]), "--dark-current", str(KNOWN["dark_current"]), "--seed", "4", *extra]
    assert main(args) == 0
    return folder


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    base = tmp_path_factory.mktemp("qa")
    night = simulate(base / "night")
    leaky = night / "flat_r_002.fits"  # a light leak: a glow from the left edge of one flat
    with fits.open(leaky, mode="update") as hdul:
        x = np.arange(hdul[0].data.shape[1])
        hdul[0].data = (hdul[0].data + 6000 * np.exp(-x / 80.0)[None, :]).astype(np.float32)
    assert main(["reduce", str(night), str(base / "out"), "--quiet"]) == 0
    return base / "out"


def header(out, name):
    return fits.getheader(out / "masters" / name)


def test_read_noise_within_5_percent_in_adu_and_electrons(reduced):
    h = header(reduced, "master_bias.fits")
    assert h["QARDNOIS"] == pytest.approx(KNOWN["read_noise"], rel=0.05)
    assert h["QARDNADU"] == pytest.approx(KNOWN["read_noise"] / KNOWN["gain"], rel=0.05)
    assert h["QAGAIN"] == KNOWN["gain"]
    assert "read noise" in h.comments["QARDNOIS"]


def test_dark_current_within_10_percent_and_hot_pixels_within_10_percent(reduced):
    h = header(reduced, "master_dark_60s.fits")
    assert h["QADARK"] == pytest.approx(KNOWN["dark_current"], rel=0.10)
    truth = int(1e-4 * 600 * 500)  # the simulation's hot pixels: exactly 1e-4 of the pixels
    assert abs(h["QAHOTPIX"] - truth) <= 0.1 * truth


def test_a_flat_with_a_light_leak_is_flagged_by_name(reduced):
    report = qa.from_header(header(reduced, "master_flat_r.fits"), "master_flat_r.fits")
    assert [f.name for f in report.flagged()] == ["flat_r_002.fits"]
    assert "rejected" in report.flagged()[0].flagged
    assert report.value("QANFLAG") == 1
    assert any("flat_r_002.fits" in w for w in report.warnings)
    assert not qa.from_header(header(reduced, "master_bias.fits")).flagged()


def test_flat_figures_and_the_gain_by_photon_transfer(reduced):
    h = header(reduced, "master_flat_r.fits")
    assert h["QAFLAT"] == pytest.approx(20000, rel=0.05)  # the simulation's flat level × sensitivity
    assert 0.9 < h["QAVIGNET"] < 1.0                          # its Gaussian vignetting, σ = 2 sides
    # the simulation multiplies Poisson counts by the sensitivity f: photon transfer sees gain / f
    assert h["QAGAINPT"] == pytest.approx(KNOWN["gain"], rel=0.15)


def test_recipe_json_holds_the_same_figures(reduced):
    values = json.loads((reduced / "recipe.json").read_text())["values"]
    bias = values["master_bias.fits"]["qa"]
    assert bias["figures"]["QARDNOIS"]["value"] == header(reduced, "master_bias.fits")["QARDNOIS"]
    assert [f["name"] for f in bias["frames"]] == [f"bias_{i:03d}.fits" for i in range(6)]
    flat = values["master_flat_r.fits"]["qa"]
    assert [f["name"] for f in flat["frames"] if f["flagged"]] == ["flat_r_002.fits"]


def test_warnings_against_the_header_and_a_previous_master():
    rng = np.random.default_rng(0)
    cube = rng.normal(1000, 13, (4, 64, 80)).astype(np.float32)
    sample = qa.InputSample(64, 80)
    sample(list(cube), 0, 64)
    h = fits.Header({"GAIN": 1.0, "RDNOISE": 10.0})
    report = qa.measure("master bias", "b.fits", cube.mean(axis=0), h, sample, ["a", "b", "c", "d"],
                        CombineOptions())
    assert report.value("QARDNADU") == pytest.approx(13, rel=0.05)
    pattern = r"read noise 1[23]\.\d+ e⁻ is \+(2[6-9]|3[0-4])% from the header's RDNOISE \(10\)"
    assert any(re.search(pattern, w) for w in report.warnings)  # about 13 e⁻ against 10
    previous = {"figures": {"QARDNOIS": {"value": 9.5}}}
    added = qa.compare_to_previous(report, previous, source="the library's master bias")
    assert added and "library" in added[0]


def test_the_observer_changes_nothing_and_keeps_the_sampled_rows():
    rng = np.random.default_rng(1)
    frames = [rng.normal(100, 5, (300, 40)).astype(np.float32) for _ in range(5)]
    copies = [f.copy() for f in frames]
    sample = qa.InputSample(300, 40)
    observed = drive(iter_combine(frames, CombineOptions(), observer=sample))
    plain = combine(frames, CombineOptions())
    assert np.array_equal(observed.data, plain.data) and np.array_equal(observed.count, plain.count)
    assert observed.qa is sample and sorted(sample.rows) == qa.sample_rows(300, 40).tolist()
    assert len(sample.rows) == 128  # 16 384 pixels would be 410 rows of 40: at most 128
    assert all(np.array_equal(a, b) for a, b in zip(frames, copies, strict=True))
    row = qa.sample_rows(300, 40)[3]
    assert np.array_equal(sample.rows[row], np.stack([f[row] for f in frames]))


def test_explain_stack_matches_the_engine_for_every_method():
    rng = np.random.default_rng(2)
    frames = [rng.normal(50, 4, (30, 30)).astype(np.float32) for _ in range(7)]
    frames[2][4, 4] = 500
    scales = list(rng.uniform(0.8, 1.2, 7))
    for options in (CombineOptions(), CombineOptions(method="median"), CombineOptions(reject="minmax"),
                    CombineOptions(method="sum", clip_max=58), CombineOptions(sigma_center="mean",
                                                                              sigma_spread="std")):
        result = combine(frames, options, scales)
        explained = explain_stack(np.stack(frames).reshape(7, -1), options, scales)
        assert np.array_equal(explained.result.reshape(30, 30), result.data, equal_nan=True)
        assert np.array_equal(explained.count.reshape(30, 30), result.count)


def test_pair_noise_and_robust_sigma_known_answers():
    rng = np.random.default_rng(3)
    cube = rng.normal(0, 7, (2, 200_000))
    assert qa.pair_difference_sigma(cube) == pytest.approx(7, rel=0.01)
    assert math.isnan(qa.pair_difference_sigma(cube[:1]))
    assert qa.robust_sigma(np.array([np.nan])) != qa.robust_sigma(np.array([np.nan]))


def test_dust_spots_and_vignetting_of_a_synthetic_flat():
    y, x = np.mgrid[0:512, 0:512].astype(np.float32)
    flat = np.exp(-((x - 256) ** 2 + (y - 256) ** 2) / (2 * 600.0 ** 2)).astype(np.float32)
    for cx, cy in ((100, 100), (300, 400), (420, 150)):
        flat *= 1 - 0.05 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 6.0 ** 2))
    assert qa.dust_spots(flat) == 3
    assert qa.vignetting(flat) == pytest.approx(np.exp(-(2 * 240 ** 2) / (2 * 600.0 ** 2)), rel=0.03)


def test_a_header_without_qa_and_hostile_values_give_no_figures():
    assert qa.from_header(fits.Header()).figures == []
    assert qa.header_gain(fits.Header({"GAIN": -1, "EGAIN": "x"})) is None
    assert qa.ascii_text("σ e⁻ ✓") == "sigma e- ?"


def test_no_photon_transfer_gain_where_read_noise_dominates_the_flats(tmp_path):
    """The guide's 700 e⁻ read noise against 20 000 e⁻ flats: a gain would be noise, so none is shown
    (and no warning the astronomer can do nothing about)."""
    night = tmp_path / "night"
    assert main(["simulate", str(night), "--size", "200", "150", "--n-bias", "3", "--n-dark", "3",
                 "--n-flat", "3", "--n-light", "1", "--read-noise", "700", "--seed", "2"]) == 0
    assert main(["reduce", str(night), str(tmp_path / "out"), "--quiet"]) == 0
    h = fits.getheader(tmp_path / "out" / "masters" / "master_flat_r.fits")
    assert "QAFLAT" in h and "QAGAINPT" not in h
    report = qa.from_header(h, "master_flat_r.fits")
    assert not any("gain" in warning for warning in report.warnings)


def test_a_master_is_compared_with_the_camera_s_previous_master_in_the_library(tmp_path):
    """Last month's masters in the library; tonight the read noise is 60 % higher: the new master bias
    says so in its QA warnings (header and recipe.json), naming the library's master; darks agree."""
    library = tmp_path / "library.sqlite"
    common = ["--size", "300", "200", "--n-bias", "6", "--n-dark", "4", "--n-flat", "3", "--n-light", "1",
              "--gain", "2", "--dark-current", "0.5"]
    assert main(["simulate", str(tmp_path / "before"), *common, "--read-noise", "20", "--seed", "1"]) == 0
    assert main(["reduce", str(tmp_path / "before"), str(tmp_path / "out1"), "--library", str(library),
                 "--to-library", "--quiet"]) == 0
    assert main(["simulate", str(tmp_path / "tonight"), *common, "--read-noise", "32", "--seed", "2"]) == 0
    assert main(["reduce", str(tmp_path / "tonight"), str(tmp_path / "out2"), "--library", str(library),
                 "--quiet"]) == 0
    bias = qa.from_header(fits.getheader(tmp_path / "out2/masters/master_bias.fits"), "master_bias.fits")
    said = [w for w in bias.warnings if w.startswith("read noise")]
    assert said and "+60%" in said[0] and "the library's master_bias" in said[0]
    values = json.loads((tmp_path / "out2/recipe.json").read_text())["values"]
    assert said[0] in values["master_bias.fits"]["qa"]["warnings"]
    before = qa.from_header(fits.getheader(tmp_path / "out1/masters/master_bias.fits"), "master_bias.fits")
    assert not any("library" in w for w in before.warnings)  # nothing to compare with the first time
