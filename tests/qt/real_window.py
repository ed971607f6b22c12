"""Run in a subprocess under Xvfb by test_real_window: open the main window at 1600×1000 as a user
would, simulate, calibrate, and save screenshots (the window, and the whole X screen)."""

import sys
import time
from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication

from ccdgui.app import _wait
from ccdgui.model.simulate import SimParams
from ccdgui.qt.main_window import MainWindow


def main(out: Path) -> int:
    app = QApplication(["ccdgui"])
    assert app.platformName() == "xcb", app.platformName()
    settings = QSettings(str(out / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(sim=SimParams(nx=1000, ny=1000), settings=settings)
    window.ask_before_discarding = False
    window.resize(1600, 1000)
    window.move(0, 0)
    started = time.perf_counter()
    window.show()
    app.processEvents()
    print(f"window shown in {time.perf_counter() - started:.2f} s")
    window.simulate()
    _wait(app, window)
    window.calibrate()
    _wait(app, window)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    window.grab().save(str(out / "main_window.png"))
    app.primaryScreen().grabWindow(0).save(str(out / "screen.png"))
    print(f"size {window.width()}x{window.height()}, calibrated {len(window.calibrated)}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
