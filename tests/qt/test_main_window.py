"""The real main window, driven offscreen: simulate, select, calibrate, cancel, bindings both ways."""

import time

import numpy as np
import pytest
from astropy.stats import mad_std
from PyQt6.QtCore import QTimer

from ccdgui.model import execute, files
from ccdgui.model.frame import FrameKind
from ccdgui.model.recipe import Recipe
from ccdgui.model.simulate import SimParams, simulate_night
from ccdgui.qt.library_panel import column

from .conftest import wait_idle


def run_model(frames, recipe):
    return execute.run_to_end(frames, recipe)


def test_simulate_select_calibrate_shows_the_models_answer(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    assert len(window.raw) == 4 + 4 + 3 + 2
    assert window.raw_view.data is not None  # a light is shown as soon as the night exists
    window.library.select_frame(window.raw[0])
    assert window.raw_view.data is window.raw[0].data
    window.recipe.combine = "median"
    window.calibrate()
    wait_idle(qtbot, window)
    assert len(window.masters) == 3 and len(window.calibrated) == 2
    shown = window.calibrated_view.data
    assert shown is window.calibrated[0].data
    expected = run_model(window.raw, Recipe(combine="median"))
    np.testing.assert_array_equal(shown, expected.calibrated[0].data)
    assert mad_std(shown) == pytest.approx(mad_std(expected.calibrated[0].data))
    # raw light on the left, its calibrated version on the right; both listed in the library
    assert window.raw_view.data is next(f for f in window.raw if f.name == window.calibrated[0].name).data
    names = {item.text(0) for item in window.library.frame_items()}
    assert {"master_bias.fits", "master_dark_60s.fits", "master_flat_r.fits"} <= names


def test_dock_and_recipe_are_bound_both_ways(window):
    combo = window.params.widgets["recipe.combine"]
    combo.setCurrentIndex(combo.findData("median"))
    assert window.recipe.combine == "median"
    window.recipe.combine = "sum"
    assert combo.currentData() == "sum"
    spin = window.params.widgets["recipe.sigma_low"]
    spin.setValue(3.5)
    assert window.recipe.sigma_low == 3.5
    window.recipe.sigma_high = 2.25
    assert window.params.widgets["recipe.sigma_high"].value() == 2.25
    size = window.params.widgets["sim.nx"]
    size.setValue(512)
    assert window.sim.nx == 512
    window.sim.read_noise = 12.5
    assert window.params.widgets["sim.read_noise"].value() == 12.5
    filters = window.params.widgets["sim.filters"]
    filters.setText("g, i")
    filters.editingFinished.emit()
    assert window.sim.filters == ("g", "i")
    window.sim.filters = ("r",)
    assert filters.text() == "r"
    check = window.params.widgets["recipe.scale_dark"]
    check.setChecked(False)
    assert window.recipe.scale_dark is False


def test_cancel_during_calibration_leaves_the_app_usable(qtbot, settings):
    from ccdgui.qt.main_window import MainWindow

    win = MainWindow(settings=settings)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    win.show()
    night = simulate_night(SimParams(nx=1200, ny=1200, n_bias=6, n_dark=6, n_flat=6, n_light=2))
    win._set_session(night.frames, [])
    win.calibrate()
    qtbot.waitUntil(lambda: win.progress.value() > 0, timeout=20000)
    win.runner.cancel()
    assert not win.runner.busy
    qtbot.wait(200)
    assert win.masters == [] and win.calibrated == []  # nothing half-made is shown
    assert "cancelled" in win.statusBar().currentMessage()
    win.calibrate()  # and it works again
    wait_idle(qtbot, win)
    assert len(win.calibrated) == 2
    win.runner.wait(10000)
    win.close()


def test_event_loop_stays_responsive_during_a_2000_square_calibration(qtbot, settings):
    """The longest event-loop gap while a 2000² night calibrates stays under 100 ms. The machine is
    shared, so the better of two runs counts (a stall caused by our code shows in both)."""
    from ccdgui.qt.main_window import MainWindow

    win = MainWindow(settings=settings)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    win.show()
    night = simulate_night(SimParams(n_bias=5, n_dark=5, n_flat=5, n_light=2))
    win._set_session(night.frames, [])
    qtbot.wait(50)
    longest = []
    for _ in range(2):
        gaps, last = [], [time.perf_counter()]

        def ping(gaps=gaps, last=last):
            now = time.perf_counter()
            gaps.append(now - last[0])
            last[0] = now

        timer = QTimer()
        timer.timeout.connect(ping)
        timer.start(10)
        win.calibrate()
        wait_idle(qtbot, win, timeout=120000)
        qtbot.wait(200)  # the frame shown after the result, and its paint
        timer.stop()
        assert len(win.calibrated) == 2
        assert len(gaps) > 20
        longest.append(max(gaps))
        if longest[-1] < 0.1:
            break
    print(f"longest event-loop gap during calibration: {', '.join(f'{g * 1000:.0f}' for g in longest)} ms")
    assert min(longest) < 0.1, f"the GUI thread blocked for {min(longest) * 1000:.0f} ms"
    win.close()


def test_reclassifying_a_frame_changes_the_plan(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    light = next(f for f in window.raw if f.kind is FrameKind.LIGHT)
    window.library.kind_requested.emit(light, FrameKind.UNKNOWN)
    assert window.recipe.kind_overrides == {light.name: "unknown"}
    assert len(window.plan.lights) == 1
    item = next(i for i in window.library.frame_items() if i.text(0) == light.name)
    assert item.text(1) == "unknown" and "type set to unknown" in item.text(column("status"))


def test_display_controls_change_levels_and_lut_not_data(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    data = window.raw_view.data
    before = window.raw_view.image.levels
    window.display.interval = "minmax"
    after = window.raw_view.image.levels
    assert after[0] < before[0] and after[1] > before[1]
    window.display.stretch = "log"
    assert window.raw_view.image.lut.shape == (256, 3)
    assert window.raw_view.data is data
    window.histogram.region.setRegion((1000.0, 1200.0))
    assert tuple(window.raw_view.image.levels) == (1000.0, 1200.0)


def test_open_folder_lists_frames_and_quarantine(qtbot, window, tmp_path):
    from ccdgui.model import fitsio

    for frame in simulate_night(SimParams(nx=32, ny=24, n_bias=2, n_dark=1, n_flat=1, n_light=1)).frames:
        fitsio.write_frame(frame, tmp_path / frame.name)
    (tmp_path / "broken.fits").write_bytes(b"garbage" * 50)
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    assert len(window.raw) == 5 and len(window.quarantined) == 1
    assert window.settings.value("last_folder") == str(tmp_path)
    top = [window.library.topLevelItem(i).text(0) for i in range(window.library.topLevelItemCount())]
    assert "Quarantined (1)" in top


def test_export_png_and_keyboard_blink(qtbot, window, tmp_path):
    window.simulate()
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    raw_data = window.raw_view.data
    window.blink()
    assert window.raw_view.data is window.calibrated[0].data
    window.blink()
    assert window.raw_view.data is raw_data
    path = window.export_png(tmp_path / "view.png")
    assert path.stat().st_size > 10_000


def test_image_view_draws_only_a_screen_sized_window_of_a_big_frame(qtbot):
    from ccdgui.qt.image_view import ImageView, lookup_table

    view = ImageView("big")
    qtbot.addWidget(view)
    view.resize(700, 700)
    view.show()
    qtbot.wait(20)
    data = np.random.default_rng(2).normal(1000, 20, (4096, 4096)).astype(np.float32)
    view.show_frame(data, "big", (950.0, 1050.0), lookup_table("linear", "grey"))
    qtbot.wait(20)
    fitted = view.drawn_shape()
    assert max(fitted) <= 1400, fitted          # a binned level, not 4096² pixels
    box = view.image.mapRectToView(view.image.boundingRect())
    assert box.width() == pytest.approx(4096, abs=8) and box.height() == pytest.approx(4096, abs=8)
    view.zoom(16)
    qtbot.wait(20)
    zoomed = view.drawn_shape()
    assert max(zoomed) <= 1000, zoomed          # full resolution, but only around what is in view
    (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
    drawn = view.image.mapRectToView(view.image.boundingRect())
    assert drawn.left() <= x0 and drawn.right() >= x1 and drawn.top() <= y0 and drawn.bottom() >= y1
    view.close()


def test_open_calibrate_save_leaves_inputs_byte_identical_and_outputs_valid(qtbot, window, tmp_path):
    import json
    import shutil
    import subprocess

    from ccdgui.model import fitsio

    night = tmp_path / "night"
    night.mkdir()
    for frame in simulate_night(SimParams(nx=64, ny=48, n_bias=3, n_dark=3, n_flat=3, n_light=2)).frames:
        fitsio.write_frame(frame, night / frame.name)
    before = {p.name: files.sha256_of(p) for p in night.iterdir()}
    window.open_paths([night])
    wait_idle(qtbot, window)
    assert "Calibrate: 3 masters" in window.estimate_label.text()
    assert not window.save_action.isEnabled()
    window.calibrate()
    wait_idle(qtbot, window)
    assert window.save_action.isEnabled()
    out = tmp_path / "reduced"
    window.save_results(out)
    wait_idle(qtbot, window)
    assert sorted(p.name for p in (out / "masters").iterdir()) == [
        "master_bias.fits", "master_dark_60s.fits", "master_flat_r.fits"]
    assert sorted(p.name for p in (out / "calibrated").iterdir()) == ["light_r_000.fits", "light_r_001.fits"]
    record = json.loads((out / "recipe.json").read_text())
    assert {i["sha256"] for i in record["inputs"]} == set(before.values())
    assert {p.name: files.sha256_of(p) for p in night.iterdir()} == before  # inputs untouched
    assert not list(out.rglob("*.part"))
    if shutil.which("fitsverify"):
        for path in out.rglob("*.fits"):
            done = subprocess.run(["fitsverify", "-q", str(path)], capture_output=True, text=True)
            assert done.returncode == 0 and "verification OK" in done.stdout, done.stdout + done.stderr
    assert "Saved 6 files" in window.statusBar().currentMessage()


def test_one_shot_colour_frame_is_shown_in_colour_and_calibrated_as_a_mosaic(qtbot, window, tmp_path):
    from astropy.io import fits

    mosaic = np.full((64, 96), 1000, np.uint16)
    mosaic[0::2, 1::2] = 2000  # R sites of a GRBG mosaic
    hdu = fits.PrimaryHDU(mosaic)
    hdu.header.update(IMAGETYP="Light", EXPTIME=10.0, BAYERPAT="GRBG")
    hdu.writeto(tmp_path / "osc.fit")
    window.open_paths([tmp_path / "osc.fit"])
    wait_idle(qtbot, window)
    qtbot.wait(20)
    assert window.raw_view.in_colour and window.raw_view.image.image.ndim == 3
    assert window.raw_view.data.shape == (64, 96)            # the frame itself stays the raw mosaic
    drawn = window.raw_view.image.mapRectToView(window.raw_view.image.boundingRect())
    assert drawn.width() == pytest.approx(96) and drawn.height() == pytest.approx(64)
    window.colour_check.setChecked(False)
    qtbot.wait(20)
    assert not window.raw_view.in_colour and window.raw_view.image.image.ndim == 2


def test_open_folder_lists_from_headers_and_reads_pixels_only_to_show(qtbot, window, tmp_path):
    from astropy.io import fits

    for index in range(12):
        hdu = fits.PrimaryHDU(np.full((40, 50), 1000 + index, np.uint16))
        hdu.header.update(IMAGETYP="Bias Frame", EXPTIME=0.0)
        hdu.writeto(tmp_path / f"bias_{index:02d}.fits")
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    assert len(window.raw) == 12
    shown = window.current
    assert all(not f.loaded for f in window.raw if f is not shown)  # listed from headers alone
    medians = {item.text(0): item.text(column("median")) for item in window.library.frame_items()}
    assert medians["bias_07.fits"] == "1007.0"


def test_choosing_another_image_of_a_multi_extension_file(qtbot, window, shared_data):
    path = shared_data("odd_singles/test0.fits")
    window.open_paths([path])
    wait_idle(qtbot, window)
    frame = window.raw[0]
    assert frame.hdu == 1
    window.set_hdu(frame, 3)
    assert window.raw[0].hdu == 3 and window.recipe.hdu_overrides == {"test0.fits": 3}
    assert window.current is window.raw[0]
    assert Recipe.from_dict(window.recipe.to_dict()).hdu_overrides == {"test0.fits": 3}
