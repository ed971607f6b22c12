"""Two-way bindings between a field of an evented model object (psygnal) and a Qt widget.

Each binding sets the widget from the field, writes the field when the user edits the widget, and
updates the widget when code changes the field: exactly once, with no feedback loop (the widget's
signals are blocked while code updates it).
"""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox, QToolTip, QWidget


def _connect_model(model, name: str, widget: QWidget, show: Callable[[object], None]) -> None:
    def on_model_change(value) -> None:
        widget.blockSignals(True)
        try:
            show(value)
        finally:
            widget.blockSignals(False)

    getattr(model.events, name).connect(on_model_change)
    widget.destroyed.connect(lambda *_: getattr(model.events, name).disconnect(on_model_change))
    on_model_change(getattr(model, name))


def bind_spin(model, name: str, widget: QSpinBox | QDoubleSpinBox) -> None:
    """A spin box shows and edits a numeric field."""
    kind = type(getattr(model, name))
    _connect_model(model, name, widget, lambda v: widget.setValue(v))
    widget.valueChanged.connect(lambda v: setattr(model, name, kind(v)))


def bind_combo(model, name: str, widget: QComboBox) -> None:
    """A combo box whose items' data are the field's allowed string values. A value not among them is
    shown as an extra item "<value> (unknown)", never as another item."""
    allowed = widget.count()

    def show(value) -> None:
        while widget.count() > allowed:  # an unknown value shown before
            widget.removeItem(widget.count() - 1)
        index = widget.findData(value)
        if index < 0:
            widget.addItem(f"{value!r} (unknown)", value)
            index = widget.count() - 1
        widget.setCurrentIndex(index)

    _connect_model(model, name, widget, show)
    widget.currentIndexChanged.connect(lambda i: setattr(model, name, widget.itemData(i)))


def bind_check(model, name: str, widget: QCheckBox) -> None:
    _connect_model(model, name, widget, lambda v: widget.setChecked(bool(v)))
    widget.toggled.connect(lambda v: setattr(model, name, bool(v)))


def bind_text_tuple(model, name: str, widget: QLineEdit) -> None:
    """A line edit showing a tuple of strings as 'r, g'; an empty entry is refused (field unchanged)."""
    _connect_model(model, name, widget, lambda v: widget.setText(", ".join(v)))

    def commit() -> None:
        values = tuple(part.strip() for part in widget.text().split(",") if part.strip())
        if values:
            setattr(model, name, values)
        else:
            widget.setText(", ".join(getattr(model, name)))

    widget.editingFinished.connect(commit)


def bind_text(model, name: str, widget: QLineEdit, check: Callable[[str], str] | None = None) -> None:
    """A line edit for a string field; an entry ``check`` refuses (ValueError) is undone, the reason
    shown as a tool tip, the field unchanged."""
    _connect_model(model, name, widget, lambda v: widget.setText(str(v)))

    def commit() -> None:
        text = widget.text().strip()
        try:
            value = check(text) if check is not None else text
        except ValueError as exc:
            widget.setText(str(getattr(model, name)))
            QToolTip.showText(widget.mapToGlobal(widget.rect().bottomLeft()), str(exc), widget)
            return
        setattr(model, name, value)

    widget.editingFinished.connect(commit)


def bind_optional_spin(model, name: str, check: QCheckBox, spin: QDoubleSpinBox) -> None:
    """A number field that may be None: ``check`` on means the spin box's value, off means None."""
    def show(value) -> None:
        check.setChecked(value is not None)
        spin.setEnabled(value is not None)
        if value is not None:
            spin.setValue(value)

    def commit(*_) -> None:
        spin.setEnabled(check.isChecked())
        setattr(model, name, float(spin.value()) if check.isChecked() else None)

    def on_model_change(value) -> None:
        check.blockSignals(True)
        spin.blockSignals(True)
        try:
            show(value)
        finally:
            check.blockSignals(False)
            spin.blockSignals(False)

    getattr(model.events, name).connect(on_model_change)
    check.destroyed.connect(lambda *_: getattr(model.events, name).disconnect(on_model_change))
    on_model_change(getattr(model, name))
    check.toggled.connect(commit)
    spin.valueChanged.connect(commit)
