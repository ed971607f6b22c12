"""Command line: ``ccdgui simulate``, ``ccdgui reduce``, and the GUI when run without a command.

Errors a user can fix (bad arguments, an empty folder) end with a one-line message and a non-zero exit
status, never a traceback. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_NOTHING = 3
EXIT_CANCELLED = 130


class CliError(Exception):
    """A one-line message for the user; the exit status is ``code``."""

    def __init__(self, message: str, code: int = EXIT_NOTHING) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)", EXIT_USAGE)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _size(text: str) -> int:
    value = int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"frame sides must be ≥ 8 pixels, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ccdgui", description="Inspect and calibrate astronomical CCD frames. "
                                                "Without a command, opens the desktop application.")
    parser.add_argument("--version", action="version", version=f"ccdgui {__version__}")
    parser.add_argument("--smoke-test", action="store_true",
                        help="start the window offscreen, simulate and calibrate a small night, exit")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    sim = commands.add_parser("simulate", help="write a simulated night of FITS frames")
    sim.add_argument("outdir", type=Path)
    sim.add_argument("--size", nargs=2, type=_size, metavar=("NX", "NY"),
                     help="frame size (default 2000 2000)")
    for flag, help_text in (("--n-bias", "bias frames"), ("--n-dark", "dark frames"),
                            ("--n-flat", "flat frames per filter"), ("--n-light", "light frames per filter")):
        sim.add_argument(flag, type=_positive_int, metavar="N", help=help_text)
    sim.add_argument("--read-noise", type=float, metavar="E", help="read noise, electrons (700)")
    sim.add_argument("--bias-level", type=float, metavar="ADU", help="bias level (1100)")
    sim.add_argument("--dark-current", type=float, metavar="E_PER_S", help="dark current, e-/s/pixel (0.1)")
    sim.add_argument("--dark-exposure", type=float, metavar="S", help="dark exposure, s (60)")
    sim.add_argument("--light-exposure", type=float, metavar="S", help="light exposure, s (30)")
    sim.add_argument("--sky", type=float, metavar="ADU", help="sky level (20)")
    sim.add_argument("--stars", type=_positive_int, metavar="N", help="number of stars (50)")
    sim.add_argument("--max-star-counts", type=float, metavar="ADU", help="peak of the brightest star (2000)")
    sim.add_argument("--gain", type=float, metavar="G", help="gain, e-/ADU (1.0)")
    sim.add_argument("--filters", metavar="r,g,...", help="filters for flats and lights (r)")
    sim.add_argument("--cosmic-rays", type=_positive_int, metavar="N", help="cosmic rays per light (0)")
    sim.add_argument("--seed", type=int, metavar="N", help="random seed (0)")
    sim.add_argument("--overwrite", action="store_true", help="replace files of the same names in OUTDIR")

    red = commands.add_parser(
        "reduce", help="build masters and calibrate the lights in a folder",
        description="Build masters and calibrate the lights of INDIR into OUTDIR. With --recipe R alone "
                    "(no folders), replay the reduction R records and verify every output bit for bit.")
    red.add_argument("indir", type=Path, nargs="?")
    red.add_argument("outdir", type=Path, nargs="?")
    red.add_argument("--recipe", type=Path, metavar="FILE.json",
                     help="a recipe.json: alone, replay and verify that reduction; with INDIR OUTDIR, use "
                          "its options on other frames (flags given here win)")
    red.add_argument("--overwrite", action="store_true",
                     help="replace the outputs of a previous run in OUTDIR (else a non-empty OUTDIR is "
                          "refused)")
    red.add_argument("--allow-changed-inputs", action="store_true",
                     help="replay even when inputs differ from the recipe's checksums")
    red.add_argument("--dry-run", action="store_true",
                     help="print the plan (masters, which master serves each light, output files) and the "
                          "estimate, then stop")
    red.add_argument("--quiet", action="store_true", help="no progress on stderr")
    red.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on a Dask cluster: a scheduler's address (tcp://head:8786), or local:N for N "
                          "worker processes on this machine (needs pip install 'ccdgui[distributed]'; the "
                          "workers must see the inputs and OUTDIR under the same paths)")
    red.add_argument("--library", type=Path, metavar="PATH",
                     help="the master library to take masters from (default: $CCDGUI_LIBRARY, else the one "
                          "in your data folder, if any)")
    red.add_argument("--no-library", action="store_true", help="use no master library")
    red.add_argument("--to-library", action="store_true",
                     help="add the masters this run builds to the master library")
    add_recipe_flags(red)
    add_library_parser(commands)

    from .cli_inspect import add_inspect_parser

    add_inspect_parser(commands)
    gui = commands.add_parser("gui", help="open the desktop application (the default)")
    gui.add_argument("paths", nargs="*", help="FITS files or folders to open")
    return parser


def add_library_parser(commands) -> None:
    """``ccdgui library add|list|remove|check``."""
    lib = commands.add_parser("library", help="the master library: masters kept for other nights",
                              description="Masters built once and used on other nights, indexed in "
                                          "an SQLite database (default: $CCDGUI_LIBRARY, else your data "
                                          "folder).")
    actions = lib.add_subparsers(dest="library_command", parser_class=_Parser)
    add = actions.add_parser("add", help="copy master files (or every FITS file below a folder) into the "
                                         "library")
    add.add_argument("paths", type=Path, nargs="+", metavar="FILE|FOLDER")
    add.add_argument("--kind", choices=("bias", "dark", "flat"),
                     help="what the files are, when their headers do not say (masters of other tools)")
    listing = actions.add_parser("list", help="list the library's masters")
    listing.add_argument("--kind", choices=("bias", "dark", "flat"))
    listing.add_argument("--camera", metavar="INSTRUME", help="only this camera (INSTRUME)")
    listing.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    remove = actions.add_parser("remove", help="remove masters (by id, file name or sha256 prefix)")
    remove.add_argument("references", nargs="+", metavar="ID|NAME|SHA256")
    actions.add_parser("check", help="report masters whose file is missing or changed")
    for sub in (add, listing, remove, actions.choices["check"]):
        sub.add_argument("--library", type=Path, metavar="PATH", help="the library database to use")


def _option_type(option):
    """argparse ``type`` for a recipe option: the schema's check, its one-line refusal as the error."""
    def parse(text: str):
        try:
            return option.parse_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = option.name
    return parse


def add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per recipe option (:data:`ccdgui.model.recipe.OPTIONS`), grouped as in the dock, each
    with its range and default in the help; a flag not given leaves no attribute (the recipe's value
    stays)."""
    from .model.recipe import DOCK_GROUPS, OPTIONS

    groups = {name: parser.add_argument_group(f"recipe: {(name or 'per-file overrides').lower()}")
              for name in (*DOCK_GROUPS, "")}
    for option in OPTIONS:
        group = groups[option.group]
        allowed = option.allowed() + (f" ({option.unit})" if option.unit else "")
        if option.kind == "bool":
            allowed = "default " + (option.cli_flag if option.default else f"--no-{option.cli_flag[2:]}")
        else:
            allowed += f"; default {option.default_text()}"
        help_text = f"{option.help} [{allowed}]".replace("%", "%%")
        common = dict(dest=option.name, default=argparse.SUPPRESS, help=help_text)
        if option.kind == "bool":
            group.add_argument(option.cli_flag, action=argparse.BooleanOptionalAction, **common)
        elif option.kind == "dict":
            group.add_argument(option.cli_flag, action="append", type=_option_type(option),
                               metavar=option.cli_metavar, **common)
        else:
            group.add_argument(option.cli_flag, type=_option_type(option), metavar=option.cli_metavar,
                               **common)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.smoke_test:
            from .app import smoke_test

            return smoke_test()
        if args.command == "simulate":
            return cmd_simulate(args)
        if args.command == "reduce":
            return cmd_reduce(args)
        if args.command == "inspect":
            from .cli_inspect import cmd_inspect

            return cmd_inspect(args)
        if args.command == "library":
            return cmd_library(args)
        from .app import run_gui

        return run_gui(getattr(args, "paths", []) or [])
    except CliError as exc:
        print(f"ccdgui: error: {exc}" if not str(exc).startswith("ccdgui") else f"{exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("ccdgui: cancelled", file=sys.stderr)
        return EXIT_CANCELLED


# --- simulate ----------------------------------------------------------------------------------------
_SIM_FLAGS = {"n_bias": "n_bias", "n_dark": "n_dark", "n_flat": "n_flat", "n_light": "n_light",
              "read_noise": "read_noise", "bias_level": "bias_level", "dark_current": "dark_current",
              "dark_exposure": "dark_exposure", "light_exposure": "light_exposure", "sky": "sky",
              "stars": "n_stars", "max_star_counts": "max_star_counts", "gain": "gain",
              "cosmic_rays": "cosmic_rays", "seed": "seed"}


def sim_params_from_args(args: argparse.Namespace):
    from .model.simulate import SimParams

    params = SimParams()
    for flag, field_name in _SIM_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            setattr(params, field_name, value)
    if args.size:
        params.nx, params.ny = args.size
    if args.filters is not None:
        filters = tuple(f.strip() for f in args.filters.split(",") if f.strip())
        if not filters:
            raise CliError("--filters needs at least one filter name, e.g. r,g", EXIT_USAGE)
        params.filters = filters
    if params.gain <= 0:
        raise CliError("--gain must be positive", EXIT_USAGE)
    return params


def cmd_simulate(args: argparse.Namespace) -> int:
    from .model import fitsio, simulate

    params = sim_params_from_args(args)
    outdir: Path = args.outdir
    if outdir.exists() and not outdir.is_dir():
        raise CliError(f"{outdir} exists and is not a folder", EXIT_USAGE)
    total = params.n_frames
    names = [*simulate.frame_names(params), "truth/flat.fits", "truth/sky_stars.fits"]
    existing = [name for name in names if (outdir / name).exists()]
    if existing and not args.overwrite:
        raise CliError(f"{outdir} already holds {len(existing)} of the files to write (e.g. {existing[0]}); "
                       "choose another folder or pass --overwrite", EXIT_USAGE)
    started = time.perf_counter()
    try:
        for index, frame in enumerate(simulate.iter_night(params), start=1):
            fitsio.write_frame(frame, outdir / frame.name, overwrite=args.overwrite)
            _progress(index / max(total, 1), f"wrote {frame.name}")
        truth = simulate.make_camera(params)
        fitsio.write_frame(truth.flat_frame(), outdir / "truth" / "flat.fits", overwrite=args.overwrite)
        fitsio.write_frame(truth.sky_stars_frame(), outdir / "truth" / "sky_stars.fits",
                           overwrite=args.overwrite)
    except OSError as exc:
        from .model.execute import os_error_reason

        raise CliError(f"cannot write into {outdir}: {os_error_reason(exc)}", EXIT_USAGE) from None
    print(f"ccdgui: simulated {total} frames of {params.nx}x{params.ny} in {outdir} "
          f"({time.perf_counter() - started:.1f} s); truth in {outdir / 'truth'}", file=sys.stderr)
    return 0


# --- reduce ------------------------------------------------------------------------------------------
def recipe_from_args(args: argparse.Namespace, record: dict | None = None):
    """The recipe: defaults, else the options of ``record`` (a recipe.json), then the flags given (a
    per-file override flag adds to the record's). A bad value ends in one line (exit 2)."""
    from .model.recipe import OPTIONS, Recipe

    recipe = Recipe()
    if record is not None:
        data = record.get("recipe", record)
        try:
            recipe = Recipe.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise CliError(f"recipe {args.recipe}: {exc}", EXIT_USAGE) from None
    for option in OPTIONS:
        if not hasattr(args, option.name):
            continue  # not given
        value = getattr(args, option.name)
        if value is None and option.kind != "optional_float":
            continue  # a namespace made elsewhere may say None for "not given"
        if option.kind == "dict":
            value = {**getattr(recipe, option.name), **dict(value)}
        try:
            setattr(recipe, option.name, option.check(value))
        except ValueError as exc:
            raise CliError(f"{option.cli_flag}: {exc}", EXIT_USAGE) from None
    try:
        recipe.check_together()
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return recipe


def _load_record(path: Path) -> dict:
    from .model.provenance import RecordError, load_record

    try:
        return load_record(path)
    except RecordError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except ValueError as exc:  # an integer of more digits than int() converts: read it again, keeping
        try:                    # its length, for the recipe's check to name the option
            import json

            record = json.loads(path.read_text(), parse_int=_json_int)
        except ValueError:
            raise CliError(f"{path} cannot be read: {str(exc).splitlines()[0]}", EXIT_USAGE) from None
        if not isinstance(record, dict):
            raise CliError(f"{path} is not a recipe (a JSON object)", EXIT_USAGE) from None
        return record


def _json_int(text: str) -> int:
    """A JSON integer; one too long for int() becomes a number of as many digits."""
    digits = text.lstrip("-")
    if len(digits) <= 4000:
        return int(text)
    return (-1 if text.startswith("-") else 1) * 10 ** (len(digits) - 1)


def cmd_reduce(args: argparse.Namespace) -> int:
    from .model.files import Checksums
    from .model.intake import list_files

    started = time.perf_counter()
    if args.scheduler:  # said before any work, in one line
        from .model.place import parse_place

        try:
            args.scheduler = parse_place(args.scheduler)
        except ValueError as exc:
            raise CliError(f"--scheduler {exc}", EXIT_USAGE) from None
    if args.scheduler:
        from .model.cluster import ClusterError, require_distributed

        try:
            require_distributed()
        except ClusterError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    if args.indir is None and args.outdir is None:
        if args.recipe is None:
            raise CliError("reduce needs INDIR and OUTDIR, or --recipe RECIPE.json to replay a reduction",
                           EXIT_USAGE)
        return cmd_replay(args, started)
    if args.outdir is None:
        raise CliError("reduce needs an output folder: ccdgui reduce INDIR OUTDIR", EXIT_USAGE)
    indir: Path = args.indir
    outdir: Path = args.outdir
    if not indir.is_dir():
        raise CliError(f"input folder {indir} does not exist or is not a folder", EXIT_USAGE)
    if outdir.resolve() == indir.resolve():
        raise CliError("the output folder must differ from the input folder", EXIT_USAGE)
    if indir.resolve().is_relative_to(outdir.resolve()):
        raise CliError(f"the input folder {indir} lies inside the output folder {outdir}", EXIT_USAGE)
    record = _load_record(args.recipe) if args.recipe is not None else None
    recipe = recipe_from_args(args, record)  # a bad option is refused before any work
    paths = list_files([indir])
    if outdir.resolve().is_relative_to(indir.resolve()):  # the outputs of this run are never its inputs
        paths = [p for p in paths if not p.resolve().is_relative_to(outdir.resolve())]
    # the inputs' checksums (for recipe.json) are taken on another core while the rest loads and runs
    with Checksums([] if args.dry_run else paths) as checksums:
        return _reduce(args, recipe, paths, indir, outdir, checksums, started)


def _reduce(args: argparse.Namespace, recipe, paths: list[Path], indir: Path, outdir: Path, checksums,
            started: float) -> int:
    from .model.estimate import estimate_run
    from .model.intake import intake
    from .model.plan import format_plan, make_plan
    from .model.progress import drive

    found = drive(intake(paths, medians=False, hdus=recipe.hdu_overrides))  # headers now, pixels later
    frames, quarantined = found.frames, found.problems
    for problem in quarantined:
        print(f"ccdgui: skipped {problem}", file=sys.stderr)
    if not frames:
        raise CliError(f"no readable FITS frame in {indir}")
    plan = make_plan(frames, recipe, root=indir, masters=_library_entries(args))
    cost = estimate_run(plan, recipe)
    if args.dry_run:
        print(format_plan(plan))
        print(f"estimate: {cost}")
        return 0
    _refuse_changed_library_masters(plan)
    if not plan.masters and not any(not s.skip for s in plan.lights):
        for note in plan.notes:
            print(f"ccdgui: note: {note}", file=sys.stderr)
        raise CliError("nothing to do: no bias, dark, flat or light frames were recognised in "
                       f"{indir} ({len(frames)} frame(s) read)")
    if not args.quiet:
        print(f"ccdgui: {len(plan.masters)} master(s) and {len(plan.lights)} light(s) to do: {cost}",
              file=sys.stderr)
    result = _execute(args, plan, recipe, outdir, checksums, quarantined)
    for problem in result.problems:
        print(f"ccdgui: note: {problem}", file=sys.stderr)
    print(f"ccdgui: {len(result.masters)} master(s), {len(result.calibrated)} calibrated frame(s) in "
          f"{outdir} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if getattr(args, "to_library", False):
        _add_to_library(args, [], run=(plan, outdir))
    if result.changed_inputs:
        raise CliError(f"{len(result.changed_inputs)} input(s) changed during the run: "
                       + ", ".join(result.changed_inputs[:5]), EXIT_FAILED)
    return 0


def _execute(args: argparse.Namespace, plan, recipe, outdir: Path, checksums=None, quarantined=()):
    """Execute a plan into ``outdir`` with progress on stderr; output-folder problems end in one line."""
    from .model.execute import OutputError, execute
    from .model.progress import drive

    report = (lambda *a: None) if args.quiet else _progress
    engine = None
    try:
        if getattr(args, "scheduler", None):
            from .model.cluster import ClusterEngine

            engine = ClusterEngine(args.scheduler)
        return drive(execute(plan, recipe, outdir, overwrite=args.overwrite, checksums=checksums,
                             quarantined=quarantined, engine=engine), report)
    except OutputError as exc:  # also a cluster that cannot be used (cluster.ClusterError)
        raise CliError(str(exc), EXIT_USAGE) from None
    finally:
        if engine is not None:
            engine.close()


def cmd_replay(args: argparse.Namespace, started: float) -> int:
    """Re-run the reduction a recipe.json records into a temporary folder and compare every output."""
    import tempfile

    from .model import fitsio
    from .model.plan import make_plan
    from .model.provenance import (
        RecordError,
        changed_inputs,
        changed_library_masters,
        compare_outputs,
        recorded_inputs,
        recorded_library_masters,
    )

    record = _load_record(args.recipe)
    try:
        inputs = recorded_inputs(record)
    except RecordError as exc:
        raise CliError(f"{args.recipe}: {exc}", EXIT_USAGE) from None
    recipe = recipe_from_args(args, record)
    changed = changed_inputs(inputs)
    for line in changed:
        print(f"ccdgui: input changed: {line}", file=sys.stderr)
    if changed and not args.allow_changed_inputs:
        raise CliError(f"{len(changed)} input(s) differ from the recipe: refused (--allow-changed-inputs "
                       "replays anyway)", EXIT_USAGE)
    frames, problems = [], []
    for path, hdu, _ in inputs:
        try:
            frames.append(fitsio.read_header_frame(path, hdu))
        except fitsio.FrameError as exc:
            problems.append(f"{path}: {exc}")
    if problems:
        raise CliError("cannot read the recipe's inputs: " + "; ".join(problems[:3]), EXIT_USAGE)
    try:
        masters = recorded_library_masters(record)
    except RecordError as exc:
        raise CliError(f"{args.recipe}: {exc}", EXIT_USAGE) from None
    changed_masters = changed_library_masters(masters)
    for line in changed_masters:
        print(f"ccdgui: {line}", file=sys.stderr)
    if changed_masters:
        raise CliError(f"{len(changed_masters)} library master(s) differ from the recipe: refused",
                       EXIT_USAGE)
    plan = make_plan(frames, recipe, root=record.get("input_root"), masters=masters)
    if args.dry_run:
        from .model.plan import format_plan

        print(format_plan(plan))
        return 0
    with tempfile.TemporaryDirectory(prefix="ccdgui-replay-") as scratch:
        args.overwrite = False
        result = _execute(args, plan, recipe, Path(scratch) / "out")
    differences = compare_outputs(record.get("outputs", []), result.outputs)
    for line in differences:
        print(f"ccdgui: {line}", file=sys.stderr)
    if differences:
        raise CliError(f"{len(differences)} output(s) not reproduced (of {len(record.get('outputs', []))})",
                       EXIT_FAILED)
    print(f"ccdgui: {len(result.outputs)} outputs reproduced bit for bit from {len(inputs)} input(s) "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


# --- the master library ------------------------------------------------------------------------------
def _open_library(path: Path | None):
    from .model.masterlib import Library, LibraryError

    try:
        return Library(path)
    except LibraryError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _library_entries(args: argparse.Namespace) -> list:
    """The library's masters a reduction may use: none with --no-library; a missing default library is
    no library, a missing --library PATH an error."""
    from .model.masterlib import LibraryError, open_entries

    if getattr(args, "no_library", False):
        return []
    if getattr(args, "to_library", False) and args.library is not None and not args.library.exists():
        return []  # a new library, made by --to-library
    try:
        return open_entries(getattr(args, "library", None))
    except LibraryError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def _refuse_changed_library_masters(plan) -> None:
    """Library masters the plan uses whose file is missing or changed: named, then refused (exit 2)."""
    from .model.masterlib import entry_problem

    problems = [line for m in plan.library_masters if (line := entry_problem(m.library)) is not None]
    for line in problems:
        print(f"ccdgui: library master {line}", file=sys.stderr)
    if problems:
        raise CliError(f"{len(problems)} library master(s) missing or changed since they were added: refused "
                       "(see ccdgui library check)", EXIT_USAGE)


def _add_to_library(args: argparse.Namespace, paths: list[Path], kind: str | None = None, run=None) -> int:
    """Add files (or, with ``run`` = (plan, outdir), the masters a run wrote) to the library; the
    number added."""
    with _open_library(getattr(args, "library", None)) as library:
        done = library.add(paths, kind) if run is None else library.add_run(*run)
        for entry in done.added:
            print(f"ccdgui: library: added {entry.name} ({entry.kind}, {entry.camera}, "
                  f"{entry.night or 'undated'})", file=sys.stderr)
        for line in done.skipped:
            print(f"ccdgui: library: skipped {line}", file=sys.stderr)
        print(f"ccdgui: {len(done.added)} master(s) added to {library.path}", file=sys.stderr)
        return len(done.added)


def cmd_library(args: argparse.Namespace) -> int:
    """``ccdgui library add|list|remove|check``."""
    import json

    command = getattr(args, "library_command", None)
    if command is None:
        raise CliError("library needs a command: add, list, remove or check (see ccdgui library --help)",
                       EXIT_USAGE)
    if command == "add":
        missing = [p for p in args.paths if not p.exists()]
        if missing:
            raise CliError(f"{missing[0]} does not exist", EXIT_USAGE)
        added = _add_to_library(args, args.paths, args.kind)
        return 0 if added else EXIT_NOTHING
    from .model.masterlib import DB_NAME, default_path

    where = args.library if args.library is not None else default_path()
    if not (where / DB_NAME if where.is_dir() else where).exists():  # list, check, remove never create one
        if command == "remove":
            raise CliError(f"no master library at {where}", EXIT_USAGE)
        if command == "list":
            print("(the library is empty)")
        print(f"ccdgui: no master library at {where} yet (ccdgui library add creates it)", file=sys.stderr)
        return 0
    with _open_library(args.library) as library:
        if command == "list":
            entries = library.entries(args.kind, args.camera)
            if args.json:
                print(json.dumps([e.to_dict() for e in entries], indent=2))
            else:
                print(format_library(entries))
            return 0
        if command == "remove":
            removed, unknown = library.remove(args.references)
            for entry in removed:
                print(f"ccdgui: removed {entry.name} from {library.path}", file=sys.stderr)
            if unknown:
                raise CliError("; ".join(unknown), EXIT_USAGE)
            return 0
        problems = library.check()
        for line in problems:
            print(line)
        count = len(library.entries())
        print(f"ccdgui: {count - len(problems)} of {count} master(s) intact", file=sys.stderr)
        return EXIT_FAILED if problems else 0


def format_library(entries) -> str:
    """The library as a table: one line per master."""
    from .model.library import celsius

    header = f"{'id':>4}  {'kind':4}  {'name':34}  {'camera':28}  {'size':9}  {'bin':3}  {'gain':5}  " \
             f"{'temp':9}  {'exp':7}  {'filter':10}  {'night':10}  {'n':>3}"
    lines = [header]
    for e in entries:
        lines.append(f"{e.id:>4}  {e.kind:4}  {e.name[:34]:34}  {e.camera[:28]:28}  "
                     f"{e.shape[1]}x{e.shape[0]:<4}  {e.binning[0]}x{e.binning[1]}  {(e.gain or '-')[:5]:5}  "
                     f"{celsius(e.temperature):9}  {'-' if e.exptime is None else f'{e.exptime:g}s':7}  "
                     f"{(e.filter or '-')[:10]:10}  {e.night or '-':10}  {e.ncombine:>3}")
    return "\n".join(lines) if entries else "(the library is empty)"


_last_message = [""]


def _progress(fraction: float, message: str) -> None:
    if message != _last_message[0] or fraction >= 1.0:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr)
        _last_message[0] = message
