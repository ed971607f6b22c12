"""The window on a laptop: it fits 1366 × 768 (and 1280 × 720) with every dock, Calibrate and the status
bar inside; geometry, dock layout, display settings and the recipe are remembered (in a temporary
settings file, never the user's); tabs by task; the guide; ``ccdgui gui`` checks its paths first."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt6.QtCore import QRect, Qt

from ccdgui.model.display import DisplayState
from ccdgui.model.recipe import OPTIONS, Recipe
from ccdgui.model.simulate import SimParams

from .conftest import wait_idle


def make_window(qtbot, settings, **kwargs):
    from ccdgui.qt.main_window import MainWindow

    win = MainWindow(sim=SimParams(nx=128, ny=96, n_bias=2, n_dark=2, n_flat=2, n_light=1, seed=1),
                     settings=settings, **kwargs)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    return win


def inside(outer: QRect, inner: QRect) -> bool:
    return outer.contains(inner.topLeft()) and outer.contains(inner.bottomRight())


def widget_rect(widget, window) -> QRect:
    return QRect(widget.mapTo(window, widget.rect().topLeft()), widget.size())


def test_first_geometry_is_a_share_of_the_screen_centred_in_it():
    from ccdgui.qt.main_window import first_geometry

    assert first_geometry(QRect(0, 0, 1366, 768)) == QRect(68, 38, 1229, 691)
    assert first_geometry(QRect(0, 0, 1920, 1080)) == QRect(160, 54, 1600, 972)
    laptop = QRect(0, 27, 1280, 693)  # a top panel takes 27 pixels
    assert inside(laptop, first_geometry(laptop))


@pytest.mark.parametrize("size", [(1366, 768), (1280, 720)])
def test_everything_is_inside_a_laptop_screen(qtbot, settings, size):
    win = make_window(qtbot, settings)
    win.show()
    win.setGeometry(QRect(0, 0, *size))
    qtbot.wait(30)
    assert win.minimumSizeHint().width() <= size[0] and win.minimumSizeHint().height() <= size[1]
    assert (win.width(), win.height()) == size  # not grown past the screen by minimum sizes
    window_rect = win.rect()
    for dock in (win.library_dock, win.params_dock):
        assert dock.isVisible() and inside(window_rect, dock.geometry()), dock.objectName()
    assert inside(window_rect, win.statusBar().geometry())
    assert inside(window_rect, widget_rect(win.params.calibrate_button, win))  # Calibrate in reach
    assert win.params.calibrate_button.isVisible()
    assert inside(window_rect, widget_rect(win.histogram, win))
    assert win.histogram.height() >= 100 and win.raw_view.height() >= 250
    # the status bar's job widgets fit too while a job runs
    win.progress.setVisible(True)
    win.cancel_button.setVisible(True)
    win.pixel_label.setText("x=1024 y=1024   raw light 1234.5   calibrated 123.45")
    qtbot.wait(30)
    assert (win.width(), win.height()) == size
    assert inside(window_rect, widget_rect(win.cancel_button, win))
    assert inside(window_rect, widget_rect(win.progress, win))


def test_a_remembered_geometry_off_every_screen_is_brought_back(qtbot, settings):
    win = make_window(qtbot, settings)
    win.show()
    win.setGeometry(QRect(5000, 4000, 700, 500))  # a monitor that is gone
    win.keep_on_screen()
    screen = win.screen().availableGeometry()
    assert screen.intersects(win.frameGeometry())
    assert inside(screen, win.frameGeometry()) or win.frameGeometry().width() > screen.width()


def test_geometry_layout_display_settings_and_recipe_are_remembered(qtbot, settings):
    win = make_window(qtbot, settings)
    win.show()
    win.resize(780, 560)
    qtbot.wait(20)
    win.display.interval = "zscale"
    win.display.stretch = "asinh"
    win.display.colour_map = "viridis"
    win.display.percentile_low, win.display.percentile_high = 1.0, 99.0
    win.recipe.combine = "median"
    win.recipe.sigma_low = 3.0
    win.set_view_layout("stacked")
    win.set_ruler(True)
    win.close()
    again = make_window(qtbot, settings)
    again.show()
    qtbot.wait(20)
    assert (again.width(), again.height()) == (780, 560)
    assert (again.display.interval, again.display.stretch, again.display.colour_map) == (
        "zscale", "asinh", "viridis")
    assert (again.display.percentile_low, again.display.percentile_high) == (1.0, 99.0)
    assert again.interval_combo.currentData() == "zscale" and again.percentile_spins[0].value() == 1.0
    assert again.recipe.combine == "median" and again.recipe.sigma_low == 3.0
    assert again.params.widgets["recipe.combine"].currentData() == "median"
    assert again.layout_name == "stacked" and again.ruler_action.isChecked()
    again.close()


def test_unreadable_remembered_settings_fall_back_to_defaults(qtbot, settings):
    settings.setValue("display/interval", "bogus")
    settings.setValue("display/percentile_low", "not a number")
    settings.setValue("display/percentile_high", 250)
    settings.setValue("recipe", "{not json")
    settings.setValue("view_layout", "diagonal")
    win = make_window(qtbot, settings)
    assert win.display == DisplayState()
    assert win.recipe.to_dict() == Recipe().to_dict()
    assert win.layout_name == "auto"


def test_per_session_choices_are_not_carried_to_the_next_start(qtbot, settings):
    settings.setValue("recipe", json.dumps({**Recipe().to_dict(), "kind_overrides": {"a.fits": "dark"}}))
    win = make_window(qtbot, settings)
    assert win.recipe.kind_overrides == {}


def test_percentiles_are_editable_and_never_cross(qtbot, settings):
    win = make_window(qtbot, settings)
    low, high = win.percentile_spins
    low.setValue(2.5)
    assert win.display.percentile_low == 2.5
    high.setValue(1.0)  # below the lower one: undone
    assert win.display.percentile_high > win.display.percentile_low
    assert high.value() == win.display.percentile_high


def test_recipe_tab_first_for_real_data_simulation_first_for_a_simulated_night(qtbot, settings, tmp_path):
    from ccdgui.model import fitsio
    from ccdgui.model.simulate import simulate_night

    win = make_window(qtbot, settings)
    win.show()
    win.simulate()
    wait_idle(qtbot, win)
    assert win.params.tab_titles()[:2] == ["Simulation", "Recipe"] and win.params.tabs.currentIndex() == 0
    for frame in simulate_night(SimParams(nx=32, ny=24, n_bias=1, n_dark=1, n_flat=1, n_light=1)).frames:
        fitsio.write_frame(frame, tmp_path / frame.name)
    win.open_paths([tmp_path])
    wait_idle(qtbot, win)
    assert win.params.tab_titles()[:2] == ["Recipe", "Simulation"]
    assert win.params.tabs.currentWidget() is win.params.recipe_page
    from PyQt6.QtWidgets import QLabel

    index = win.add_dock_tab("QA", QLabel("qa"), "quality checks")
    assert win.params.tab_titles()[index] == "QA" and win.params.tabs.tabToolTip(index) == "quality checks"


def test_the_user_guide_is_bundled_and_lists_every_recipe_option_and_key(qtbot, settings):
    from ccdgui.qt.help import guide_html

    text = guide_html()
    assert "<!-- recipe-options -->" not in text
    for option in (o for o in OPTIONS if o.group):
        assert f"<code>{option.name}</code>" in text
    for key in ("F1", "Arrow keys", "Zoom 1:1", "Blink"):
        assert key in text
    win = make_window(qtbot, settings)
    assert win.guide_action.shortcut().toString() == "F1"
    win.show_guide()
    assert win._guide.isVisible() and "workflow" in win._guide.browser.toPlainText()
    win._guide.close()


def test_save_dialog_starts_beside_the_input_folder_not_in_it(qtbot, settings, tmp_path):
    night = tmp_path / "night"
    (night / "sub").mkdir(parents=True)
    win = make_window(qtbot, settings)
    settings.setValue("last_folder", str(night))
    assert win.output_start_folder() == str(tmp_path.resolve())
    settings.setValue("last_output", str(night / "sub"))  # inside the inputs: not offered
    assert win.output_start_folder() == str(tmp_path.resolve())
    elsewhere = tmp_path / "reduced"
    elsewhere.mkdir()
    settings.setValue("last_output", str(elsewhere))
    assert win.output_start_folder() == str(elsewhere.resolve())


def test_gui_checks_its_paths_before_qt_starts(tmp_path):
    from ccdgui.app import gui_problem

    assert gui_problem([str(tmp_path)]) is None or "display" in gui_problem([str(tmp_path)])
    assert gui_problem([str(tmp_path / "nope")]) == f"no such file or folder: {tmp_path / 'nope'}"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "ccdgui", "gui", "/nonexistent"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "ccdgui: error: no such file or folder: /nonexistent"


@pytest.mark.xvfb
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb (xvfb-run) is not installed")
def test_first_start_on_a_real_1366x768_screen(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    script = Path(__file__).with_name("screens.py")
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1366x768x24", sys.executable, str(script),
                           str(tmp_path), "first"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    screen = QRect(*report["screen"])
    for name in ("window", "library", "parameters", "status", "calibrate_button", "histogram", "raw_view"):
        assert inside(screen, QRect(*report[name])), (name, report[name])


def test_view_layouts_and_the_automatic_choice(qtbot, settings):
    import numpy as np

    from ccdgui.model.frame import Frame, FrameKind

    win = make_window(qtbot, settings)
    win.show()
    win.resize(780, 560)
    qtbot.wait(20)
    wide = Frame(data=np.zeros((100, 1000), np.float32), kind=FrameKind.LIGHT, name="wide.fits")
    tall = Frame(data=np.zeros((1000, 100), np.float32), kind=FrameKind.LIGHT, name="tall.fits")
    win.show_frame(wide)
    assert win.views.orientation() == Qt.Orientation.Vertical     # a wide frame: one above the other
    win.show_frame(tall)
    assert win.views.orientation() == Qt.Orientation.Horizontal   # a tall one: side by side
    win.set_view_layout("stacked")
    win.show_frame(tall)
    assert win.views.orientation() == Qt.Orientation.Vertical
    win.set_view_layout("single")
    assert win.calibrated_view.isHidden() and settings.value("view_layout") == "single"
    assert [a.data() for a in win.layout_actions.actions() if a.isChecked()] == ["single"]


def test_every_parameter_tab_is_one_click_away_on_a_narrow_dock(qtbot, window):
    """Six tabs do not fit across a laptop's 310 px dock: they go down its side instead of hiding
    behind scroll arrows, and come back along the top when the dock is wide."""
    from PyQt6.QtWidgets import QTabWidget

    tabs = window.params.tabs
    assert window.params.tab_titles()[:2] in (["Recipe", "Simulation"], ["Simulation", "Recipe"])
    assert {"Stack", "QA", "Compare", "Masters"} <= set(window.params.tab_titles())
    window.params.resize(310, 600)
    qtbot.waitUntil(lambda: tabs.tabPosition() == QTabWidget.TabPosition.West)
    bar = tabs.tabBar()
    assert all(bar.rect().contains(bar.tabRect(i)) for i in range(bar.count()))
    window.params.resize(900, 600)
    qtbot.waitUntil(lambda: tabs.tabPosition() == QTabWidget.TabPosition.North)
