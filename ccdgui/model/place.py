"""Where a run executes: this computer (the embedded engine) or a Dask cluster (``model.cluster``).

A place is a string: ``""`` for this computer, ``local:N`` for a local cluster of N worker processes that
ccdgui starts and stops, or a scheduler address ``tcp://host:port``. This module only names and checks
places (it imports neither Dask nor Qt); :class:`model.cluster.ClusterEngine` connects to them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .frame import Frame

HERE = ""
DEFAULT_PORT = 8786  # Dask's scheduler port
_HOST_PORT = re.compile(r"^(?:(tcp|tls|ucx|inproc)://)?([A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?/?$")


def parse_place(text: str | None) -> str:
    """The canonical place for what a user typed; ValueError (one line) for something else.

    ``""``/``here``/``local`` mean this computer; ``local:N`` a local cluster (1 ≤ N ≤ 256);
    ``host``, ``host:port`` and ``tcp://host:port`` a scheduler (port 8786 when left out).
    """
    text = (text or "").strip()
    if text.lower() in ("", "here", "local", "this computer"):
        return HERE
    if text.lower().startswith("local:"):
        count = text.split(":", 1)[1].strip()
        if not count.isdigit() or not 1 <= int(count) <= 256:
            raise ValueError(f"{text!r}: use local:N with N from 1 to 256 worker processes")
        return f"local:{int(count)}"
    match = _HOST_PORT.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a scheduler address: use tcp://host:port, host:port or local:N")
    scheme, host, port = match.group(1) or "tcp", match.group(2), match.group(3)
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: port {port} is out of range (1–65535)")
    return f"{scheme}://{host}:{port or DEFAULT_PORT}"


def describe_place(place: str) -> str:
    """A few words for the window's status bar: where Calibrate will run."""
    if place == HERE:
        return "this computer"
    if place.startswith("local:"):
        count = int(place.split(":", 1)[1])
        return f"a local Dask cluster of {count} worker process{'es' if count != 1 else ''}"
    return f"the Dask cluster at {place}"


def frames_not_in_files(frames: Sequence[Frame]) -> list[str]:
    """Names of the frames that live only in memory (a simulated night): a cluster cannot read them."""
    return [frame.name for frame in frames if frame.path is None]


def why_not_on_cluster(frames: Sequence[Frame], place: str) -> str | None:
    """One line saying why these frames cannot be reduced at ``place``; None when they can."""
    if place == HERE:
        return None
    in_memory = frames_not_in_files(frames)
    if not in_memory:
        return None
    if len(in_memory) == len(frames):
        what = "this night is simulated and lives only in this window's memory"
    else:
        what = f"{len(in_memory)} frame(s) ({', '.join(in_memory[:3])}{'…' if len(in_memory) > 3 else ''}) " \
               "live only in this window's memory"
    return (f"{what}; the workers of {describe_place(place)} read frames from files. Write the night with "
            "`ccdgui simulate OUTDIR` and open that folder, or choose Run ▸ Where to run… ▸ This computer")
