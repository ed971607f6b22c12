"""Memory of a whole reduction does not grow with the number of lights: each calibrated light is written
and dropped as soon as it is made, and the Result keeps only headers read back from the files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SIZE = 1024
FRAME_BYTES = SIZE * SIZE * 4  # one frame as float32: 4 MiB
#: What may legitimately grow with the lights: each one's input header in the plan and its output
#: header read back in the Result (about 40 KB a light, 1.4 MB for 35 more), and allocator noise.
TOLERANCE = 2 * 2**20
#: Runs of each night: the peak depends on how the two lights in flight (and the master flat being
#: written) happen to overlap, 109–111 MB here with the odd run at 114–119 MB; the least of two is stable.
REPEATS = 2


def run(command: list[str]) -> int:
    """Run a fresh Python child; its own peak RSS in bytes (ru_maxrss is in KiB on Linux)."""
    child = subprocess.Popen([sys.executable, *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    errors = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, errors[-2000:]
    return usage.ru_maxrss * 1024


def night_with(folder: Path, source: Path, lights: int) -> Path:
    """A night of ``source``'s calibration frames and ``lights`` lights (its lights under new names,
    hard-linked, so that the disk holds one copy)."""
    folder.mkdir()
    originals = sorted(source.glob("light*.fits"))
    for path in source.glob("*.fits"):
        if path not in originals:
            os.link(path, folder / path.name)
    for index in range(lights):
        os.link(originals[index % len(originals)], folder / f"light_{index:03d}.fits")
    return folder


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units and hard links as on Linux")
def test_peak_memory_does_not_grow_with_the_number_of_lights(tmp_path):
    source = tmp_path / "simulated"
    run(["-m", "ccdgui", "simulate", str(source), "--size", str(SIZE), str(SIZE), "--n-bias", "3",
         "--n-dark", "3", "--n-flat", "3", "--n-light", "5", "--seed", "3"])
    shutil.rmtree(source / "truth")
    peaks = {}
    for lights in (5, 40):
        night = night_with(tmp_path / f"night-{lights}", source, lights)
        out = tmp_path / f"out-{lights}"
        measured = []
        for _ in range(REPEATS):
            measured.append(run(["-m", "ccdgui", "reduce", str(night), str(out), "--quiet"]))
            assert len(list((out / "calibrated").glob("*.fits"))) == lights
            shutil.rmtree(out)  # keep the disk modest
        peaks[lights] = min(measured)
    growth = peaks[40] - peaks[5]
    assert growth < FRAME_BYTES + TOLERANCE, (
        f"peak RSS {peaks[5] / 2**20:.0f} MB with 5 lights, {peaks[40] / 2**20:.0f} MB with 40: "
        f"{growth / 2**20:.1f} MB more, over one frame ({FRAME_BYTES / 2**20:.0f} MB) + "
        f"{TOLERANCE / 2**20:.0f} MB")
