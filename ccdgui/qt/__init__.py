"""Thin PyQt6 / pyqtgraph widgets bound to the model's state objects. No science lives here."""
