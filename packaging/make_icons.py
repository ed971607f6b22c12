"""Render resources/ccdgui.svg into the platform icons the spec uses: ccdgui.png (Linux), ccdgui.ico
(Windows) and ccdgui.icns (macOS). Run once after changing the SVG:

    QT_QPA_PLATFORM=offscreen python packaging/make_icons.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def render(svg: Path, size: int):
    """The SVG drawn into a size × size RGBA Pillow image, through Qt's SVG renderer."""
    from PIL import Image
    from PyQt6.QtCore import QBuffer, QIODevice
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)  # Windows: Explorer, taskbar, title bar, at 100-200 % scaling
ICNS_SIZES = (32, 64, 128, 256, 512, 1024)  # macOS: 16 … 512 pt, each also at 2x (Retina)


def main() -> int:
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)  # noqa: F841 - Qt needs one for rendering
    svg = RESOURCES / "ccdgui.svg"
    # Every size is drawn from the SVG itself (sharper small icons than scaling one big bitmap down).
    rendered = {size: render(svg, size) for size in sorted({256, *ICO_SIZES, *ICNS_SIZES})}
    rendered[256].save(RESOURCES / "ccdgui.png")  # Linux .desktop files
    rendered[256].save(RESOURCES / "ccdgui.ico", sizes=[(s, s) for s in ICO_SIZES],
                       append_images=[rendered[s] for s in ICO_SIZES])
    rendered[1024].save(RESOURCES / "ccdgui.icns", append_images=[rendered[s] for s in ICNS_SIZES])
    for name in ("ccdgui.png", "ccdgui.ico", "ccdgui.icns"):
        print(f"{name}: {(RESOURCES / name).stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
