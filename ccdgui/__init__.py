"""ccdgui: inspect and calibrate astronomical CCD frames."""

__version__ = "0.1.0"
