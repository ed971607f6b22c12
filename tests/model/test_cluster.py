"""The same plan on a Dask cluster (a LocalCluster of two worker processes): the same bytes as the local
engine, the cluster in recipe.json, and its faults in one line."""

import json
import os
import signal
import socket
import sys
import time
from importlib.util import find_spec

import pytest
from astropy.io import fits

import ccdgui
from ccdgui.cli import main
from ccdgui.model import execute, intake
from ccdgui.model.cluster import ClusterEngine, ClusterError
from ccdgui.model.plan import make_plan
from ccdgui.model.progress import Cancelled, CancelToken, drive
from ccdgui.model.recipe import Recipe

needs_distributed = pytest.mark.skipif(find_spec("distributed") is None,
                                       reason="pip install 'ccdgui[distributed]'")

SMALL = ["--size", "256", "256", "--n-bias", "3", "--n-dark", "3", "--n-flat", "3", "--n-light", "3",
         "--dark-exposure", "60", "--light-exposure", "30", "--cosmic-rays", "20", "--seed", "5"]


@pytest.fixture(scope="module")
def engine():
    """Two one-thread worker processes; 64-row combine tasks, so a 256-row master is four tasks."""
    with ClusterEngine("local:2", task_rows=64) as started:
        yield started


@pytest.fixture
def night(tmp_path):
    """A simulated night with an overscan strip and a trim section on every frame."""
    folder = tmp_path / "night"
    assert main(["simulate", str(folder), *SMALL]) == 0
    for path in (folder / "truth").iterdir():
        path.unlink()
    (folder / "truth").rmdir()
    for path in folder.glob("*.fits"):
        with fits.open(path, mode="update") as hdul:
            hdul[0].header["BIASSEC"] = "[1:4,1:256]"
            hdul[0].header["TRIMSEC"] = "[5:256,1:250]"
    return folder


def reduce(folder, outdir, recipe, engine=None, cancel=None, report=None):
    frames = drive(intake.intake([folder], medians=False)).frames
    plan = make_plan(frames, recipe, root=folder)
    return drive(execute.execute(plan, recipe, outdir, cancel, engine=engine), report)


def digests(result):
    return {o["file"]: o["sha256"] for o in result.outputs}


def full_recipe() -> Recipe:
    return Recipe(weights="inverse_variance", hot_pixels=True, flat_defects=True, cosmic_rays="median",
                  flat_min_value=0.5)


@needs_distributed
@pytest.mark.parametrize("sections", [True, False], ids=["overscan-trim", "rows-from-files"])
def test_a_simulated_night_on_the_cluster_is_bit_for_bit_the_local_one(engine, night, tmp_path, sections):
    if not sections:  # inputs then stay in their files, combined from their rows
        for path in night.glob("*.fits"):
            with fits.open(path, mode="update") as hdul:
                del hdul[0].header["BIASSEC"], hdul[0].header["TRIMSEC"]
    recipe = full_recipe()
    here = reduce(night, tmp_path / "here", recipe)
    there = reduce(night, tmp_path / "there", recipe, engine)
    assert len(here.outputs) == 6 and digests(there) == digests(here)
    assert [o["file"] for o in there.outputs] == [o["file"] for o in here.outputs]
    assert there.record["values"] == here.record["values"]
    assert there.record["values"]["master_flat_r.fits"]["scales"]  # flats scaled
    assert there.problems == here.problems
    assert all(light["dark_scale"] == 0.5 for light in there.record["plan"]["lights"])
    cluster = json.loads((tmp_path / "there" / "recipe.json").read_text())["cluster"]
    assert cluster["workers"] == 2 and cluster["requested"] == "local:2"
    assert cluster["worker_versions"][0]["ccdgui"] == ccdgui.__version__
    assert not list((tmp_path / "there").rglob("*.part"))


@needs_distributed
def test_the_real_night_on_the_cluster_is_bit_for_bit_the_local_one(engine, shared_data, tmp_path):
    folder = shared_data("umd_st8_ngc520")
    here = reduce(folder, tmp_path / "here", Recipe())
    there = reduce(folder, tmp_path / "there", Recipe(), engine)
    assert len(here.outputs) == 12 and digests(there) == digests(here)
    assert there.record["values"] == here.record["values"]


@needs_distributed
def test_a_worker_killed_during_the_run_changes_nothing(engine, night, tmp_path):
    recipe = Recipe(weights="inverse_variance")
    here = reduce(night, tmp_path / "here", recipe)
    pids = list(engine.client.run(os.getpid).values())
    killed = []

    def kill_one(fraction, message):
        if not killed and message.startswith("Combining"):
            os.kill(pids[0], signal.SIGKILL)
            killed.append(message)

    there = reduce(night, tmp_path / "there", recipe, engine, report=kill_one)
    assert killed and digests(there) == digests(here)
    assert not list((tmp_path / "there").rglob("*.part"))
    deadline = time.monotonic() + 20  # the nanny brings the worker back for the next tests
    while len(engine.client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids[0] not in engine.client.run(os.getpid).values()  # it was killed, and replaced


@needs_distributed
def test_cancel_stops_the_cluster_run(engine, night, tmp_path):
    cancel = CancelToken()

    def stop(fraction, message):
        if message.startswith("Combining"):
            cancel.cancel()

    with pytest.raises(Cancelled):
        reduce(night, tmp_path / "out", Recipe(), engine, cancel, stop)
    assert not (tmp_path / "out" / execute.LOCK_NAME).exists()
    assert not (tmp_path / "out" / "recipe.json").exists()


@needs_distributed
def test_inputs_a_worker_cannot_read_are_named(engine, night, tmp_path):
    frames = drive(intake.intake([night], medians=False)).frames
    plan = make_plan(frames, Recipe(), root=night)
    (night / "flat_r_001.fits").unlink()
    with pytest.raises(ClusterError, match=r"worker tcp://\S+ cannot read \S*flat_r_001.fits"):
        drive(execute.execute(plan, Recipe(), tmp_path / "out", engine=engine))


@needs_distributed
def test_a_version_mismatch_is_refused_with_the_versions_named(engine, monkeypatch):
    real = ccdgui.__version__
    monkeypatch.setattr(ccdgui, "__version__", "9.9.9")
    with pytest.raises(ClusterError, match=rf"ccdgui {real} on tcp://\S+ but 9.9.9 here"):
        engine.check_versions()


@needs_distributed
def test_an_unreachable_scheduler_is_one_line_and_exit_2_quickly(night, tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    assert main(["reduce", str(night), str(tmp_path / "out"), "--quiet",
                 "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err[0]


def test_without_distributed_the_flag_says_how_to_install_it(night, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["reduce", str(night), str(tmp_path / "out"), "--scheduler", "local:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'ccdgui[distributed]'" in err[0]


def test_the_scheduler_is_where_to_run_not_part_of_the_recipe():
    assert "scheduler" not in Recipe().to_dict()


@needs_distributed
def test_reduce_with_scheduler_local_runs_there_and_records_it(night, tmp_path):
    assert main(["reduce", str(night), str(tmp_path / "here"), "--quiet"]) == 0
    assert main(["reduce", str(night), str(tmp_path / "there"), "--quiet", "--scheduler", "local:1"]) == 0
    here, there = (json.loads((tmp_path / name / "recipe.json").read_text()) for name in ("here", "there"))
    assert there["outputs"] == here["outputs"] and "cluster" not in here
    assert there["cluster"]["workers"] == 1 and "scheduler" not in there["recipe"]


@needs_distributed
def test_library_masters_on_the_cluster_are_bit_for_bit_the_local_ones(engine, shared_data, tmp_path):
    """The UMD r night's bias and darks from the master library, its lights and flats tonight: the
    cluster's tasks read the library's files and give the local engine's bytes; a changed library
    master is refused there too, with its lights noted."""
    from ccdgui.model import masterlib

    night = shared_data("umd_st8_ngc520/2018-10-19_r")
    whole = drive(intake.intake([night], medians=False)).frames
    built = make_plan(whole, Recipe(), root=night)
    drive(execute.execute(built, Recipe(), tmp_path / "first"))
    with masterlib.Library(tmp_path / "lib" / "library.sqlite") as lib:
        lib.add_run(built, tmp_path / "first")
        entries = [e for e in lib.entries() if e.kind != "flat"]
    tonight = [f for f in whole if f.kind.value in ("light", "flat")]
    plan = make_plan(tonight, Recipe(), root=night, masters=entries)
    assert {m.name for m in plan.library_masters} == {"master_bias.fits", "master_dark_300s.fits",
                                                      "master_dark_3s.fits"}
    here = drive(execute.execute(plan, Recipe(), tmp_path / "here"))
    there = drive(execute.execute(plan, Recipe(), tmp_path / "there", engine=engine))
    assert digests(there) == digests(here) and len(digests(here)) == 4  # the flat and three lights
    assert there.record["values"] == here.record["values"]
    assert there.record["library_masters"] == here.record["library_masters"]
    bias = next(e for e in entries if e.kind == "bias")
    os.chmod(bias.path, 0o644)
    with open(bias.path, "r+b") as handle:
        handle.seek(20000)
        handle.write(b"X")
    plan = make_plan(tonight, Recipe(), root=night, masters=entries)
    changed = drive(execute.execute(plan, Recipe(), tmp_path / "changed", engine=engine))
    assert any("library master" in p and "refused" in p for p in changed.problems)
    assert not changed.calibrated
