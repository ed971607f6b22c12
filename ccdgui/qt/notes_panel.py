"""The Notes panel: every plan note, header warning, quarantine reason and run problem, one line each;
clicking a line with a frame selects that frame."""

from __future__ import annotations

from dataclasses import dataclass

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from ..model.frame import Frame, FrameKind
from ..model.plan import Plan


@dataclass(frozen=True)
class Note:
    source: str   # plan | header | quarantine | run
    frame: str    # the frame's name ("" for a note about the whole night)
    text: str


def collect_notes(plan: Plan | None, frames: list[Frame], quarantined: list,
                  problems: list[str] | None = None) -> list[Note]:
    """The session's notes, each once: quarantine reasons, per-light plan notes (why a light is skipped
    or misses a master), the plan's own notes, frames' header warnings, and the last run's problems."""
    notes: list[Note] = []
    for problem in quarantined:
        notes.append(Note("quarantine", problem.path.name, f"not usable: {problem.reason}"))
    if plan is not None:
        for steps in plan.lights:
            notes.extend(Note("plan", steps.frame.name, note) for note in steps.notes)
            notes.extend(Note("plan", steps.frame.name, choice.describe())  # masters worth a second look
                         for choice in steps.choices.values() if choice.verdict != "exact" or choice.by_user)
        notes.extend(Note("plan", *_split_frame(note, frames)) for note in plan.notes)
    for frame in frames:
        if frame.kind is not FrameKind.CALIBRATED:
            notes.extend(Note("header", frame.name, note) for note in frame.notes)
    notes.extend(Note("run", *_split_frame(text, frames)) for text in problems or [])
    seen: set[tuple[str, str]] = set()
    unique = []
    for note in notes:  # a run repeats the plan's notes: each (frame, text) is listed once
        key = (note.frame, note.text)
        if key not in seen:
            seen.add(key)
            unique.append(note)
    return unique


def _split_frame(text: str, frames: list[Frame]) -> tuple[str, str]:
    """(frame, rest) for a note that starts with a frame's name ('x.fits: …', 'light x.fits: …',
    'flat x.fits: …'), else ('', text)."""
    for frame in frames:
        for prefix in (f"{frame.name}: ", f"light {frame.name}: ", f"flat {frame.name}: "):
            if text.startswith(prefix):
                return frame.name, text[len(prefix):]
    return "", text


class NotesPanel(QListWidget):
    """One entry per note, "frame: note", wrapped to the dock's width; emits ``frame_requested(name)``
    when a note about a frame is clicked."""

    frame_requested = pyqtSignal(str)
    SOURCES = {"quarantine": "quarantined", "plan": "plan", "header": "header", "run": "run"}

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setUniformItemSizes(False)
        self.setAlternatingRowColors(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.itemClicked.connect(self._on_clicked)
        self.itemActivated.connect(self._on_clicked)
        self.setToolTip("Every plan note, header warning, quarantine reason and run problem; click a note "
                        "to show its frame")
        self.notes: list[Note] = []

    def show_notes(self, notes: list[Note]) -> None:
        self.notes = list(notes)
        self.clear()
        for note in notes:
            item = QListWidgetItem(f"{note.frame or 'night'}: {note.text}")
            item.setToolTip(f"{self.SOURCES.get(note.source, note.source)}: {note.text}")
            item.setData(Qt.ItemDataRole.UserRole, note.frame)
            self.addItem(item)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        if name:
            self.frame_requested.emit(name)
