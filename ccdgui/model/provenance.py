"""recipe.json: the record of a reduction as it ran, written by the executor. Reading it back for a
replay, checking inputs against it, and copying a run's files elsewhere (the window's Save)."""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .files import sha256_of
from .progress import CancelToken, Progress

if TYPE_CHECKING:
    from .plan import Plan
    from .recipe import Recipe

RECORD_NAME = "recipe.json"
FORMAT = "ccdgui-reduction/1"


class RecordError(Exception):
    """A recipe.json that cannot be used; ``str(error)`` is one line."""


def software_versions() -> dict[str, str]:
    import platform

    import astropy
    import numpy

    from .. import __version__

    return {"ccdgui": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "astropy": astropy.__version__}


def make_record(plan: Plan, recipe: Recipe, outputs: Sequence[dict], digests: Sequence[str],
                problems: Sequence[str], values: dict, quarantined: Sequence = (),
                changed: Sequence[str] = ()) -> dict:
    """What went into a reduction and what came out: the options, every input with the sha256 of its
    bytes, the plan that ran, values measured while running, every output with its sha256."""
    inputs = []
    for item, digest in zip(plan.inputs, digests, strict=True):
        entry = item.to_dict()
        entry["sha256"] = digest
        inputs.append(entry)
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "software": software_versions(),
        "recipe": recipe.to_dict(),
        "input_root": None if plan.root is None else str(plan.root),
        "inputs": inputs,
        "quarantined": [{"file": str(p.path), "reason": p.reason} for p in quarantined],
        "plan": plan.to_dict(),
        "library_masters": [_library_record(m.library) for m in plan.library_masters],
        "values": values,
        "outputs": list(outputs),
        "masters": [o["file"].split("/", 1)[-1] for o in outputs if o["kind"] == "master"],
        "calibrated": [o["file"].split("/", 1)[-1] for o in outputs if o["kind"] == "calibrated"],
        "changed_inputs": list(changed),
        "problems": list(problems),
    }


def write_record(record: dict, folder: str | os.PathLike) -> Path:
    """Write ``record`` as ``folder/recipe.json`` atomically (a partial file never has the final name)."""
    path = Path(folder) / RECORD_NAME
    partial = path.with_name(f".{RECORD_NAME}.part")
    with open(partial, "w") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def load_record(path: str | os.PathLike) -> dict:
    """A recipe.json read back; RecordError (one line) when it cannot be read or is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise RecordError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} is not a recipe (a JSON object)")
    return data


def recorded_inputs(record: dict, root: str | os.PathLike | None = None,
                    ) -> list[tuple[Path, int | None, str]]:
    """(path, HDU, sha256) of every input a reduction record lists, below ``root`` (default: the
    recorded input root). RecordError when the record lists no inputs (not a reduction's record)."""
    entries = record.get("inputs")
    if not isinstance(entries, list) or not entries:
        raise RecordError("the recipe lists no inputs: it holds options only (give INDIR and OUTDIR)")
    base = Path(root) if root is not None else Path(record.get("input_root") or ".")
    found = []
    for entry in entries:
        try:
            rel, digest = str(entry["file"]), str(entry.get("sha256", ""))
        except (KeyError, TypeError):
            raise RecordError("the recipe's input list is damaged (an entry without a file)") from None
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise RecordError(f"the recipe names an input outside its input folder: {rel}")
        hdu = entry.get("hdu")
        found.append((base / rel, hdu if isinstance(hdu, int) else None, digest))
    return found


def changed_inputs(inputs: Sequence[tuple[Path, int | None, str]]) -> list[str]:
    """One line per recorded input that is missing or whose sha256 differs from the record."""
    lines = []
    for path, _, digest in inputs:
        if digest.startswith("pixels:"):
            lines.append(f"{path.name}: was an in-memory frame (no file to replay)")
            continue
        try:
            actual = sha256_of(path)
        except OSError as exc:
            lines.append(f"{path}: {exc.strerror or 'cannot be read'}")
            continue
        if actual != digest:
            lines.append(f"{path}: sha256 {actual[:12]}… differs from the recipe's {digest[:12]}…")
    return lines


def _library_record(entry) -> dict:
    """A library master as recipe.json names it: its index entry (file, sha256, origin, when added)."""
    return entry.to_dict()


def recorded_library_masters(record: dict) -> list:
    """The library masters (:class:`masterlib.LibraryMaster`) a reduction record used; RecordError when
    the list is damaged."""
    from .masterlib import LibraryMaster

    entries = record.get("library_masters") or []
    try:
        return [LibraryMaster.from_dict(entry) for entry in entries]
    except (TypeError, ValueError, AttributeError):
        raise RecordError("the recipe's list of library masters is damaged") from None


def changed_library_masters(entries: Sequence) -> list[str]:
    """One line per library master that is missing or whose sha256 differs from the record."""
    from .masterlib import entry_problem

    return [f"library master {line}" for entry in entries if (line := entry_problem(entry)) is not None]


def compare_outputs(recorded: Sequence[dict], produced: Sequence[dict]) -> list[str]:
    """One line per output that differs between two runs (missing, extra, or other bytes)."""
    before = {o["file"]: o["sha256"] for o in recorded}
    after = {o["file"]: o["sha256"] for o in produced}
    lines = [f"{name}: not made again" for name in before if name not in after]
    lines += [f"{name}: made now, not in the recipe" for name in after if name not in before]
    lines += [f"{name}: differs (sha256 {after[name][:12]}… instead of {before[name][:12]}…)"
              for name in before if name in after and after[name] != before[name]]
    return lines


def copy_results(source: str | os.PathLike, destination: str | os.PathLike, overwrite: bool = False,
                 cancel: CancelToken | None = None) -> Generator[Progress, None, list[Path]]:
    """Copy a finished run's outputs and recipe.json from ``source`` to ``destination`` (each file to a
    temporary name, checked against its recorded sha256, then renamed); yields Progress, returns the
    paths written. The destination must be empty unless ``overwrite`` (which replaces the outputs of the
    run recorded there)."""
    from .execute import OutputError, OutputFolder

    cancel = cancel or CancelToken()
    record = load_record(Path(source) / RECORD_NAME)
    if Path(destination).resolve() == Path(source).resolve():
        return [Path(source) / o["file"] for o in record["outputs"]] + [Path(source) / RECORD_NAME]
    folder = OutputFolder(destination, overwrite)
    folder.open()
    written: list[Path] = []
    finished = False
    try:
        outputs = record.get("outputs", [])
        for index, output in enumerate(outputs, start=1):
            cancel.check()
            target = folder.path / output["file"]
            _copy_checked(Path(source) / output["file"], target, output["sha256"])
            folder.journal(output["file"])
            written.append(target)
            yield Progress(index / (len(outputs) + 1), f"Saved {output['file']}")
        written.append(write_record(record, folder.path))
        finished = True
        yield Progress(1.0, f"Saved {len(written)} files in {folder.path}")
        return written
    except OSError as exc:
        from .execute import os_error_reason

        raise OutputError(f"cannot save into {folder.path}: {os_error_reason(exc)}") from None
    finally:
        folder.close(finished)


def _copy_checked(source: Path, target: Path, digest: str) -> None:
    """Copy one file atomically and check the copy's sha256 against the record."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    try:
        shutil.copyfile(source, partial)
        if sha256_of(partial) != digest:
            raise OSError(f"{source.name} does not match its recorded sha256 (changed since the run?)")
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
