"""Jobs that really stop: one worker at a time, cancel within half a second, close within a second."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PyQt6.QtCore import QTimer

from ccdgui.model import masks
from ccdgui.model.progress import Progress
from ccdgui.model.simulate import SimParams, simulate_night
from ccdgui.qt.workers import JobRunner

from .conftest import wait_idle


class Probe:
    """Samples, every 5 ms of the GUI event loop, the runner's live workers and the loop's longest gap."""

    def __init__(self, runner: JobRunner, interval: int = 5) -> None:
        self.runner, self.most, self.longest = runner, 0, 0.0
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.timeout.connect(self.sample)
        self.timer.start(interval)

    def sample(self) -> None:
        now = time.perf_counter()
        self.longest, self.last = max(self.longest, now - self.last), now
        alive = sum(t.name.startswith("ccdgui-job-") for t in threading.enumerate())
        self.most = max(self.most, self.runner.live_threads(), alive)


def stubborn_job(log: list, name: str, seconds: float):
    """A job that computes for ``seconds`` in 20 ms steps, checking its token between steps."""
    def work(token):
        log.append((name, "start", time.perf_counter()))
        try:
            for i in range(int(seconds / 0.02)):
                time.sleep(0.02)
                token.check()
                if i % 10 == 0:
                    yield Progress(i * 0.02 / seconds, name)
        finally:
            log.append((name, "end", time.perf_counter()))
        return name
    return work


def test_a_job_started_after_a_cancel_waits_for_the_cancelled_worker(qtbot):
    runner = JobRunner()
    events, log = [], []
    runner.cancelling_changed.connect(lambda on: events.append(("cancelling", on)))
    runner.cancelled.connect(lambda: events.append(("cancelled",)))
    runner.finished.connect(lambda result: events.append(("finished", result)))
    probe = Probe(runner)
    runner.start(stubborn_job(log, "first", 10))
    qtbot.waitUntil(lambda: bool(log), timeout=5000)
    runner.cancel()
    assert runner.cancelling and not runner.busy
    runner.start(stubborn_job(log, "second", 0.3))  # queued behind the first one's worker
    runner.start(stubborn_job(log, "third", 0.3))   # replaces it; "second" never runs
    assert runner.busy and runner.live_threads() == 1
    qtbot.waitUntil(lambda: ("finished", "third") in events, timeout=5000)
    probe.timer.stop()
    assert [(name, what) for name, what, _ in log] == [("first", "start"), ("first", "end"),
                                                       ("third", "start"), ("third", "end")]
    assert log[2][2] >= log[1][2]  # the third started after the first ended
    assert events == [("cancelled",), ("cancelling", True), ("cancelled",), ("cancelling", False),
                      ("finished", "third")]
    assert probe.most == 1 and probe.longest < 0.2
    assert runner.wait(2000) and runner.live_threads() == 0


def test_workers_are_daemon_threads_and_wait_is_bounded(qtbot):
    runner = JobRunner()
    log = []
    runner.start(stubborn_job(log, "long", 5))
    qtbot.waitUntil(lambda: bool(log), timeout=5000)
    job_threads = [t for t in threading.enumerate() if t.name.startswith("ccdgui-job-")]
    assert len(job_threads) == 1 and job_threads[0].daemon  # never holds up the process's exit
    started = time.perf_counter()
    assert not runner.wait(100)
    assert time.perf_counter() - started < 0.3
    runner.cancel()
    assert runner.wait(1000) and runner.live_threads() == 0


def test_cancel_then_calibrate_never_runs_two_workers_and_the_gui_keeps_ticking(qtbot, settings):
    """Cancel during L.A.Cosmic cleaning of a 1500² light, Calibrate at once: the second calibration
    starts only when the first worker has stopped (within 0.5 s), and a 20 ms timer never waits
    200 ms meanwhile."""
    pytest.importorskip("astroscrappy")
    from ccdgui.qt.main_window import MainWindow

    win = MainWindow(settings=settings)
    win.ask_before_discarding = False
    qtbot.addWidget(win)
    win.show()
    night = simulate_night(SimParams(nx=1500, ny=1500, n_bias=1, n_dark=1, n_flat=1, n_light=1, seed=4))
    win._set_session(night.frames, [])
    win.recipe.cosmic_rays = "lacosmic"
    cleaning = threading.Event()
    original = masks.clean_cosmic_rays

    def clean_cosmic_rays(*args, **kwargs):
        cleaning.set()
        return original(*args, **kwargs)

    probe = Probe(win.runner, interval=20)
    try:
        masks.clean_cosmic_rays = clean_cosmic_rays
        win.calibrate()
        qtbot.waitUntil(cleaning.is_set, timeout=60000)
        qtbot.wait(300)
        win.cancel_button.click()
        cancelled = time.perf_counter()
        assert win.runner.cancelling and win.cancel_button.text() == "Cancelling…"
        assert "Cancelling calibrate" in win.statusBar().currentMessage()
        win.calibrate()
        qtbot.waitUntil(lambda: not win.runner.cancelling, timeout=5000)
        stopped = time.perf_counter() - cancelled
        wait_idle(qtbot, win, timeout=120000)
    finally:
        masks.clean_cosmic_rays = original
    probe.timer.stop()
    print(f"cancel stopped the worker in {stopped * 1000:.0f} ms; longest event-loop gap "
          f"{probe.longest * 1000:.0f} ms")
    assert stopped < 0.5
    assert probe.most == 1
    assert probe.longest < 0.2
    assert len(win.calibrated) == 1
    win.close()


def test_closing_the_window_during_cosmic_ray_cleaning_exits_within_a_second(tmp_path):
    pytest.importorskip("astroscrappy")
    script = Path(__file__).with_name("close_during_job.py")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    process = subprocess.Popen([sys.executable, str(script), "2048", str(tmp_path / "settings.ini")],
                               stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parents[2])
    out, _ = process.communicate(timeout=600)
    exited = time.time()
    report = json.loads(out.splitlines()[0])
    assert "failed" not in report, report
    exited -= report["began"]
    print(f"close took {report['closed_in'] * 1000:.0f} ms, the process ended {exited * 1000:.0f} ms "
          "after the close began")
    assert report["cleaning"] and process.returncode == 0
    assert report["closed_in"] < 1.0 and report["live"] == 0
    assert exited < 1.0


@pytest.mark.parametrize("error, traceback_expected", [
    ("output", False),   # a full folder, an unreachable cluster: said in the window, one line
    ("bug", True),       # anything else is a bug: its traceback goes to the terminal for the report
])
def test_a_failed_job_is_one_line_and_only_a_bug_prints_a_traceback(qtbot, capfd, error, traceback_expected):
    from ccdgui.model.execute import OutputError

    def work(token):
        yield Progress(0.1, "working")
        if error == "output":
            raise OutputError("cannot write into /full: no space left on device")
        raise KeyError("a bug")

    runner = JobRunner()
    failed = []
    runner.failed.connect(failed.append)
    runner.start(work)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    runner.wait(5000)
    assert "\n" not in failed[0]
    assert ("Traceback" in capfd.readouterr().err) is traceback_expected
