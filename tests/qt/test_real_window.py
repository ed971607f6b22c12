"""One real X11 window under Xvfb (not the offscreen platform), with a screenshot to look at."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.xvfb


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb (xvfb-run) is not installed")
def test_main_window_in_a_real_x_window(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"
    script = Path(__file__).with_name("real_window.py")
    done = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1920x1200x24", sys.executable, str(script),
                           str(tmp_path)], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "calibrated 2" in done.stdout
    shot = Image.open(tmp_path / "main_window.png")
    assert shot.size == (1600, 1000)
    colours = np.unique(np.asarray(shot.convert("L").resize((200, 125)))).size
    assert colours > 50  # images and text, not a blank window
    target = os.environ.get("CCDGUI_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "main_window.png", Path(target) / "main_window.png")
        shutil.copy(tmp_path / "screen.png", Path(target) / "screen.png")
