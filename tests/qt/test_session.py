"""The window's results live in a session folder until saved: Save copies exactly what ran, and unsaved
results are never dropped without asking."""

import json

from astropy.io import fits
from PyQt6.QtWidgets import QMessageBox

from ccdgui.model.files import sha256_of

from .conftest import wait_idle


def calibrated_window(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    assert window.unsaved and window.last_result.outdir.is_dir()
    return window


def test_results_are_shown_from_the_session_files_and_save_copies_what_ran(qtbot, window, tmp_path):
    calibrated_window(qtbot, window)
    run = window.last_result.outdir
    assert all(f.path is not None and f.path.is_relative_to(run) for f in window.calibrated + window.masters)
    window.recipe.combine = "median"  # changed after the run: the saved record must not say so
    window.save_results(tmp_path / "saved")
    wait_idle(qtbot, window)
    record = json.loads((tmp_path / "saved" / "recipe.json").read_text())
    assert record["recipe"]["combine"] == "average"
    assert "average" in str(fits.getheader(tmp_path / "saved/masters/master_bias.fits")["HISTORY"])
    for output in record["outputs"]:
        assert sha256_of(tmp_path / "saved" / output["file"]) == output["sha256"]
    assert not window.unsaved


def test_closing_with_unsaved_results_asks_and_cancel_keeps_the_window(qtbot, window, monkeypatch):
    calibrated_window(qtbot, window)
    window.ask_before_discarding = True
    session = window.session_folder()
    answers = []

    def answer(button):
        def question(*args, **kwargs):
            answers.append(args[2])
            return button
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    assert not window.close()
    assert window.isVisible() and session.is_dir() and "not saved" in answers[-1]
    window.simulate()  # Simulate asks too, and Cancel keeps the results
    assert not window.runner.busy and window.last_result is not None
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Discard))
    assert window.close()
    assert not session.exists()
    assert len(answers) == 3
