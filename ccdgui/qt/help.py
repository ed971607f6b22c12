"""Help ▸ User guide (F1): the bundled guide (``resources/guide.html``), shown offline in a dialog, with
the recipe options' table built from the recipe schema so it always matches the dock."""

from __future__ import annotations

import html

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from ..model.recipe import OPTIONS
from ..resources_path import resource_path

OPTIONS_MARK = "<!-- recipe-options -->"


def options_table() -> str:
    """The recipe options as an HTML table: name, default, allowed values, meaning."""
    rows = "".join(
        f"<tr><td><b>{html.escape(o.label or o.name)}</b><br><code>{html.escape(o.name)}</code></td>"
        f"<td>{html.escape(o.default_text())}</td><td>{html.escape(o.allowed())}</td>"
        f"<td>{html.escape(o.help)}</td></tr>" for o in OPTIONS if o.group)
    return ("<table border='1' cellspacing='0' cellpadding='3'><tr><th>Option</th><th>Default</th>"
            f"<th>Allowed</th><th>Meaning</th></tr>{rows}</table>")


def guide_html() -> str:
    """The user guide's HTML with the options table filled in (a short note if the file is missing)."""
    path = resource_path("guide.html")
    text = path.read_text(encoding="utf-8") if path is not None else (
        "<h1>ccdgui</h1><p>The user guide is not installed (resources/guide.html).</p>" + OPTIONS_MARK)
    return text.replace(OPTIONS_MARK, options_table())


class GuideDialog(QDialog):
    """A non-modal window showing the guide; links to other files are not followed (offline)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("ccdgui user guide")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(guide_html())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        width = 820 if screen is None else min(820, screen.width() - 40)
        height = 700 if screen is None else min(700, screen.height() - 60)
        self.resize(width, height)
