"""RA/Dec under a pixel equals astropy's pixel_to_world (SIP included) to 0.01″; the compass points
north and east; headers that lie give None, never an exception."""

import math
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from ccdgui.model.wcsinfo import FrameWCS, SkyPosition, compass_at, sky_at


@pytest.fixture
def sip_header(shared_data):
    return fits.getheader(shared_data("odd_singles/sip-wcs.fit"))


@pytest.mark.parametrize("x, y", [(1, 1), (37.5, 25), (100, 50), (73, 8)])
def test_sip_positions_equal_astropy_to_a_hundredth_of_an_arcsecond(sip_header, x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = WCS(sip_header).pixel_to_world(x - 1, y - 1)  # astropy counts from 0, FITS from 1
    found = sky_at(sip_header, x, y)
    assert found.dec == pytest.approx(expected.dec.deg, abs=0.01 / 3600)
    along_ra = (found.ra - expected.ra.deg) * math.cos(math.radians(found.dec))
    assert along_ra == pytest.approx(0, abs=0.01 / 3600)
    assert found.ra_hms == expected.ra.to_string(unit="hourangle", sep=":", precision=3, pad=True)
    assert found.dec_dms == expected.dec.to_string(sep=":", precision=2, alwayssign=True, pad=True)


def test_the_sip_terms_are_used(sip_header):
    plain = sip_header.copy()
    for key in [k for k in plain if k[:2] in ("A_", "B_")]:
        del plain[key]
    plain["CTYPE1"], plain["CTYPE2"] = "RA---TAN", "DEC--TAN"
    with_sip, without = sky_at(sip_header, 3000, 2000), sky_at(plain, 3000, 2000)  # the full chip's corner
    assert abs(with_sip.dec - without.dec) * 3600 > 1.0


def test_compass_of_a_north_up_east_left_frame():
    header = fits.Header({"NAXIS": 2, "NAXIS1": 100, "NAXIS2": 100, "CTYPE1": "RA---TAN",
                          "CTYPE2": "DEC--TAN",
                          "CRVAL1": 10.0, "CRVAL2": 20.0, "CRPIX1": 50.0, "CRPIX2": 50.0,
                          "CDELT1": -1e-4, "CDELT2": 1e-4})
    compass = compass_at(header, 50, 50)
    assert np.allclose(compass.north, (0, 1), atol=1e-3) and np.allclose(compass.east, (-1, 0), atol=1e-3)


def test_sexagesimal_formatting_rounds_into_the_next_unit():
    assert SkyPosition(359.9999999, -0.0000001, "icrs").ra_hms == "00:00:00.000"
    assert SkyPosition(15.0, -30.5, "icrs").text() == \
        "RA 01:00:00.000 Dec -30:30:00.00 (15.000000°, -30.500000°)"
    assert SkyPosition(1.0, -0.0000001, "icrs").dec_dms == "+00:00:00.00"


@pytest.mark.parametrize("cards", [
    {},
    {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": 0.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.0},
    {"CTYPE1": "RA---XYZ", "CTYPE2": "DEC--XYZ", "CRVAL1": 1.0},
    {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CRVAL1": 1.0},
    {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL2": 1e30, "CDELT1": "abc"},
])
def test_headers_that_lie_give_none(cards):
    header = fits.Header(cards)
    assert sky_at(header, 1, 1) is None and compass_at(header, 1, 1) is None
    assert FrameWCS.from_header(header) is None


def test_not_a_header_gives_none():
    assert sky_at(None, 1, 1) is None and sky_at("nonsense", 1, 1) is None
