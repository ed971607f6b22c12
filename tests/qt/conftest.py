"""Qt tests run offscreen (CI has no display), with settings in a temporary folder, and close every
window and worker they start."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PyQt6.QtCore import QSettings  # noqa: E402

from ccdgui.model.simulate import SimParams  # noqa: E402


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "ccdgui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from ccdgui.qt.main_window import MainWindow

    win = MainWindow(sim=SimParams(nx=256, ny=192, n_bias=4, n_dark=4, n_flat=3, n_light=2, seed=3),
                     settings=settings)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.runner.cancel()
    win.runner.wait(10000)
    win.close()


def wait_idle(qtbot, win, timeout=60000):
    """Wait until the window's job runner has finished its job."""
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=timeout)
    qtbot.wait(20)
