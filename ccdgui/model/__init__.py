"""Qt-free model layer: frames, FITS I/O, simulation, combining, calibration, pipeline, display maths.

Nothing under this package may import Qt or pyqtgraph (``tests/model/test_no_qt.py`` enforces it).
Importing the package itself is cheap: ``Frame`` and ``FrameKind`` (and astropy with them) load on
first use, so light modules such as ``files`` can start work before the rest is imported.
"""

__all__ = ["Frame", "FrameKind"]


def __getattr__(name: str):
    if name in __all__:
        from . import frame

        return getattr(frame, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
