"""Long work off the GUI thread: a model generator runs in a QThread, reports progress, can be cancelled,
and a result from a superseded job is dropped.

A job is a function ``work(cancel) -> generator`` that yields :class:`~ccdgui.model.pipeline.Progress`
and returns its result; the same generators drive the command line.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Generator

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from ..model.pipeline import Cancelled, CancelToken, Progress

Work = Callable[[CancelToken], Generator[Progress, None, object]]


class _Runner(QObject):
    progress = pyqtSignal(int, float, str)
    finished = pyqtSignal(int, object)
    failed = pyqtSignal(int, str)
    cancelled = pyqtSignal(int)

    def __init__(self, generation: int, work: Work, token: CancelToken) -> None:
        super().__init__()
        self.generation, self.work, self.token = generation, work, token

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
            self.cancelled.emit(self.generation)
        except Exception as exc:  # every error reaches the user as a message, never a crash
            traceback.print_exc()
            self.failed.emit(self.generation, f"{type(exc).__name__}: {exc}".splitlines()[0])


class JobRunner(QObject):
    """Runs one job at a time per runner; starting a job cancels the previous one and drops its result.

    Signals carry no generation: only the current job's events get through.
    """

    progress = pyqtSignal(float, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()
    busy_changed = pyqtSignal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = 0
        self._token: CancelToken | None = None
        self._threads: list[tuple[QThread, _Runner]] = []

    @property
    def busy(self) -> bool:
        return self._token is not None

    def start(self, work: Work) -> int:
        """Start ``work`` in a new thread (cancelling any current job); returns its generation."""
        self.cancel()
        self.generation += 1
        token = CancelToken()
        self._token = token
        thread = QThread()
        runner = _Runner(self.generation, work, token)
        runner.moveToThread(thread)
        thread.started.connect(runner.run)
        runner.progress.connect(self._on_progress)
        runner.finished.connect(self._on_finished)
        runner.failed.connect(self._on_failed)
        runner.cancelled.connect(self._on_cancelled)
        for signal in (runner.finished, runner.failed, runner.cancelled):
            signal.connect(thread.quit)
        thread.finished.connect(lambda: self._forget(thread))
        self._threads.append((thread, runner))
        thread.start()
        self.busy_changed.emit(True)
        return self.generation

    def cancel(self) -> None:
        if self._token is not None:
            self._token.cancel()
            self._token = None
            self.busy_changed.emit(False)
            self.cancelled.emit()

    def wait(self, msecs: int = 10000) -> None:
        """Block until every thread this runner started has ended (for shutdown and tests)."""
        for thread, _ in list(self._threads):
            thread.wait(msecs)

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

    def _on_cancelled(self, generation: int) -> None:
        pass  # cancel() already told the listeners

    def _forget(self, thread: QThread) -> None:
        self._threads = [(t, r) for t, r in self._threads if t is not thread]
        thread.deleteLater()
