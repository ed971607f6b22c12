"""The stack inspector and the QA panel, standalone, filled from a real (simulated) run."""

import numpy as np
import pytest
from astropy.io import fits
from PyQt6.QtCore import Qt

from ccdgui.cli import main
from ccdgui.model.inspect import Inspector
from ccdgui.qt.qa_panel import OUTLIER_BRUSH, QAPanel
from ccdgui.qt.stack_inspector import StackInspector

SMALL = ["--size", "80", "60", "--n-bias", "5", "--n-dark", "3", "--n-flat", "4", "--n-light", "1",
         "--seed", "8", "--read-noise", "10"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("widgets")
    assert main(["simulate", str(base / "night"), *SMALL]) == 0
    with fits.open(base / "night" / "bias_002.fits", mode="update") as hdul:
        hdul[0].data[9, 19] += 3000                               # x = 20, y = 10 (FITS)
    with fits.open(base / "night" / "flat_r_001.fits", mode="update") as hdul:
        hdul[0].data = (hdul[0].data + 6000 * np.exp(-np.arange(80) / 15.0)[None, :]).astype(np.float32)
    assert main(["reduce", str(base / "night"), str(base / "out"), "--quiet"]) == 0
    return base / "out"


def test_the_inspector_plots_the_stack_names_frames_and_asks_for_them(qtbot, run):
    widget = StackInspector()
    qtbot.addWidget(widget)
    stack = Inspector(run).stack("master_bias.fits", 20, 10)
    widget.set_stack(stack)
    x, y = widget.scatter.getData()
    assert list(x) == [1, 2, 3, 4, 5] and np.allclose(y, stack.values)
    assert "bias_002.fits" in widget.describe(2) and "sigma high" in widget.describe(2)
    assert "4 of 5 values" in widget.summary.text() and "equals the master" in widget.summary.text()
    assert "rejected: σ high" in widget.legend.text()
    with qtbot.waitSignal(widget.frame_requested) as signal:
        widget._on_clicked(widget.scatter, [widget.scatter.points()[2]])
    assert signal.args[0].endswith("bias_002.fits")
    widget.clear()
    assert widget.summary.text() == "" and widget.scatter.getData()[0].size in (0, 5)


def test_a_lights_masters_are_selectable(qtbot, run):
    widget = StackInspector()
    qtbot.addWidget(widget)
    inspector = Inspector(run)
    widget.set_stacks([inspector.stack(name, 1, 1) for name in inspector.light_masters("light_r_000.fits")])
    assert widget.selector.count() == 3 and not widget.selector.isHidden()
    widget.selector.setCurrentIndex(2)
    assert "master_flat_r.fits" in widget.title.text() and len(widget.scatter.getData()[0]) == 4


def test_the_qa_panel_shows_figures_and_highlights_the_outlier(qtbot, run):
    panel = QAPanel()
    qtbot.addWidget(panel)
    panel.load_record(run / "recipe.json")
    names = [panel.tree.topLevelItem(i).text(0) for i in range(panel.tree.topLevelItemCount())]
    assert names == ["master_bias.fits", "master_dark_60s.fits", "master_flat_r.fits"]
    flat = panel.tree.topLevelItem(2)
    frames = panel._child(flat, "frames")
    outlier = next(frames.child(i) for i in range(frames.childCount()) if frames.child(i).text(2))
    assert outlier.text(0) == "flat_r_001.fits" and outlier.background(0) == OUTLIER_BRUSH
    assert "warning" in panel.status.text()
    with qtbot.waitSignal(panel.frame_requested) as signal:
        panel.tree.itemDoubleClicked.emit(outlier, 0)
    assert signal.args == ["flat_r_001.fits"]
    with qtbot.waitSignal(panel.master_selected) as signal:
        panel.tree.setCurrentItem(flat.child(0))
    assert signal.args == ["master_flat_r.fits"]
    bias = panel.tree.topLevelItem(0)
    labels = {bias.child(i).data(0, Qt.ItemDataRole.DisplayRole) for i in range(bias.childCount())}
    assert "read noise" in labels


def test_the_qa_panel_from_headers_and_from_nothing(qtbot, run, tmp_path):
    panel = QAPanel()
    qtbot.addWidget(panel)
    panel.load_masters(sorted((run / "masters").glob("*.fits")) + [tmp_path / "missing.fits"])
    assert panel.tree.topLevelItemCount() == 3 and "missing.fits" in panel.status.text()
    panel.load_record(tmp_path / "nothing.json")
    assert panel.tree.topLevelItemCount() == 0 and "cannot read" in panel.status.text()
