"""Run ▸ Where to run…: this computer, a local Dask cluster, or a scheduler's address (no science here)."""

from __future__ import annotations

import os

from PyQt6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..model.place import HERE, describe_place, parse_place

SETTINGS_KEY = "run/place"


class RunPlaceDialog(QDialog):
    """Choose where Calibrate runs; :meth:`place` is the canonical place string (``""`` = here)."""

    def __init__(self, place: str = HERE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Where to run")
        self.here = QRadioButton("This computer")
        self.here.setToolTip("The embedded engine: no extra packages, the frames may be simulated")
        self.local = QRadioButton("A local Dask cluster of")
        self.local.setToolTip("ccdgui starts worker processes on this computer for the run and stops them "
                              "after it (needs the optional package distributed)")
        self.workers = QSpinBox()
        self.workers.setRange(1, 256)
        self.workers.setValue(min(os.cpu_count() or 2, 8))
        self.workers.setSuffix(" worker processes")
        self.remote = QRadioButton("The Dask scheduler at")
        self.remote.setToolTip("A running `dask scheduler` with workers that read the frames and write the "
                               "output folder under the same paths as this computer (a shared filesystem)")
        self.address = QLineEdit()
        self.address.setPlaceholderText("tcp://head:8786")
        self.address.setToolTip("tcp://host:port, host:port (port 8786 by default)")
        self.group = QButtonGroup(self)
        for button in (self.here, self.local, self.remote):
            self.group.addButton(button)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        note = QLabel("Workers read the inputs and write the results under the same paths as this "
                      "computer. A simulated night lives in this window's memory and runs here only.")
        note.setWordWrap(True)
        grid = QGridLayout()
        grid.addWidget(self.here, 0, 0, 1, 2)
        grid.addWidget(self.local, 1, 0)
        grid.addWidget(self.workers, 1, 1)
        grid.addWidget(self.remote, 2, 0)
        grid.addWidget(self.address, 2, 1)
        standard = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(standard.Ok | standard.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(note)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.workers.valueChanged.connect(lambda *_: self.local.setChecked(True))
        self.address.textEdited.connect(lambda *_: self.remote.setChecked(True))
        self.set_place(place)

    def set_place(self, place: str) -> None:
        if place.startswith("local:"):
            self.workers.setValue(int(place.split(":", 1)[1]))
            self.local.setChecked(True)
        elif place:
            self.address.setText(place)
            self.remote.setChecked(True)
        else:
            self.here.setChecked(True)

    def place(self) -> str:
        """The chosen place; ValueError (one line) for an address that is not one."""
        if self.local.isChecked():
            return f"local:{self.workers.value()}"
        if self.remote.isChecked():
            if not self.address.text().strip():
                raise ValueError("type the scheduler's address, e.g. tcp://head:8786")
            return parse_place(self.address.text())
        return HERE

    def accept(self) -> None:  # an invalid address keeps the dialog open with the reason shown
        try:
            self.place()
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        super().accept()


def place_text(place: str) -> str:
    """The status bar's words for a place."""
    return f"Runs on {describe_place(place)}"
