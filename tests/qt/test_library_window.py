"""The master library in the main window: the Masters tab, planning and calibrating with library masters
(the UMD r night's lights and flats with its bias and darks from the library, identical to the
one-folder run), a light's choice recorded in recipe.json, adding a run's masters, and a library that
cannot be opened said in one line."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from astropy.io import fits

from ccdgui.model import execute, fitsio, masterlib, plan
from ccdgui.model.progress import drive
from ccdgui.model.recipe import Recipe
from ccdgui.qt.library_tab import SETTINGS_KEY

from .conftest import wait_idle

#: Screenshots are saved only where CCDGUI_SCREENSHOT_DIR names a folder (to look at, not compared).
SHOTS = Path(os.environ["CCDGUI_SCREENSHOT_DIR"]) if os.environ.get("CCDGUI_SCREENSHOT_DIR") else None
MASTERS = ["master_bias.fits", "master_dark_300s.fits", "master_dark_3s.fits", "master_flat_Sloan_r.fits"]


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lights_and_flats(night: Path, target: Path) -> Path:
    """A folder with only the night's lights and flats (no bias, no dark)."""
    target.mkdir(parents=True)
    for path in night.iterdir():
        if path.name.startswith("NGC520") or "flat" in path.name:
            shutil.copy2(path, target / path.name)
    return target


def calibrate(qtbot, window) -> None:
    window.calibrate()
    wait_idle(qtbot, window, timeout=120000)
    assert window.last_result is not None and window.calibrated


def test_a_night_calibrated_in_the_window_with_library_masters(qtbot, window, settings, shared_data,
                                                               tmp_path):
    night = shared_data("umd_st8_ngc520/2018-10-19_r")
    controller = window.master_library
    lib_path = tmp_path / "lib" / "library.sqlite"
    assert controller.set_path(lib_path) is False            # missing: said, not created yet
    assert not lib_path.exists() and "created on the first Add" in controller.path_label.text()
    assert settings.value(SETTINGS_KEY) == str(lib_path)
    assert not controller.add_run_action.isEnabled()

    # the one-folder run in the window, and its masters added to the (new) library
    window.open_paths([night])
    wait_idle(qtbot, window)
    calibrate(qtbot, window)
    assert controller.add_run_action.isEnabled()
    whole = {f.name: np.array(f.data) for f in window.calibrated}
    whole_sha = {p.name: sha256(p) for p in (window.last_result.outdir).rglob("NGC520-*")}
    controller.add_run_action.trigger()
    wait_idle(qtbot, window)
    assert lib_path.is_file()
    assert sorted(e.name for e in window.library_entries) == MASTERS
    assert controller.view.table.rowCount() == 4
    assert "Added 4 master(s)" in window.statusBar().currentMessage()

    # tonight: only lights and flats; bias and darks come from the library, said per light
    window.open_paths([lights_and_flats(night, tmp_path / "tonight")])
    wait_idle(qtbot, window)
    assert not controller.add_run_action.isEnabled()       # a new session: no run to add yet
    assert [m.name for m in window.plan.masters] == ["master_flat_Sloan_r.fits"]
    steps = window.plan.lights[0]
    assert steps.bias.library is not None and steps.dark.library is not None
    assert steps.choices["dark"].verdict == "exact"
    light = next(f for f in window.raw if f.name == steps.frame.name)
    window.library.select_frame(light)
    tips = _status_tooltips(window)
    assert any("dark: library master_dark_300s" in tip and "exact" in tip for tip in tips), tips
    calibrate(qtbot, window)
    assert len(window.calibrated) == 3
    for frame in window.calibrated:
        np.testing.assert_array_equal(np.array(frame.data), whole[frame.name])
    ours = {p.name: sha256(p) for p in window.last_result.outdir.rglob("NGC520-*")}
    assert ours == whole_sha
    record = json.loads((window.last_result.outdir / "recipe.json").read_text())
    assert sorted(m["name"] for m in record["library_masters"]) == MASTERS[:3]

    # the light's ranked choice: another dark, recorded in the recipe and re-planned
    choice = controller.choice
    assert choice.lists["dark"].frame_name == light.name
    assert "dark library master_dark_300s" in choice.heading.text()
    references = choice.lists["dark"].references()
    short = next(e for e in window.library_entries if e.name == "master_dark_3s.fits")
    reference = next(r for r in references if r and short.sha256 in r)
    choice.lists["dark"].select(reference)
    _screenshots(qtbot, window)
    choice.lists["dark"].use_button.click()
    assert window.recipe.master_overrides == {f"{light.name}:dark": reference}
    steps = next(s for s in window.plan.lights if s.frame.name == light.name)
    assert steps.dark.name == "master_dark_3s.fits" and steps.choices["dark"].by_user
    assert steps.dark_factor() == 100.0
    assert choice.lists["dark"].tree.topLevelItem(0).text(0) == "✔ yours"
    if SHOTS is not None:
        window.grab().save(str(SHOTS / "window_light_chosen.png"))
    assert any(n.frame == light.name and "library master_dark_3s" in n.text and "chosen by the user" in n.text
               for n in window.notes.notes)
    others = [s for s in window.plan.lights if s.frame.name != light.name]
    assert all(s.dark.name == "master_dark_300s.fits" for s in others)
    calibrate(qtbot, window)
    record = json.loads((window.last_result.outdir / "recipe.json").read_text())
    assert record["recipe"]["master_overrides"] == {f"{light.name}:dark": reference}
    changed = next(f for f in window.calibrated if f.name == light.name)
    assert not np.array_equal(np.array(changed.data), whole[light.name])
    same = next(f for f in window.calibrated if f.name != light.name)
    np.testing.assert_array_equal(np.array(same.data), whole[same.name])
    choice.lists["dark"].auto_button.click()               # back to the planner's choice
    assert window.recipe.master_overrides == {}
    choice.lists["dark"].select(reference)
    choice.lists["dark"].use_button.click()
    window.open_paths([tmp_path / "tonight"])              # a new session forgets the choices
    wait_idle(qtbot, window)
    assert window.recipe.master_overrides == {}


def test_the_g_night_gets_the_r_night_s_bias_and_darks_as_nearby_said_in_status_and_notes(
        qtbot, window, shared_data, tmp_path):
    r_night = shared_data("umd_st8_ngc520/2018-10-19_r")
    frames, _ = fitsio.scan_folder(r_night, lazy=True)
    made = plan.make_plan(frames, Recipe(), root=r_night)
    drive(execute.execute(made, Recipe(), tmp_path / "r"))
    (tmp_path / "lib").mkdir()
    with masterlib.Library(tmp_path / "lib") as lib:   # a folder: its library.sqlite
        assert len(lib.add_run(made, tmp_path / "r").added) == 4
    window.master_library.set_path(tmp_path / "lib")
    assert window.master_library.path == tmp_path / "lib" / "library.sqlite"
    assert len(window.library_entries) == 4
    g_night = shared_data("umd_st8_ngc520/2018-10-14_g")
    window.open_paths([lights_and_flats(g_night, tmp_path / "g")])
    wait_idle(qtbot, window)
    for steps in window.plan.lights:
        assert steps.bias.library is not None and steps.choices["bias"].verdict == "nearby"
        assert steps.dark.name == "master_dark_300s.fits"
    tips = _status_tooltips(window)
    said = "bias: library master_bias (2018-10-18, 5 days newer"
    assert any(said in tip and "nearby" in tip for tip in tips), tips
    flat_dark = "combined into master_flat_Sloan_g.fits\nbias: library master_bias"
    flat_tips = [tip for tip in tips if tip.startswith(flat_dark)]
    assert len(flat_tips) == 3 and all("dark: library master_dark_300s" in tip and "×0.03333" in tip
                                       for tip in flat_tips), tips  # each 10 s flat's flat-dark, scaled
    light = window.plan.lights[0].frame.name
    assert any(n.frame == light and n.text.startswith(said)
               for n in window.notes.notes)
    calibrate(qtbot, window)
    assert len(window.calibrated) == 2
    assert all(625 < np.median(np.array(f.data)) < 660 for f in window.calibrated)  # as the model's test


def _status_tooltips(window) -> list[str]:
    tree = window.library  # the frame library (a QTreeWidget)
    tips = []

    def walk(item):
        for col in range(item.columnCount()):
            tips.append(item.toolTip(col))
        for i in range(item.childCount()):
            walk(item.child(i))

    for i in range(tree.topLevelItemCount()):
        walk(tree.topLevelItem(i))
    return tips


def _screenshots(qtbot, window) -> None:
    if SHOTS is None:
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    window.resize(1366, 768)
    window.params_dock.raise_()
    window.params.tabs.setCurrentWidget(window.master_library.widget)
    qtbot.wait(200)
    window.grab().save(str(SHOTS / "window_light_choice.png"))
    window.master_library.widget.grab().save(str(SHOTS / "masters_tab.png"))


def test_a_library_that_cannot_be_opened_is_said_in_one_line(qtbot, window, tmp_path):
    bad = tmp_path / "library.sqlite"
    bad.write_bytes(b"this is not an SQLite database\n" * 100)
    before = bad.read_bytes()
    controller = window.master_library
    assert controller.set_path(bad) is False
    assert controller.problem and "\n" not in controller.problem and str(bad) in controller.problem
    assert controller.problem in window.statusBar().currentMessage()
    assert controller.view.table.rowCount() == 0 and window.library_entries == []
    assert bad.read_bytes() == before                      # never overwritten
    result = controller.add_files([tmp_path / "none.fits"])
    assert result.added == [] and result.skipped == [controller.problem]
    # a library "inside" a file cannot be created: one line too, no crash
    (tmp_path / "plain").write_text("x")
    assert controller.set_path(tmp_path / "plain" / "library.sqlite") is False
    assert controller.problem == ""
    result = controller.add_files([tmp_path / "none.fits"])
    assert result.added == [] and len(result.skipped) == 1 and "\n" not in result.skipped[0]
    assert "cannot open the master library" in controller.path_label.text()


def test_the_library_path_is_remembered_and_masters_added_in_the_tab_are_planned_with(
        qtbot, settings, tmp_path):
    from ccdgui.model.simulate import SimParams
    from ccdgui.qt.main_window import MainWindow

    lib_path = tmp_path / "mine" / "library.sqlite"
    settings.setValue(SETTINGS_KEY, str(lib_path))
    win = MainWindow(sim=SimParams(nx=64, ny=48, n_bias=2, n_dark=2, n_flat=2, n_light=1, seed=3),
                     settings=settings)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    try:
        assert win.master_library.path == lib_path and win.library_entries == []
        assert "created on the first Add" in win.master_library.path_label.text()
        master = tmp_path / "master_bias_other.fits"
        header = fits.Header({"IMAGETYP": "Master Bias", "NCOMBINE": 9, "INSTRUME": "Elsewhere Cam",
                              "DATE-OBS": "2026-10-01T22:00:00"})
        fits.PrimaryHDU(np.full((48, 64), 100.0, np.float32), header).writeto(master)
        result = win.master_library.add_files([master])
        assert [e.name for e in result.added] == ["master_bias_other.fits"] and lib_path.is_file()
        assert [e.name for e in win.library_entries] == ["master_bias_other.fits"]  # re-read at once
        assert win.master_library.view.table.rowCount() == 1
        win.simulate()
        wait_idle(qtbot, win)
        assert [m.name for m in win.plan.offered] == ["master_bias_other.fits"]
        light = win.plan.lights[0]
        assert light.bias.library is None                     # another camera: tonight's bias stays
        win.master_library.show_light(light.frame)
        verdicts = win.master_library.choice.lists["bias"].tree
        shown = [verdicts.topLevelItem(i).text(2) for i in range(verdicts.topLevelItemCount())]
        assert shown[0] == "exact" and shown[-1] == "refused"
        result = win.master_library.add_files([master])     # twice: skipped with its reason
        assert result.added == [] and "already in the library" in result.skipped[0]
        with masterlib.Library(lib_path) as other:          # another program removes it meanwhile
            other.remove(["master_bias_other.fits"])
        win.params.tabs.setCurrentIndex(0)
        win.params.tabs.setCurrentWidget(win.master_library.widget)
        assert win.library_entries == [] and win.plan.offered == []
        assert win.master_library.view.table.rowCount() == 0
    finally:
        win.runner.cancel()
        win.runner.wait(10000)
        win.close()
