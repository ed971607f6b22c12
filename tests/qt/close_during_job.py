"""Run in a subprocess by test_jobs: start a calibration with L.A.Cosmic cleaning of a big simulated
light, close the window once the cleaning is under way, and print (JSON) when the close began, how
long it took and how many workers were still alive; the parent times the process's exit."""

import json
import os
import sys
import threading
import time

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication, QMessageBox

from ccdgui.model import masks
from ccdgui.model.simulate import SimParams, simulate_night
from ccdgui.qt.main_window import MainWindow


def failed(*args) -> None:
    print(json.dumps({"failed": str(args[-1])}), flush=True)
    os._exit(1)


def main(size: int, settings_path: str) -> int:
    app = QApplication(["ccdgui"])
    cleaning = threading.Event()
    original = masks.clean_cosmic_rays

    def clean_cosmic_rays(*args, **kwargs):
        cleaning.set()
        return original(*args, **kwargs)

    masks.clean_cosmic_rays = clean_cosmic_rays
    QMessageBox.warning = failed  # a failed job ends the run instead of waiting on a dialog
    window = MainWindow(settings=QSettings(settings_path, QSettings.Format.IniFormat))
    window.ask_before_discarding = False
    window.show()
    night = simulate_night(SimParams(nx=size, ny=size, n_bias=1, n_dark=1, n_flat=1, n_light=1, seed=2))
    window._set_session(night.frames, [])
    window.recipe.cosmic_rays = "lacosmic"
    window.calibrate()
    deadline = time.monotonic() + 300
    while not cleaning.is_set() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    time.sleep(1.0)  # well inside the cleaning
    app.processEvents()
    began = time.time()
    window.close()
    closed_in = time.time() - began
    runner = window.runner
    live = runner.live_threads() if hasattr(runner, "live_threads") else -1
    print(json.dumps({"began": began, "closed_in": closed_in, "live": live, "cleaning": cleaning.is_set()}),
          flush=True)
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2]))
