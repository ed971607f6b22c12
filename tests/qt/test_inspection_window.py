"""The look-closer tools in the window: a click on a master's pixel fills the stack inspector with the
model Inspector's values, the QA tab lists every master after Calibrate, the residual view's budget
shows model/views.py's numbers, difference and blink keep right readout labels, RA/Dec under the cursor
equals astropy's, and the compass toggle adds and removes its arrows."""

import re

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

from ccdgui.model.inspect import Inspector
from ccdgui.model.simulate import make_camera
from ccdgui.model.views import budget_inputs, difference, residual_report
from ccdgui.qt.inspection import INSPECT_RECORD

from .conftest import wait_idle


@pytest.fixture
def calibrated(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.current is not None and window.current.kind.value == "calibrated")
    return window


def test_clicking_a_master_pixel_fills_the_inspector_with_the_models_stack(qtbot, calibrated):
    window, control = calibrated, calibrated.inspection
    bias = next(f for f in window.masters if f.kind.value == "master bias")
    window.library.select_frame(bias)
    assert window.raw_view.frame is bias
    before = bias.data.copy()
    window.raw_view.clicked.emit(37, 21)  # 0-based: FITS x=38, y=22
    qtbot.waitUntil(lambda: bool(control.last_stacks), timeout=30000)
    shown = control.stack_view._stack
    assert (shown.master, shown.x, shown.y) == (bias.name, 38, 22)
    model = Inspector(window.last_result.outdir / INSPECT_RECORD).stack(bias.name, 38, 22)
    np.testing.assert_array_equal(shown.values, model.values)
    np.testing.assert_array_equal(shown.kept, model.kept)
    assert shown.reasons == model.reasons and shown.result == model.result
    assert shown.matches and shown.master_value == pytest.approx(float(bias.data[21, 37]), rel=1e-6)
    assert len(shown.frames) == 4 and window.params.tabs.currentWidget() is control.stack_view
    assert control._marker[0] is window.raw_view  # the inspected pixel is marked
    np.testing.assert_array_equal(bias.data, before)
    # a light: the stacks of the three masters it used; a point's click opens its frame
    control.last_stacks = []
    light = window.calibrated[0]
    window.library.select_frame(light)
    window.calibrated_view.clicked.emit(5, 6)
    qtbot.waitUntil(lambda: bool(control.last_stacks), timeout=30000)
    assert [s.master for s in control.last_stacks] == [m.name for m in window.masters]
    control.stack_view.request_frame(1)
    assert window.current.name == control.last_stacks[0].frames[1]


def test_qa_tab_lists_every_master_after_calibrate(qtbot, calibrated):
    panel = calibrated.inspection.qa_panel
    names = [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]
    assert sorted(names) == sorted(m.name for m in calibrated.masters)
    assert "QA" in calibrated.params.tab_titles()
    flat = next(m for m in calibrated.masters if m.kind.value == "master flat")
    panel.master_selected.emit(flat.name)
    assert calibrated.current is flat


def test_residual_view_shows_the_noise_budget_of_model_views(qtbot, calibrated):
    window, control = calibrated, calibrated.inspection
    light = window.current
    control.compare.right.setCurrentText("residual")
    qtbot.waitUntil(lambda: control.report is not None, timeout=30000)
    params = window.simulated_params
    camera = make_camera(params)
    steps = next(s for s in window.plan.lights if s.frame.name == light.name)
    inputs = budget_inputs(params, steps, "average")
    assert (inputs["n_bias"], inputs["n_dark"], inputs["n_flat"]) == (4, 4, 3)
    expected = residual_report(light.data, camera.sky_stars, camera.flat, **inputs)
    rows = control.compare.budget_rows()
    assert rows["measured σ (robust)"] == f"{expected.measured_sigma:.4g}"
    assert rows["expected σ (budget)"] == f"{expected.predicted_sigma:.4g}"
    assert control.report.measured_sigma == pytest.approx(expected.measured_sigma, rel=1e-9)
    assert expected.ratio == pytest.approx(1.0, abs=0.05)  # the calibration does what theory says
    assert "residual" in window.readout_text(3, 4)
    # blink: the residual in the left view on the left view's levels, labelled as such, and back
    left_levels = window.raw_view.levels
    control.compare.blink_button.setChecked(True)
    assert window.raw_view.label == "residual" and window.raw_view.levels == left_levels
    assert window.readout_text(3, 4).count("residual") == 2
    control.compare.blink_button.setChecked(False)
    assert "raw light" in window.readout_text(3, 4)


def test_difference_view_is_calibrated_minus_raw_and_labelled(qtbot, calibrated):
    window, control = calibrated, calibrated.inspection
    light = window.current
    raw = window.counterpart(light)
    control.compare.right.setCurrentText("difference")
    qtbot.waitUntil(lambda: window.calibrated_view.label == "difference", timeout=30000)
    np.testing.assert_array_equal(window.calibrated_view.data, difference(light.data, raw.data))
    x, y = 10, 7
    text = window.readout_text(x, y)
    assert f"difference {light.data[y, x] - raw.data[y, x]:.6g}" in text and "raw light" in text
    control.compare.left.setCurrentText("master flat")
    qtbot.waitUntil(lambda: window.raw_view.frame is not None
                    and window.raw_view.frame.kind.value == "master flat", timeout=30000)
    control.compare.left.setCurrentText("raw")
    control.compare.right.setCurrentText("calibrated")
    assert window.calibrated_view.label is None and "calibrated" in window.readout_text(x, y)


def test_ra_dec_readout_of_a_sip_frame_equals_astropy(qtbot, window, shared_data):
    path = shared_data("odd_singles/sip-wcs.fit")
    window.open_paths([path])
    wait_idle(qtbot, window)
    assert window.raw_view.frame is not None
    wcs = WCS(fits.getheader(path))
    assert wcs.sip is not None
    for x, y in ((0, 0), (37, 12), (99, 49)):
        text = window.readout_text(x, y)
        found = re.search(r"RA (\d\d:\d\d:[\d.]+) Dec ([+-]\d\d:\d\d:[\d.]+) \(([\d.]+)°, ([+-][\d.]+)°\)",
                          text)
        assert found, text
        truth = wcs.pixel_to_world(x, y)
        shown = type(truth)(float(found[3]) * u.deg, float(found[4]) * u.deg, frame=truth.frame)
        assert truth.separation(shown).arcsec < 0.01
        assert found[1] == truth.ra.to_string(u.hourangle, sep=":", precision=3, pad=True)
        assert found[2] == truth.dec.to_string(sep=":", precision=2, alwayssign=True, pad=True)


def test_compass_toggle_adds_and_removes_its_arrows(qtbot, window, shared_data):
    window.open_paths([shared_data("odd_singles/sip-wcs.fit")])
    wait_idle(qtbot, window)
    control = window.inspection
    control.compass_action.setChecked(True)
    items = control.compass_items[window.raw_view]
    assert len(items) == 6 and all(item in window.raw_view.plot.items for item in items)
    assert control.compass.isChecked()
    control.compass_action.setChecked(False)
    assert not any(item in window.raw_view.plot.items for item in items)
    assert not control.compass_items.get(window.raw_view)


def test_no_wcs_no_sky_text_and_no_compass(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    assert "RA " not in window.readout_text(3, 4)
    window.inspection.compass_action.setChecked(True)
    assert not window.inspection.compass_items.get(window.raw_view)
