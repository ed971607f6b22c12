"""Long work off the GUI thread: a model generator runs in a worker thread, reports progress, can be
cancelled, and a result from a superseded job is dropped.

A job is a function ``work(cancel) -> generator`` that yields :class:`~ccdgui.model.progress.Progress`
and returns its result; the same generators drive the command line.

Workers are daemon threads (a worker never holds up the process's exit), and at most one runs per
runner: a job started while a cancelled one is still winding down waits for it to end (the model checks
its token at least every ~0.2 s, so that is short), without blocking the GUI thread.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Generator

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from ..model.execute import OutputError
from ..model.inspect import InspectError
from ..model.masterlib import LibraryError
from ..model.progress import Cancelled, CancelToken, Progress
from ..model.provenance import RecordError
from ..model.rows import FrameError

#: Errors the model raises with a one-line message for the user (a full folder, an unreachable cluster, a
#: frame that cannot be read…): said in the window, not dumped as a traceback on the terminal.
EXPECTED_ERRORS = (OutputError, FrameError, RecordError, LibraryError, InspectError)

Work = Callable[[CancelToken], Generator[Progress, None, object]]


class _Runner(QObject):
    """One job on one daemon thread; its signals reach the GUI thread queued. ``ended`` comes last."""

    progress = pyqtSignal(int, float, str)
    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)
    ended = pyqtSignal(object)

    def __init__(self, generation: int, work: Work, token: CancelToken) -> None:
        super().__init__()
        self.generation, self.work, self.token = generation, work, token
        self.thread = threading.Thread(target=self.run, name=f"ccdgui-job-{generation}", daemon=True)

    def run(self) -> None:
        try:
            generator = self.work(self.token)
            while True:
                try:
                    step = next(generator)
                except StopIteration as stop:
                    self.finished.emit(self.generation, stop.value)
                    return
                if self.token.cancelled:
                    generator.close()
                    raise Cancelled()
                self.progress.emit(self.generation, step.fraction, step.message)
        except Cancelled:
            pass  # cancel() already told the listeners
        except Exception as exc:  # every error reaches the user as a message, never a crash
            if not isinstance(exc, EXPECTED_ERRORS):
                traceback.print_exc()  # a bug: its traceback, for the report
            self.failed.emit(self.generation, f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            self.ended.emit(self)


class JobRunner(QObject):
    """Runs one job at a time per runner; starting a job cancels the previous one and drops its result.
    The new job's thread starts only once the cancelled one's has ended.

    Signals carry no generation: only the current job's events get through. ``cancelling_changed``
    is True while a cancelled job's worker is still running, False once none is.
    """

    progress = pyqtSignal(float, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    busy_changed = pyqtSignal(bool)
    cancelling_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self._token: CancelToken | None = None
        self._runners: list[_Runner] = []       # workers whose thread has not ended
        self._queued: _Runner | None = None     # the current job, waiting for a cancelled one to end

    @property
    def busy(self) -> bool:
        """Whether a job (running or waiting to start) is current."""
        return self._token is not None

    @property
    def cancelling(self) -> bool:
        """Whether a cancelled job's worker is still running."""
        return any(r.token.cancelled for r in self._runners)

    def live_threads(self) -> int:
        """How many worker threads of this runner are alive now."""
        return sum(r.thread.is_alive() for r in self._runners)

    def start(self, work: Work) -> int:
        """Start ``work`` (cancelling any current job) as soon as no other worker runs; returns its
        generation."""
        self.cancel()
        self.generation += 1
        token = CancelToken()
        self._token = token
        runner = _Runner(self.generation, work, token)
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.ended.connect(self._on_ended)
        self._queued = runner
        self.busy_changed.emit(True)
        self._launch_queued()
        return self.generation

    def cancel(self) -> None:
        """Cancel the current job: its listeners hear ``cancelled`` now, its worker stops at its next
        check (``cancelling_changed`` tells when it has)."""
        if self._token is None:
            return
        was_cancelling = self.cancelling
        self._token.cancel()
        self._token = None
        self._queued = None  # never started: nothing to wait for
        self.busy_changed.emit(False)
        self.cancelled.emit()
        if self.cancelling and not was_cancelling:
            self.cancelling_changed.emit(True)

    def wait(self, msecs: int = 10000) -> bool:
        """Block until every worker of this runner has ended, at most ``msecs`` ms in all (for shutdown
        and tests); whether they all have. A queued job is started (and waited for) on the way."""
        deadline = time.monotonic() + msecs / 1000
        self._launch_queued()
        while self._runners:
            runner = self._runners[0]
            runner.thread.join(max(0.0, deadline - time.monotonic()))
            if runner.thread.is_alive():
                return False
            self._on_ended(runner)  # forgotten now (its queued ``ended`` finds it gone); the next starts
        return True

    def _launch_queued(self) -> None:
        if self._queued is not None and not self._runners:
            runner, self._queued = self._queued, None
            self._runners.append(runner)
            runner.thread.start()

    def _current(self, generation: int) -> bool:
        return generation == self.generation and self._token is not None

    def _on_progress(self, generation: int, fraction: float, message: str) -> None:
        if self._current(generation):
            self.progress.emit(fraction, message)

    def _on_finished(self, generation: int, result: object) -> None:
        if self._current(generation):
            self._token = None
            self.busy_changed.emit(False)
            self.finished.emit(result)

    def _on_failed(self, generation: int, message: str) -> None:
        if self._current(generation):
            self._token = None
            self.busy_changed.emit(False)
            self.failed.emit(message)

    def _on_ended(self, runner: _Runner) -> None:
        """A worker has sent its last signal: once its thread has ended, forget it and start the queued
        job (polled, never waited for: the GUI thread does not block)."""
        if runner not in self._runners:
            return
        if runner.thread.is_alive():
            QTimer.singleShot(2, lambda: self._on_ended(runner))
            return
        was_cancelling = self.cancelling
        self._runners.remove(runner)
        if was_cancelling and not self.cancelling:
            self.cancelling_changed.emit(False)
        self._launch_queued()
