"""Run every benchmark, each case in a fresh subprocess so that peak memory is its own.

    python -m benchmarks            # the full table (minutes: ccdproc is slow)
    python -m benchmarks --quick    # smaller stacks, for a smoke run

Prints one row per (work, tool): seconds (best of the repeats), peak RSS of the process, the ratio
against each peer measured in this run, and whether the result matches ccdgui's to 1e-5 relative.
These are measurements, not tests: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    # name: (frames, ny, nx, method, reject[, "files": read from uint16 FITS files on disk])
    "median+sigma 20x4096²": (20, 4096, 4096, "median", "sigma"),
    "average+sigma 20x2048²": (20, 2048, 2048, "average", "sigma"),
    "median 20x2048²": (20, 2048, 2048, "median", "none"),
    "files → median 20x2048²": (20, 2048, 2048, "median", "none", "files"),
    "files → average+sigma 20x2048²": (20, 2048, 2048, "average", "sigma", "files"),
    "files → median+sigma 40x4096²": (40, 4096, 4096, "median", "sigma", "files"),
}
QUICK = {
    "median+sigma 10x1024²": (10, 1024, 1024, "median", "sigma"),
    "average+sigma 10x1024²": (10, 1024, 1024, "average", "sigma"),
    "files → median 10x1024²": (10, 1024, 1024, "median", "none", "files"),
}
TOOLS = ("ccdgui", "numpy", "ccdproc", "siril")
#: Peers that only read files, and the cases they cannot do.
FILE_ONLY = {"siril"}
SKIP = {("siril", "median", "sigma")}  # Siril has no median with sigma clipping


def siril_available() -> bool:
    import shutil

    return shutil.which("siril-cli") is not None


def run_case(tool: str, case: tuple, workdir: Path, repeats: int) -> dict:
    """Time one tool on one case in a child process; returns its JSON report."""
    command = [sys.executable, "-m", "benchmarks.worker", tool, json.dumps(case), str(workdir), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"tool": tool, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_rows(name: str, reports: list[dict]) -> list[str]:
    ours = next((r for r in reports if r["tool"] == "ccdgui" and "seconds" in r), None)
    rows = []
    for report in reports:
        if "error" in report:
            rows.append(f"| {name} | {report['tool']} | error: {report['error']} | | | |")
            continue
        ratio = "" if ours is None or report is ours else f"{report['seconds'] / ours['seconds']:.1f}×"
        match = "" if report is ours else ("yes" if report.get("match") else f"no ({report.get('maxrel')})")
        rows.append(f"| {name} | {report['tool']} | {report['seconds']:.2f} s | {report['peak_mb']:.0f} MB "
                    f"| {ratio} | {match} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small stacks only")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated subset of " + ",".join(TOOLS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else CASES
    tools = [t for t in args.tools.split(",") if t]
    print("| work | tool | time | peak RSS | ccdgui is faster by | result matches ccdgui |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ccdgui-bench-") as tmp:
        for name, case in cases.items():
            if args.only not in name:
                continue
            if len(case) == 6:
                make = [sys.executable, "-m", "benchmarks.worker", "--make-files", *map(str, case[:3])]
                subprocess.run([*make, tmp], check=True)
            runnable = [t for t in tools if (len(case) == 6 or t not in FILE_ONLY)
                        and (t, case[3], case[4]) not in SKIP and (len(case) == 6 or t != "siril")]
            if "siril" in runnable and not siril_available():
                runnable.remove("siril")
            reports = [run_case(tool, case, Path(tmp), args.repeats) for tool in runnable]
            for row in format_rows(name, reports):
                print(row, flush=True)
    return 0
