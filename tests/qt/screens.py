"""Run under Xvfb (a real X11 screen of the size given) as a new user would start the window: first
start, optionally open a folder, calibrate, and save the window's and the screen's pictures; print the
window's and its docks' geometry so a test can check they lie on the screen.

    xvfb-run -a -s "-screen 0 1366x768x24" python tests/qt/screens.py OUT NAME [PATH] [--calibrate]
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QApplication

from ccdgui.app import _wait
from ccdgui.model.simulate import SimParams
from ccdgui.qt.main_window import MainWindow


def settle(app, seconds: float = 0.5) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)


def rect(widget) -> list[int]:
    top_left = widget.mapToGlobal(widget.rect().topLeft())
    return [top_left.x(), top_left.y(), widget.width(), widget.height()]


def main(out: Path, name: str, path: str | None, calibrate: bool) -> int:
    app = QApplication(["ccdgui"])
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(sim=SimParams(nx=1000, ny=1000), settings=settings)
        window.ask_before_discarding = False
        window.show()
        settle(app)
        if path:
            window.open_paths([path])
        else:
            window.simulate()
        _wait(app, window)
        if calibrate:
            window.calibrate()
            _wait(app, window)
        settle(app, 1.5)
        window.grab().save(str(out / f"{name}.png"))
        app.primaryScreen().grabWindow(0).save(str(out / f"{name}-screen.png"))
        screen = app.primaryScreen().availableGeometry()
        report = {"screen": [screen.x(), screen.y(), screen.width(), screen.height()],
                  "window": [window.frameGeometry().x(), window.frameGeometry().y(),
                             window.frameGeometry().width(), window.frameGeometry().height()],
                  "library": rect(window.library_dock), "parameters": rect(window.params_dock),
                  "notes_visible": window.notes_dock.isVisible(), "status": rect(window.statusBar()),
                  "calibrate_button": rect(window.params.calibrate_button),
                  "cancel_button": rect(window.cancel_button), "histogram": rect(window.histogram),
                  "raw_view": rect(window.raw_view), "calibrated": len(window.calibrated),
                  "notes": [n.text for n in window.notes.notes]}
        print(json.dumps(report))
        window.close()
    return 0


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    sys.exit(main(Path(args[0]), args[1], args[2] if len(args) > 2 else None, "--calibrate" in sys.argv))
