"""Bugs found by using the window as a hostile user would: a blink left on while choosing another
frame, a master's empty right view, the compass switched on from code, rejection settings that do not
apply."""

import shutil
from pathlib import Path

import pytest

from .conftest import wait_idle

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"


def simulate_and_calibrate(qtbot, window) -> None:
    window.simulate()
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)


def raw_named(window, name):
    return next(f for f in window.raw if f.name == name)


def test_blink_then_another_light_shows_that_light_never_the_previous_one(qtbot, window):
    simulate_and_calibrate(qtbot, window)
    first, second = sorted(f.name for f in window.calibrated)[:2]
    window.select_frame_named(first)
    window.inspection.blink_action.trigger()  # Shift+B: the left view shows the right one's image
    assert window.inspection.blinking
    assert window.raw_view.data is window.calibrated_view.data
    window.select_frame_named(second)
    qtbot.wait(20)
    # the left view shows the newly chosen light's raw pixels, not the light blinked before
    assert window.raw_view.frame is raw_named(window, second)
    assert window.raw_view.data is raw_named(window, second).data
    assert window.calibrated_view.frame.name == second
    assert not window.inspection.blinking
    value = raw_named(window, second).data[3, 4]
    assert f"raw light {value:.6g}" in window.readout_text(4, 3)
    window.inspection.blink_action.trigger()  # blinking the new light works, and back again
    assert window.raw_view.data is window.calibrated_view.data
    window.inspection.blink_action.trigger()
    assert window.raw_view.data is raw_named(window, second).data


def test_a_master_says_only_lights_have_a_calibrated_version(qtbot, window):
    simulate_and_calibrate(qtbot, window)
    master = window.masters[0]
    window.select_frame_named(master.name)
    assert window.current is master
    assert window.calibrated_view._placeholder.toPlainText() == "Only lights have a\ncalibrated version"
    window.blink()
    assert "only a light has a calibrated version" in window.statusBar().currentMessage()
    light = sorted(window.calibrated, key=lambda f: f.name)[0]
    window.select_frame_named(light.name)
    window.blink()
    assert window.blinked


def test_before_calibrate_a_light_still_says_press_calibrate(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    light = next(f for f in window.raw if window.recipe.kind_of(f).name == "LIGHT")
    window.select_frame_named(light.name)
    assert "Press Calibrate" in window.calibrated_view._placeholder.toPlainText()
    window.blink()
    assert window.statusBar().currentMessage() == "Nothing to blink with: calibrate first"


def test_compass_switched_on_from_code_is_redrawn_for_the_next_frame(qtbot, window, tmp_path):
    odd = SHARED / "odd_singles"
    names = ["sip-wcs.fit", "a8280271.fits"]  # with a WCS, then one without
    if not all((odd / n).exists() for n in names):
        pytest.skip("real test data ../shared/data/odd_singles is absent")
    for name in names:
        shutil.copy2(odd / name, tmp_path / name)
    window.open_paths([tmp_path / n for n in names])
    wait_idle(qtbot, window)
    window.select_frame_named("sip-wcs.fit")
    window.inspection.set_compass(True)
    assert window.inspection.compass_action.isChecked() and window.inspection.compass.isChecked()
    assert window.inspection.compass_items.get(window.raw_view)
    window.select_frame_named("a8280271.fits")
    qtbot.waitUntil(lambda: window.raw_view.is_ready, timeout=5000)
    qtbot.wait(20)
    assert not window.inspection.compass_items.get(window.raw_view)  # no stale arrows on a frame with no WCS
    window.inspection.set_compass(False)
    assert not window.inspection.compass_action.isChecked()


def test_rejection_settings_that_do_not_apply_are_greyed(window):
    widgets = window.params.widgets
    window.recipe.reject = "sigma"
    assert widgets["recipe.sigma_low"].isEnabled() and widgets["recipe.sigma_iterations"].isEnabled()
    assert not widgets["recipe.minmax_low"].isEnabled() and not widgets["recipe.minmax_high"].isEnabled()
    window.recipe.reject = "minmax"
    assert widgets["recipe.minmax_low"].isEnabled() and widgets["recipe.minmax_high"].isEnabled()
    assert not widgets["recipe.sigma_high"].isEnabled() and not widgets["recipe.sigma_spread"].isEnabled()
    window.recipe.reject = "none"
    assert not any(widgets[f"recipe.{n}"].isEnabled() for n in ("sigma_low", "minmax_low"))
    assert widgets["recipe.combine"].isEnabled()


def test_two_nights_with_the_same_file_names_pair_each_light_with_its_own_calibration(qtbot, window,
                                                                                       tmp_path):
    from ccdgui.model import fitsio
    from ccdgui.model.simulate import SimParams, simulate_night

    for night, bias in (("night1", 1000.0), ("night2", 3000.0)):  # same names, different pixels
        (tmp_path / night).mkdir()
        params = SimParams(nx=40, ny=30, n_bias=2, n_dark=2, n_flat=2, n_light=2, seed=7, bias_level=bias)
        for frame in simulate_night(params).frames:
            fitsio.write_frame(frame, tmp_path / night / frame.name)
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    lights = [f for f in window.raw if window.recipe.kind_of(f).name == "LIGHT"]
    assert len(lights) == 4 and len(window.calibrated) == 4
    for light in lights:
        calibrated = window.counterpart(light)
        assert calibrated.path.parent.name == light.path.parent.name  # night2's light, night2's output
        assert window.counterpart(calibrated) is light
    night2 = next(f for f in lights if f.path.parent.name == "night2")
    window.library.select_frame(night2)
    assert window.raw_view.data is night2.data
    assert window.calibrated_view.frame is window.counterpart(night2)
    assert window.inspection._steps_of(night2).frame is night2


def test_a_light_of_the_second_night_shows_the_stacks_of_its_own_masters(qtbot, window, tmp_path):
    from ccdgui.model import fitsio
    from ccdgui.model.simulate import SimParams, simulate_night

    for night, day in (("night1", "2026-01-01"), ("night2", "2026-01-05")):  # two nights, same names
        (tmp_path / night).mkdir()
        for frame in simulate_night(SimParams(nx=40, ny=30, n_bias=2, n_dark=2, n_flat=2, n_light=1,
                                              seed=5)).frames:
            frame.header["DATE-OBS"] = day + str(frame.header["DATE-OBS"])[10:]
            fitsio.write_frame(frame, tmp_path / night / frame.name)
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    assert len(window.masters) == 6  # each night its own bias, dark, flat
    for night in ("night1", "night2"):
        light = next(f for f in window.raw if window.recipe.kind_of(f).name == "LIGHT"
                     and f.path.parent.name == night)
        for frame in (light, window.counterpart(light)):
            window.inspection.last_stacks = []
            window.pixel_clicked.emit(3, 4, frame)
            qtbot.waitUntil(lambda: len(window.inspection.last_stacks) == 3, timeout=10000)
            folders = {Path(p).parent.name for s in window.inspection.last_stacks for p in s.paths}
            assert folders == {night}, (frame.path, folders)
    night2 = next(f for f in window.raw if window.recipe.kind_of(f).name == "LIGHT"
                  and f.path.parent.name == "night2")
    for frame in (night2, window.counterpart(night2)):  # the Masters tab lists night2's candidates
        assert window.master_library.steps_of(frame).frame is night2


def test_a_frame_of_unknown_type_is_labelled_raw_frame_never_raw_unknown():
    import numpy as np

    from ccdgui.model.frame import Frame, FrameKind
    from ccdgui.qt.main_window import frame_label

    frame = Frame(np.zeros((4, 5), np.float32), kind=FrameKind.UNKNOWN, name="x.fits")
    assert frame_label(frame) == "raw frame"
    assert frame_label(frame, FrameKind.LIGHT) == "raw light"


def test_a_simulated_night_too_big_for_memory_is_refused_with_a_reason(qtbot, window, monkeypatch):
    from ccdgui.model.simulate import SimParams
    from ccdgui.qt import main_window

    said = []
    monkeypatch.setattr(main_window.QMessageBox, "information", lambda *args: said.append(args[2]))
    huge = SimParams(nx=16384, ny=16384, n_bias=200, n_dark=200, n_flat=200, n_light=200)
    text = main_window.simulation_too_big(huge, limit=8 * 1024 ** 3)
    assert "800 frames of 16384 x 16384 need about 862.2 GB" in text and "8.6 GB" in text
    assert main_window.simulation_too_big(SimParams(nx=100, ny=100, n_bias=1, n_dark=1, n_flat=1,
                                                    n_light=1), limit=1_000_000) == ""  # 7 x 40 kB
    frames_before = list(window.raw)
    window.sim.nx = window.sim.ny = 16384
    window.sim.n_bias = window.sim.n_dark = 200
    monkeypatch.setattr(main_window.compressed, "inflate_limit", lambda: 8 * 1024 ** 3)
    window.simulate()
    assert not window.runner.busy and window.raw == frames_before  # nothing started, nothing lost
    assert said and said[0].startswith("Not simulated:")
    assert window.statusBar().currentMessage() == said[0]


def test_the_stack_legend_wraps_in_a_narrow_dock_instead_of_losing_entries(qtbot, window):
    window.recipe.sigma_low = window.recipe.sigma_high = 0.5  # many rejected values: a long legend
    simulate_and_calibrate(qtbot, window)
    bias = next(m for m in window.masters if "bias" in m.name)
    window.select_frame_named(bias.name)
    window.pixel_clicked.emit(10, 12, bias)
    qtbot.waitUntil(lambda: bool(window.inspection.last_stacks), timeout=10000)
    legend = window.inspection.stack_view.legend
    text = legend.text()
    assert "clip bounds" in text and "kept" in text and "rejected" in text
    assert legend.wordWrap()
    assert legend.minimumSizeHint().width() < 200  # fits a narrow dock: wraps between entries


def test_a_light_calibrated_with_library_masters_says_which_stacks_are_not_here(qtbot, window, shared_data,
                                                                                  tmp_path):
    night = shared_data("umd_st8_ngc520")
    library = window.master_library
    library.set_path(tmp_path / "library" / "library.sqlite")
    window.open_paths([night / "2018-10-19_r"])
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    library.add_run()
    wait_idle(qtbot, window)
    assert len(library.entries()) == 4
    g_lights_flats = tmp_path / "g"
    g_lights_flats.mkdir()
    for path in (night / "2018-10-14_g").iterdir():
        if path.name.startswith(("NGC520", "flat")):
            shutil.copy2(path, g_lights_flats / path.name)
    window.open_paths([g_lights_flats])
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    light = next(f for f in window.calibrated if f.name == "NGC520-001-g.fit")
    window.pixel_clicked.emit(700, 500, light)
    qtbot.waitUntil(lambda: bool(window.inspection.last_stacks), timeout=20000)
    assert [s.master for s in window.inspection.last_stacks] == ["master_flat_Sloan_g.fits"]
    message = window.statusBar().currentMessage()
    assert "from the master library" in message and "master_bias" in message and "master_dark" in message
