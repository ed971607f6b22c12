"""Helpers shared by the command-line tests."""

import shutil
from pathlib import Path

from ccdgui.cli import main


def simulated_folder(tmp_path: Path, args: list[str]) -> Path:
    """A night written by ``ccdgui simulate`` with ``args``, without its truth folder (inputs only)."""
    folder = tmp_path / "night"
    assert main(["simulate", str(folder), *args]) == 0
    shutil.rmtree(folder / "truth")
    return folder


def one_line_error(capsys) -> str:
    """The last line written to stderr, checked to be a message and not a traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]
