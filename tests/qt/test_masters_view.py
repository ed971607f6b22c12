"""The Masters view (the library as a sortable, filterable table with QA figures; add, remove, check)
and a light's ranked choice of masters, recorded in the recipe and honoured by the plan."""

import os

import numpy as np
from astropy.io import fits
from PyQt6.QtCore import Qt

from ccdgui.model import fitsio, masterlib, plan
from ccdgui.model.recipe import Recipe
from ccdgui.qt.masters_view import COLUMNS, MasterChoice, MastersView, record_choice


def write(folder, name, imagetyp, exptime, temp=-10.0, camera="Cam A", **extra):
    header = fits.Header()
    header["IMAGETYP"], header["EXPTIME"], header["SET-TEMP"] = imagetyp, exptime, temp
    header["INSTRUME"], header["DATE-OBS"], header["NCOMBINE"] = camera, "2026-11-02T22:00:00", 7
    for key, item in extra.items():
        header[key] = item
    folder.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.full((6, 8), 10.0, np.float32), header).writeto(folder / name)
    return folder / name


def column_texts(view, name):
    col = [view.table.horizontalHeaderItem(i).text() for i in range(view.table.columnCount())].index(name)
    return [view.table.item(row, col).text() for row in range(view.table.rowCount())]


def test_the_table_sorts_filters_shows_qa_and_checks(qtbot, tmp_path):
    files = tmp_path / "in"
    write(files, "master_dark_300s.fits", "MASTER DARK", 300.0, QANOISE=2.5)
    write(files, "master_dark_30s.fits", "MASTER DARK", 30.0, QANOISE=11.0)
    write(files, "master_bias_b.fits", "MASTER BIAS", 0.0, camera="Cam B")
    lib = masterlib.Library(tmp_path / "lib.sqlite")
    view = MastersView(lib)
    qtbot.addWidget(view)
    assert view.table.rowCount() == 0 and view.summary.text().startswith("0 of 0")
    with qtbot.waitSignal(view.changed):
        result = view.add_files([files])
    assert len(result.added) == 3 and view.table.rowCount() == 3
    headers = [view.table.horizontalHeaderItem(i).text() for i in range(view.table.columnCount())]
    assert headers == [*COLUMNS, "QANOISE"]
    col = COLUMNS.index("Exposure")
    view.table.sortItems(col, Qt.SortOrder.AscendingOrder)
    assert column_texts(view, "Exposure") == ["0 s", "30 s", "300 s"]  # by number, not text
    view.table.sortItems(len(COLUMNS), Qt.SortOrder.AscendingOrder)
    assert column_texts(view, "QANOISE") == ["2.5", "11", ""]
    view.kind_box.setCurrentText("dark")
    assert sorted(column_texts(view, "Name")) == ["master_dark_300s.fits", "master_dark_30s.fits"]
    view.kind_box.setCurrentText("All")
    view.camera_box.setCurrentText("Cam B")
    assert column_texts(view, "Name") == ["master_bias_b.fits"]
    assert column_texts(view, "Set T") == ["−10.0 °C"]
    view.camera_box.setCurrentText("All")
    entry = lib.find("master_dark_30s")
    os.chmod(entry.path, 0o644)  # library copies are read-only
    with open(entry.path, "r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\1\1\1\1")
    problems = view.check()
    assert len(problems) == 1 and "master_dark_30s.fits: changed" in problems[0]
    statuses = dict(zip(column_texts(view, "Name"), column_texts(view, "Status"), strict=True))
    assert statuses == {"master_dark_300s.fits": "ok", "master_dark_30s.fits": "changed",
                        "master_bias_b.fits": "ok"}
    view.table.selectRow(column_texts(view, "Name").index("master_dark_30s.fits"))
    assert [e.name for e in view.remove_selected(confirm=False)] == ["master_dark_30s.fits"]
    assert view.table.rowCount() == 2 and (files / "master_dark_30s.fits").exists()
    lib.close()


def test_a_light_s_ranked_choice_is_recorded_in_the_recipe_and_honoured(qtbot, tmp_path):
    night = tmp_path / "night"
    write(night, "light.fits", "Light Frame", 300.0, temp=-9.6)
    write(night, "dark_1.fits", "Dark Frame", 300.0, NCOMBINE=1)
    write(night, "dark_2.fits", "Dark Frame", 300.0, NCOMBINE=1)
    lib_files = tmp_path / "libfiles"
    entries = [masterlib.describe_file(write(lib_files, "master_dark_300s.fits", "MASTER DARK", 300.0)),
               masterlib.describe_file(write(lib_files, "master_dark_600s.fits", "MASTER DARK", 600.0)),
               masterlib.describe_file(write(lib_files, "master_dark_b.fits", "MASTER DARK", 300.0,
                                             camera="Cam B"))]
    frames, _ = fitsio.scan_folder(night, lazy=True)
    recipe = Recipe()
    made = plan.make_plan(frames, recipe, root=night, masters=entries)
    widget = MasterChoice()
    qtbot.addWidget(widget)
    widget.show_frame(made, made.lights[0])
    darks = widget.lists["dark"]
    assert darks.references()[0] == "master_dark_300s.fits"  # tonight's first (the plan's choice)
    assert darks.tree.topLevelItem(0).text(0) == "✔"
    assert [darks.tree.topLevelItem(i).text(2) for i in range(3)] == ["exact", "exact", "nearby"]
    assert darks.tree.topLevelItem(3).text(2) == "refused"
    assert "another camera (Cam B vs Cam A)" in darks.tree.topLevelItem(3).text(3)
    library_ref = f"library:{entries[1].sha256}"
    darks.select(library_ref)
    with qtbot.waitSignal(widget.chosen) as signal:
        darks.use_button.click()
    assert signal.args == ["light.fits", "dark", library_ref]
    record_choice(recipe, *signal.args)
    assert recipe.master_overrides == {"light.fits:dark": library_ref}
    made = plan.make_plan(frames, recipe, root=night, masters=entries)
    assert made.lights[0].dark.library is entries[1] and made.lights[0].dark_factor() == 0.5
    assert made.to_dict()["lights"][0]["choices"]["dark"]["by_user"] is True
    widget.show_frame(made, made.lights[0])
    assert darks.tree.topLevelItem(0).text(0) == "✔ yours"
    with qtbot.waitSignal(widget.chosen) as signal:
        darks.auto_button.click()
    record_choice(recipe, *signal.args)
    assert recipe.master_overrides == {}
    refused_item = darks.tree.topLevelItem(3)
    assert not refused_item.flags() & Qt.ItemFlag.ItemIsSelectable
