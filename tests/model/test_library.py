"""Classification of frames from header words, file names and exposure."""

import pytest
from astropy.io import fits

from ccdgui.model.frame import FrameKind
from ccdgui.model.library import classify, kind_from_word


@pytest.mark.parametrize("word, kind", [
    ("Bias Frame", FrameKind.BIAS), ("zero", FrameKind.BIAS), ("BIAS", FrameKind.BIAS),
    ("Bias Frame          ", FrameKind.BIAS), ("Dark Frame", FrameKind.DARK), ("dark", FrameKind.DARK),
    ("Flat Field", FrameKind.FLAT), ("flat", FrameKind.FLAT), ("Light Frame", FrameKind.LIGHT),
    ("object", FrameKind.LIGHT), ("science", FrameKind.LIGHT), ("Light", FrameKind.LIGHT),
    ("MASTER BIAS", FrameKind.MASTER_BIAS), ("EXT", None), ("", None),
])
def test_header_words(word, kind):
    assert kind_from_word(word) is kind


def header(**cards):
    h = fits.Header()
    for key, value in cards.items():
        h[key] = value
    return h


def test_header_wins_and_is_not_a_guess():
    assert classify(header(IMAGETYP="Dark Frame"), "bias_001.fits") == (FrameKind.DARK, False)
    assert classify(header(OBSTYPE="zero"), "x.fits") == (FrameKind.BIAS, False)


def test_flat_labelled_light_by_ccdsoft_is_a_flat():
    assert classify(header(IMAGETYP="Light Frame         "), "flat-expos23s-Neg5-Vis.00000000.FIT") == (
        FrameKind.FLAT, True)


def test_guesses_from_name_and_exposure():
    assert classify(header(EXPTIME=3.0), "calib-001-dark03.fit") == (FrameKind.DARK, True)
    assert classify(header(), "d-L2-sci-hg-240.fits") == (FrameKind.UNKNOWN, True)  # no metadata at all
    assert classify(header(EXPTIME=0.0), "frame_001.fits") == (FrameKind.BIAS, True)
    assert classify(header(EXPTIME=10.0), "neon-on-dome.fit") == (FrameKind.UNKNOWN, True)
