"""Render ``station.svg`` to ``station.png`` (256 px) and ``station.ico`` (Windows, 16-256 px).

Run from the repository's venv after changing the SVG: ``python resources/make_icons.py``. The SVG is
the source; the PNG and ICO are committed so a build needs neither Qt's SVG module nor Pillow.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ICO_SIZES = [16, 24, 32, 48, 64, 128, 256]


def render(svg: Path, size: int):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    renderer.render(painter)
    painter.end()
    return image


def main() -> int:
    svg = HERE / "station.svg"
    png = HERE / "station.png"
    if not render(svg, 256).save(str(png)):
        raise SystemExit(f"could not write {png}")
    from PIL import Image

    Image.open(png).save(HERE / "station.ico", sizes=[(s, s) for s in ICO_SIZES])
    print(f"wrote {png.name} and station.ico")
    return 0


if __name__ == "__main__":
    sys.exit(main())
