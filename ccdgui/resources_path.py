"""Where the application's icons live: the ``ccdgui.resources`` package (the project's top-level
``resources/`` folder, installed under that name), also inside a frozen bundle."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_path(relative: str) -> Path | None:
    """The file ``relative`` inside the resources, or None when it is not there."""
    try:
        path = Path(str(resources.files("ccdgui.resources").joinpath(relative)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None
