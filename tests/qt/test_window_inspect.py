"""Looking at a night: notes in sight, drag and drop, readout labels while blinking, frames filling
their views with DS9's keys and our own menu, the first view of a big frame from a decimated copy,
histogram bins on integers, and the library's temperature and binning."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from ccdgui.model import display, fitsio
from ccdgui.model.simulate import SimParams, simulate_night
from ccdgui.qt.library_panel import column

from .conftest import wait_idle

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"


def write_night(folder: Path, **kwargs) -> list[str]:
    params = dict(nx=48, ny=32, n_bias=2, n_dark=2, n_flat=2, n_light=2)
    params.update(kwargs)
    frames = simulate_night(SimParams(**params)).frames
    for frame in frames:
        fitsio.write_frame(frame, folder / frame.name)
    return [f.name for f in frames]


def write_fits(path: Path, value: int, **header) -> None:
    hdu = fits.PrimaryHDU(np.full((20, 30), value, np.uint16))
    hdu.header.update(header)
    hdu.writeto(path)


# --- notes ------------------------------------------------------------------------------------------------
def test_notes_panel_lists_every_reason_and_clicking_shows_the_frame(qtbot, window, tmp_path):
    names = write_night(tmp_path, n_flat=0)  # lights get no flat: a plan note each
    (tmp_path / "broken.fits").write_bytes(b"garbage" * 50)
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    notes = window.notes.notes
    texts = [f"{n.frame}: {n.text}" for n in notes]
    assert any(n.source == "quarantine" and n.frame == "broken.fits" for n in notes), texts
    lights = [n for n in names if n.startswith("light")]
    for light in lights:
        assert any(n.frame == light and "no master flat" in n.text for n in notes), texts
    assert len(texts) == len(set(texts))  # each once
    assert window.notes_button.isVisible() and window.notes_button.text() == f"{len(notes)} note(s)"
    assert window.notes.count() == len(notes)
    assert window.notes.item(0).text() == f"{notes[0].frame}: {notes[0].text}"
    window.library_dock.raise_()
    window.notes_button.click()
    assert window.notes_dock.isVisible()
    row = next(i for i in range(len(notes)) if notes[i].frame == lights[1])
    window.notes.itemClicked.emit(window.notes.item(row))
    assert window.current is not None and window.current.name == lights[1]


def test_a_skipped_light_says_why_in_its_status(qtbot, window, tmp_path):
    write_fits(tmp_path / "light.fits", 1000, IMAGETYP="Light Frame", EXPTIME=30.0, FILTER="r")
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    item = next(i for i in window.library.frame_items() if i.text(0) == "light.fits")
    status = item.text(column("status"))
    assert status.startswith("will be skipped (") and "no master" in status
    assert any(n.frame == "light.fits" and "no master matches it" in n.text for n in window.notes.notes)


def test_hst_raw_file_is_not_called_already_calibrated(qtbot, window, tmp_path):
    source = SHARED / "odd_singles" / "o4sp040b0_raw.fits"
    if not source.exists():
        pytest.skip("shared data not present")
    target = tmp_path / source.name
    target.write_bytes(source.read_bytes())
    header = fits.getheader(target)
    assert header.get("BIASCORR") == "PERFORM" or header.get("DARKCORR") in ("PERFORM", "OMIT")
    window.open_paths([target])
    wait_idle(qtbot, window)
    assert window.raw
    assert not any("already calibrated" in n.text for n in window.notes.notes)


# --- drag and drop ----------------------------------------------------------------------------------------
def drop_event(urls: list[QUrl]) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls(urls)
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    event._mime = mime  # keep the data alive as long as the event
    return event


def test_dropping_a_folder_and_files_opens_them(qtbot, window, tmp_path):
    night = tmp_path / "night"
    night.mkdir()
    names = write_night(night)
    window.dropEvent(drop_event([QUrl.fromLocalFile(str(night))]))
    wait_idle(qtbot, window)
    assert sorted(f.name for f in window.raw) == sorted(names)
    window.dropEvent(drop_event([QUrl.fromLocalFile(str(night / names[0])),
                                 QUrl.fromLocalFile(str(night / names[1]))]))
    wait_idle(qtbot, window)
    assert sorted(f.name for f in window.raw) == sorted(names[:2])


def test_dropping_remote_or_missing_things_is_ignored(qtbot, window, tmp_path):
    window.simulate()
    wait_idle(qtbot, window)
    before = list(window.raw)
    assert window.dropped_paths(drop_event([QUrl("https://example.org/a.fits")]).mimeData()) == []
    event = drop_event([QUrl.fromLocalFile(str(tmp_path / "gone.fits"))])
    window.dropEvent(event)
    assert not event.isAccepted()
    assert window.raw == before and not window.runner.busy


# --- readout and blink --------------------------------------------------------------------------------------
def test_readout_labels_are_right_in_every_view_and_blink_state(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    window.calibrate()
    wait_idle(qtbot, window)
    raw = window.raw_view.frame
    calibrated = window.calibrated_view.frame
    assert raw.name == calibrated.name
    x, y = 10, 7
    text = window.readout_text(x, y)
    assert text.startswith("x=11 y=8")
    assert f"raw light {raw.data[y, x]:.6g}" in text and f"calibrated {calibrated.data[y, x]:.6g}" in text
    window.blink()
    text = window.readout_text(x, y)
    assert "raw light" not in text and text.count("calibrated") == 2
    qtbot.waitUntil(lambda: "raw" not in window.histogram.legend_label.text())
    assert "raw" in window.raw_view.frame_name or "calibrated" in window.raw_view.frame_name
    window.blink()
    assert f"raw light {raw.data[y, x]:.6g}" in window.readout_text(x, y)
    qtbot.waitUntil(lambda: "raw light" in window.histogram.legend_label.text())
    # a master: labelled by its kind, a master flat's values are relative
    flat = next(f for f in window.masters if f.kind.value == "master flat")
    window.library.select_frame(flat)
    assert "master flat" in window.readout_text(x, y)
    qtbot.waitUntil(lambda: "master flat" in window.histogram.legend_label.text())
    assert "relative" in window.histogram.plot_widget.getAxis("bottom").labelText


def test_readout_providers_and_pixel_clicks_reach_other_widgets(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    window.add_readout_provider(lambda frame, x, y: f"{frame.name}@{x},{y}")
    window.add_readout_provider(lambda frame, x, y: 1 / 0)  # a broken one does not break the readout
    text = window.readout_text(3, 4)
    assert f"{window.raw_view.frame.name}@3,4" in text and "(ZeroDivisionError)" in text
    clicks = []
    window.pixel_clicked.connect(lambda x, y, frame: clicks.append((x, y, frame)))
    window.raw_view.clicked.emit(5, 6)
    assert clicks == [(5, 6, window.raw_view.frame)]


# --- the image view ----------------------------------------------------------------------------------------
@pytest.fixture
def view(qtbot):
    from ccdgui.qt.image_view import ImageView

    widget = ImageView("test")
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    qtbot.wait(20)
    return widget


def shown_rect(view):
    (x0, x1), (y0, y1) = view.plot.getViewBox().viewRange()
    return x0, x1, y0, y1


def test_a_frame_fills_its_view_without_axes_and_stays_fitted_when_resized(qtbot, view):
    from ccdgui.qt.image_view import lookup_table

    data = np.arange(300 * 200, dtype=np.float32).reshape(200, 300)
    view.show_frame(data, "wide", (0.0, 1.0), lookup_table("linear", "grey"))
    qtbot.wait(20)
    assert not view.plot.getAxis("left").isVisible() and not view.plot.getAxis("bottom").isVisible()
    x0, x1, y0, y1 = shown_rect(view)
    assert x0 <= 0.5 and x1 >= 299.5 and y0 <= 0.5 and y1 >= 199.5   # the whole frame
    assert min((x1 - x0) / 300, (y1 - y0) / 200) == pytest.approx(1.0, abs=0.02)  # and no more
    view.resize(250, 500)  # narrowed: still the whole frame, not clipped
    qtbot.wait(30)
    x0, x1, y0, y1 = shown_rect(view)
    assert x0 <= 0.5 and x1 >= 299.5 and y0 <= 0.5 and y1 >= 199.5
    view.set_ruler(True)
    assert view.plot.getAxis("left").isVisible()


def test_keys_pan_and_zoom_as_in_ds9(qtbot, view):
    from ccdgui.qt.image_view import PAN_STEP, lookup_table

    data = np.zeros((1000, 1000), np.float32)
    view.show_frame(data, "x", (0.0, 1.0), lookup_table("linear", "grey"))
    view.one_to_one()
    qtbot.wait(20)
    assert view.zoom_factor() == pytest.approx(1.0, rel=0.02) and not view.fitted
    x0, x1, _, _ = shown_rect(view)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    moved = shown_rect(view)
    assert moved[0] - x0 == pytest.approx(PAN_STEP * (x1 - x0), rel=0.01)
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert shown_rect(view)[2] > moved[2]
    view.fit()
    assert view.fitted


def test_our_context_menu_not_pyqtgraphs(qtbot, view):
    from ccdgui.qt.image_view import lookup_table

    view.show_frame(np.zeros((100, 100), np.float32), "x", (0.0, 1.0), lookup_table("linear", "grey"))
    texts = [a.text() for a in view.context_menu((9, 19)).actions() if a.text()]
    assert texts[0] == "Copy coordinates  x=10 y=20 (FITS)"
    assert any(t.startswith("Set levels from the 100") for t in texts) and "Export view as PNG…" in texts
    assert not any(t in ("Transforms", "Downsample", "Points", "View All") for t in texts)
    assert not view.plot.menuEnabled()
    boxes = []
    view.levels_from_box.connect(lambda *box: boxes.append(box))
    actions = view.context_menu((9, 19)).actions()
    next(a for a in actions if a.text().startswith("Set levels from the")).trigger()
    assert boxes == [(9 - 50, 9 + 50, 19 - 50, 19 + 50)]


def test_levels_from_a_box_use_the_box_pixels(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    data = window.raw_view.data
    window.levels_from_box(window.raw_view, 0, 20, 0, 10)
    expected = display.interval_limits(data[0:10, 0:20], window.display)
    assert window.raw_view.levels == pytest.approx(expected)


def test_a_big_frame_is_shown_first_from_a_decimated_copy_then_from_its_pyramid(qtbot, view):
    from ccdgui.qt.image_view import lookup_table

    data = np.random.default_rng(4).normal(1000, 10, (4096, 4096)).astype(np.float32)
    data[100, 100] = np.nan
    before = data.copy()
    view.show_frame(data, "big", (950.0, 1050.0), lookup_table("linear", "grey"))
    first = view.drawn_shape()
    assert max(first) <= 1100 and view.image.image is not None and np.isfinite(view.image.image).all()
    box = view.image.mapRectToView(view.image.boundingRect())
    assert box.width() == pytest.approx(4096, abs=8)
    qtbot.waitUntil(lambda: view.is_ready, timeout=10000)
    assert view._pyramid is not None and view._preview is None
    np.testing.assert_array_equal(np.isnan(data), np.isnan(before))  # the frame is never modified
    view.zoom(16)
    qtbot.wait(20)
    assert view._window[0] == 0  # full resolution when magnified


def test_a_newer_frame_wins_over_a_pyramid_still_being_built(qtbot, view):
    from ccdgui.qt.image_view import lookup_table

    big = np.ones((4096, 4096), np.float32)
    view.show_frame(big, "big", (0.0, 2.0), lookup_table("linear", "grey"))
    small = np.full((64, 64), 5.0, np.float32)
    view.show_frame(small, "small", (0.0, 10.0), lookup_table("linear", "grey"))
    qtbot.wait(600)
    assert view.data is small and view._pyramid.levels[0].shape == (64, 64)


# --- histogram and library ---------------------------------------------------------------------------------
def test_histogram_of_integer_data_has_no_comb_of_empty_bins():
    data = np.random.default_rng(5).poisson(40, (300, 300)).astype(np.float32)
    hist = display.histogram(data, 20, 60)
    assert np.allclose(hist.edges - np.floor(hist.edges), 0.5)     # edges between integers
    assert set(np.round(np.diff(hist.edges), 6)) == {1.0}
    assert (hist.counts[3:-3] > 0).all()
    wide = display.histogram(data * 7, 0, 5000, max_bins=100)      # wide range: whole-number bins
    widths = np.diff(wide.edges)
    assert len(widths) <= 100 and np.allclose(widths, np.round(widths)) and (widths >= 1).all()
    floats = display.histogram(data + 0.25)
    assert not np.allclose(floats.edges - np.floor(floats.edges), 0.5)


def test_library_groups_and_columns_show_temperature_and_binning(qtbot, window, tmp_path):
    for index, temp in enumerate((-5.0, -5.0, -10.0)):
        write_fits(tmp_path / f"dark_{index}.fits", 100 + index, IMAGETYP="Dark Frame", EXPTIME=60.0,
                   **{"CCD-TEMP": temp})
    write_fits(tmp_path / "dark_bin2.fits", 100, IMAGETYP="Dark Frame", EXPTIME=60.0, XBINNING=2,
               YBINNING=2, GAIN=1.5, **{"CCD-TEMP": -10.0})
    window.open_paths([tmp_path])
    wait_idle(qtbot, window)
    dark_group = next(window.library.topLevelItem(i) for i in range(window.library.topLevelItemCount())
                      if window.library.topLevelItem(i).text(0).startswith("Dark"))
    subgroups = sorted(dark_group.child(i).text(0) for i in range(dark_group.childCount()))
    assert subgroups == ["60 s, −10 °C (1)", "60 s, −10 °C, 2×2 (1)", "60 s, −5 °C (2)"]
    item = next(i for i in window.library.frame_items() if i.text(0) == "dark_bin2.fits")
    assert item.text(column("temp")) == "−10 °C" and item.text(column("binning")) == "2×2"
    assert item.text(column("gain")) == "1.5" and not window.library.isColumnHidden(column("gain"))
    assert window.library.isColumnHidden(column("offset"))


def test_a_lights_tooltip_names_its_masters_and_why(qtbot, window):
    window.simulate()
    wait_idle(qtbot, window)
    light = next(i for i in window.library.frame_items() if i.text(0).startswith("light"))
    tip = light.toolTip(column("status"))
    assert "bias: master_bias.fits" in tip and "flat: master_flat_r.fits" in tip and "frame(s)" in tip


def test_hst_calibration_switches_mean_to_do_unless_complete():
    from ccdgui.model.library import calibration_markers

    header = fits.Header({"BIASCORR": "PERFORM", "DARKCORR": "OMIT", "FLATCORR": "COMPLETE"})
    before = header.copy()
    assert calibration_markers(header) == ["FLATCORR"]
    assert calibration_markers(fits.Header({"SUBBIAS": "bias.fits"})) == ["SUBBIAS"]
    assert header == before
