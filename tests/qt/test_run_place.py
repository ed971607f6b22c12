"""Run ▸ Where to run…: the window calibrates on a Dask cluster with the same bytes as here, says where
it ran, refuses a simulated night for a cluster with the reason, and remembers the choice."""

import json
from importlib.util import find_spec

import pytest
from PyQt6.QtWidgets import QMessageBox

from ccdgui.model.place import HERE
from ccdgui.qt.run_place import RunPlaceDialog

from .conftest import wait_idle

needs_distributed = pytest.mark.skipif(find_spec("distributed") is None,
                                       reason="pip install 'ccdgui[distributed]'")


def test_the_dialog_gives_canonical_places_and_keeps_a_bad_address_open(qtbot):
    dialog = RunPlaceDialog("local:3")
    qtbot.addWidget(dialog)
    assert dialog.local.isChecked() and dialog.workers.value() == 3 and dialog.place() == "local:3"
    dialog.address.setText("head:9000")
    dialog.remote.setChecked(True)
    assert dialog.place() == "tcp://head:9000"
    dialog.address.setText("http://head")
    dialog.accept()
    assert dialog.result() == 0 and "not a scheduler address" in dialog.error.text()
    dialog.here.setChecked(True)
    assert dialog.place() == HERE


def test_the_place_is_shown_and_remembered(qtbot, window, settings):
    assert window.place == HERE and window.place_label.text() == "Runs on this computer"
    window.set_place("local:2")
    assert window.place_label.text() == "Runs on a local Dask cluster of 2 worker processes"
    from ccdgui.qt.main_window import MainWindow

    again = MainWindow(settings=settings)
    qtbot.addWidget(again)
    assert again.place == "local:2"
    settings.setValue("run/place", "nonsense address!")
    third = MainWindow(settings=settings)
    qtbot.addWidget(third)
    assert third.place == HERE


def test_a_simulated_night_is_refused_for_a_cluster_with_the_reason(qtbot, window, monkeypatch):
    told = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: told.append(args[2]))
    window.simulate()
    wait_idle(qtbot, window)
    window.set_place("local:2")
    window.calibrate()
    assert not window.runner.busy and window.last_result is None
    assert "simulated" in told[0] and "This computer" in told[0]
    assert "simulated" in window.statusBar().currentMessage()


@needs_distributed
def test_a_real_night_calibrated_on_a_local_cluster_equals_the_run_here(qtbot, window, shared_data):
    night = shared_data("umd_st8_ngc520/2018-10-19_r")
    window.open_paths([night])
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    here = {o["file"]: o["sha256"] for o in window.last_result.outputs}
    window.set_place("local:2")
    window.calibrate()
    wait_idle(qtbot, window, timeout=120000)
    assert "2 workers" in window.statusBar().currentMessage()
    record = json.loads((window.last_result.outdir / "recipe.json").read_text())
    assert record["cluster"]["workers"] == 2 and record["cluster"]["requested"] == "local:2"
    assert {o["file"]: o["sha256"] for o in window.last_result.outputs} == here
    assert len(here) == 7
