"""Widgets hold no science: the Qt layer calls the model for every number it shows."""

import re
from pathlib import Path

QT_SOURCES = sorted((Path(__file__).resolve().parents[2] / "ccdgui" / "qt").glob("*.py"))
FORBIDDEN = re.compile(r"np\.(median|mean|std|percentile|histogram|nanmedian|sort|partition)\b|"
                       r"sigma_clip\(|mad_std\(|from \.\.model\.(combine|calibrate) import")


def test_no_statistics_or_calibration_in_widgets():
    assert QT_SOURCES
    offenders = [f"{path.name}:{n}: {line.strip()}" for path in QT_SOURCES
                 for n, line in enumerate(path.read_text().splitlines(), start=1) if FORBIDDEN.search(line)]
    assert offenders == []
