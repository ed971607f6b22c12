"""``ccdgui inspect``: look closer at a finished reduction without the window.

- ``ccdgui inspect pixel OUTDIR/recipe.json --master NAME --x X --y Y [--json]``: one pixel's stack
  (1-based FITS pixel coordinates, as DS9 shows them), see :mod:`ccdgui.model.inspect`;
- ``ccdgui inspect qa MASTER.fits… [--json]``: the quality figures in masters' headers, see
  :mod:`ccdgui.model.qa`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def add_inspect_parser(commands) -> None:
    """Register ``inspect pixel`` and ``inspect qa`` on the main parser's subcommands."""
    from .cli import _Parser

    inspect = commands.add_parser("inspect",
                                  help="look closer at a reduction: one pixel's stack, masters' QA",
                                  description="Explain a finished reduction: the stack behind one pixel of a "
                                              "master, or the quality figures of masters.")
    actions = inspect.add_subparsers(dest="inspect_command", parser_class=_Parser)
    pixel = actions.add_parser("pixel", help="every input's value at one pixel of a master, what was "
                                             "rejected and why, and the combined value")
    pixel.add_argument("recipe", type=Path, metavar="OUTDIR/recipe.json",
                       help="the run's recipe.json (or its output folder)")
    pixel.add_argument("--master", required=True, metavar="NAME",
                       help="a master of the run (e.g. master_bias.fits), or a light's file for the stacks "
                            "of the masters it used")
    pixel.add_argument("--x", type=int, required=True, metavar="X", help="column, 1-based (FITS, DS9)")
    pixel.add_argument("--y", type=int, required=True, metavar="Y", help="row, 1-based (FITS, DS9)")
    pixel.add_argument("--json", action="store_true", help="JSON instead of a table")
    quality = actions.add_parser("qa", help="quality figures of masters (read noise, dark current, hot "
                                            "pixels, flat level, vignetting, outlier frames…)")
    quality.add_argument("masters", type=Path, nargs="+", metavar="MASTER.fits")
    quality.add_argument("--json", action="store_true", help="JSON instead of a table")


def cmd_inspect(args: argparse.Namespace) -> int:
    from .cli import EXIT_USAGE, CliError

    command = getattr(args, "inspect_command", None)
    if command == "pixel":
        return _pixel(args)
    if command == "qa":
        return _quality(args)
    raise CliError("inspect needs a command: pixel or qa (see ccdgui inspect --help)", EXIT_USAGE)


def _pixel(args: argparse.Namespace) -> int:
    from .cli import EXIT_USAGE, CliError
    from .model.inspect import InspectError, Inspector

    try:
        inspector = Inspector(args.recipe)
        master = inspector.master_named(args.master)
        if master is not None:
            stacks = [inspector.stack(master, args.x, args.y)]
        else:
            try:
                names = inspector.light_masters(args.master)
            except InspectError:
                raise InspectError(f"no master or light {args.master!r} in this run (its masters: "
                                   f"{', '.join(inspector.masters) or 'none'})") from None
            stacks = [inspector.stack(name, args.x, args.y) for name in names]
    except InspectError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if master is None:
        for used in inspector.library_masters_of(args.master):
            print(f"ccdgui: {used} came from the master library: not built in this run", file=sys.stderr)
    if args.json:
        data = [s.to_dict() for s in stacks]
        print(json.dumps(data[0] if master is not None else data, indent=2))
    else:
        print("\n\n".join(s.format() for s in stacks))
    return 0


def _quality(args: argparse.Namespace) -> int:
    from .cli import EXIT_USAGE, CliError
    from .model import fitsio, qa

    reports, problems = [], []
    for path in args.masters:
        try:
            frame = fitsio.read_header_frame(path)
        except (fitsio.FrameError, OSError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        report = qa.from_header(frame.header, path.name)
        if not report.figures:
            problems.append(f"{path}: no QA figures in its header (not a master made by this ccdgui?)")
            continue
        reports.append(report)
    for line in problems:
        print(f"ccdgui: {line}", file=sys.stderr)
    if not reports:
        raise CliError("no master with QA figures given", EXIT_USAGE)
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print("\n\n".join(format_quality(r) for r in reports))
    return 0 if not problems else 1


def format_quality(report) -> str:
    """One master's figures, flagged frames and warnings as text."""
    lines = [f"{report.master} ({report.kind})"]
    for figure in report.figures:
        lines.append(f"  {figure.label:<26} {figure.text():>18}   {figure.keyword}")
    flagged = report.flagged()
    worst = [f for f in report.frames if not math.isnan(f.rejected)]
    if worst:
        top = max(worst, key=lambda f: f.rejected)
        lines.append(f"  {len(report.frames)} frames; most rejected: {top.name} ({top.rejected:.3%})")
    for frame in flagged:
        lines.append(f"  OUTLIER {frame.name}: {frame.flagged}")
    for warning in report.warnings:
        if not warning.startswith("outlier frame "):
            lines.append(f"  WARNING {warning}")
    return "\n".join(lines)
