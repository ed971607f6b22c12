"""Qt-free model layer: frames, FITS I/O, simulation, combining, calibration, pipeline, display maths.

Nothing under this package may import Qt or pyqtgraph (``tests/model/test_no_qt.py`` enforces it).
"""

from .frame import Frame, FrameKind

__all__ = ["Frame", "FrameKind"]
