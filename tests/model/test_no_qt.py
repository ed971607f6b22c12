"""The model layer must never import Qt: it runs headless, in scripts and in the CLI."""

import pkgutil
import subprocess
import sys

import ccdgui.model


def test_model_modules_do_not_import_qt():
    names = [f"ccdgui.model.{m.name}" for m in pkgutil.iter_modules(ccdgui.model.__path__)]
    assert "ccdgui.model.execute" in names and "ccdgui.model.combine" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "import ccdgui.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PyQt6', 'PyQt5', 'PySide6', 'PySide2', 'pyqtgraph', 'qtpy', 'superqt', 'matplotlib'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"model imported GUI modules: {out.stdout}"
