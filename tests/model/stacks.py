"""Shared checks for the combine engine's two paths."""

import numpy as np

from ccdgui.model import combine as engine
from ccdgui.model import fitsio
from ccdgui.model.combine import CombineOptions


def assert_file_combines_equal_on_both_paths(paths, monkeypatch, band_bytes: int, scales) -> list:
    """Combining lazy frames of ``paths`` gives the same data and counts through the compiled kernel as
    through the numpy path, for average + sigma, plain median and min/max rejection; returns the
    compiled results."""
    monkeypatch.setattr(engine, "BAND_BYTES", band_bytes)

    def sources():
        frames, problems = fitsio.read_frames(paths, lazy=True)
        assert not problems and all(f.stack_source().decode is not None for f in frames)
        return [f.stack_source() for f in frames]

    options = [CombineOptions(), CombineOptions(method="median", reject="none"),
               CombineOptions(reject="minmax")]
    compiled = [engine.combine(sources(), o, scales) for o in options]
    monkeypatch.setattr(engine, "_stack", None)
    for o, result in zip(options, compiled, strict=True):
        expected = engine.combine(sources(), o, scales)
        np.testing.assert_array_equal(result.data, expected.data, err_msg=str(o))
        np.testing.assert_array_equal(result.count, expected.count, err_msg=str(o))
    return compiled
