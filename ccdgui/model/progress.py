"""Long work as generators: they yield :class:`Progress`, honour a :class:`CancelToken` and return a
result. The window runs them on a worker thread, the command line in the foreground."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised inside a job when its cancel token is set."""


class CancelToken:
    """A thread-safe flag the GUI or CLI sets to stop a running job at the next check."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass
class Progress:
    fraction: float   # 0..1 of the whole job
    message: str


def drive(generator: Generator[Progress, None, T],
          report: Callable[[float, str], None] | None = None) -> T:
    """Run a job to its end, passing each progress report to ``report``; returns the job's result."""
    try:
        while True:
            step = next(generator)
            if report is not None:
                report(step.fraction, step.message)
    except StopIteration as stop:
        return stop.value
