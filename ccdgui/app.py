"""Start the desktop application, or run its smoke test. Qt is imported only inside these functions, so
``import ccdgui.cli`` stays light for the command line."""

from __future__ import annotations

import os
import sys
import time

#: The night the window opens on when given no files: the seed's physics, at a size that simulates in
#: about a second on a laptop (set 2000 × 2000 in the dock for the seed's own frame size).
STARTUP_SIZE = 1000


def _application(argv: list[str]):
    from PyQt6.QtGui import QIcon
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["ccdgui", *argv])
    app.setApplicationName("ccdgui")
    app.setOrganizationName("ccdgui")
    from .resources_path import resource_path

    icon = resource_path("ccdgui.svg")
    if icon is not None:
        app.setWindowIcon(QIcon(str(icon)))
    return app


def gui_problem(paths: list[str]) -> str | None:
    """Why the window cannot start (a missing path, no display to show it on), in one line, or None.
    Checked before Qt starts: without a display Qt aborts the process instead of reporting."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        return f"no such file or folder: {', '.join(missing)}"
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if (sys.platform.startswith("linux") and not platform and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY")):
        return ("no display to open the window on (DISPLAY is not set); use 'ccdgui reduce' without a "
                "window, or QT_QPA_PLATFORM=offscreen")
    return None


def run_gui(paths: list[str]) -> int:
    """Open the main window on ``paths`` (FITS files or folders), or on a simulated night. The window
    opens where it was last closed (on a screen that exists), else on a share of the screen."""
    problem = gui_problem(paths)
    if problem is not None:
        print(f"ccdgui: error: {problem}", file=sys.stderr)
        return 2
    app = _application([])
    from .model.simulate import SimParams
    from .qt.main_window import MainWindow, remove_abandoned_sessions, start_simulation_soon

    remove_abandoned_sessions()
    window = MainWindow(sim=SimParams(nx=STARTUP_SIZE, ny=STARTUP_SIZE))
    window.show()
    if paths:
        window.open_paths(paths)
    else:
        start_simulation_soon(window)
    return app.exec()


def smoke_test() -> int:
    """Start the window (offscreen without a display), simulate a small night, calibrate, render both
    views, print timings; 0 on success, 1 with a message otherwise."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    try:
        app = _application([])
        from PyQt6.QtCore import QSettings

        from .model.simulate import SimParams
        from .qt.main_window import MainWindow

        settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "ccdgui", "smoke-test")
        window = MainWindow(sim=SimParams(nx=256, ny=256, n_bias=3, n_dark=3, n_flat=3, n_light=1),
                            settings=settings)
        window.ask_before_discarding = False
        window.resize(1200, 800)
        window.show()
        app.processEvents()
        shown = time.perf_counter() - started
        for job in (window.simulate, window.calibrate):
            job()
            _wait(app, window)
        if not window.calibrated:
            raise RuntimeError("calibration produced no frame: " + "; ".join(window.last_result.problems
                                                                            if window.last_result else []))
        from .resources_path import resource_path

        if resource_path("ccdgui.svg") is None or resource_path("icons/light.svg") is None:
            raise RuntimeError("the application's icons are missing (ccdgui.resources)")
        image = window.centralWidget().grab()
        if image.isNull() or window.calibrated_view.data is None:
            raise RuntimeError("the views did not render")
        total = time.perf_counter() - started
        print(f"ccdgui smoke test: ok; window shown {shown:.2f} s, simulate "
              f"{window.timings['simulate']:.2f} s, calibrate {window.timings['calibrate']:.2f} s, "
              f"{len(window.masters)} masters, {len(window.calibrated)} calibrated, total {total:.2f} s")
        window.close()
        return 0
    except Exception as exc:
        print(f"ccdgui smoke test: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _wait(app, window, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    app.processEvents()
    while window.runner.busy:
        if time.perf_counter() > deadline:
            raise TimeoutError("a job took longer than the smoke test allows")
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
