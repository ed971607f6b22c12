"""The dock's recipe controls are built from the recipe schema, carry its ranges, and never show a value
other than the recipe's (an unknown combo value is shown as such, a bad entry is undone)."""

import pytest
from PyQt6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from ccdgui.model.recipe import DOCK_GROUPS, OPTIONS, Recipe
from ccdgui.model.simulate import SimParams
from ccdgui.qt.param_dock import OptionalSpin, ParamDock


@pytest.fixture
def dock(qtbot):
    recipe = Recipe()
    widget = ParamDock(SimParams(), recipe)
    qtbot.addWidget(widget)
    return widget, recipe


def test_the_dock_lists_exactly_the_schemas_options(dock):
    widget, _ = dock
    shown = {key.removeprefix("recipe.") for key in widget.widgets if key.startswith("recipe.")}
    assert shown == {option.name for option in OPTIONS if option.group}
    hidden = {option.name for option in OPTIONS if not option.group}  # per-session choices, set elsewhere
    assert {"kind_overrides", "hdu_overrides"} <= hidden and all(n.endswith("_overrides") for n in hidden)
    assert {option.group for option in OPTIONS if option.group} == set(DOCK_GROUPS)


def test_each_control_carries_the_schemas_type_range_unit_and_help(dock):
    widget, recipe = dock
    kinds = {"bool": QCheckBox, "choice": QComboBox, "int": QSpinBox, "float": QDoubleSpinBox,
             "optional_float": OptionalSpin, "section": QLineEdit, "keyword": QLineEdit}
    for option in (o for o in OPTIONS if o.group):
        control = widget.widgets[f"recipe.{option.name}"]
        assert type(control) is kinds[option.kind], option.name
        assert option.help in control.toolTip() and option.allowed() in control.toolTip()
        spin = control.spin if option.kind == "optional_float" else control
        if option.kind in ("int", "float", "optional_float"):
            assert (spin.minimum(), spin.maximum()) == (option.minimum, option.maximum)
            assert spin.suffix() == (f" {option.unit}" if option.unit else "")
            if option.kind != "int":
                assert spin.decimals() == option.decimals
        if option.kind == "choice":
            items = [(control.itemData(i), control.itemText(i)) for i in range(control.count())]
            assert tuple(items) == option.choices
            assert control.currentData() == getattr(recipe, option.name)


def test_an_unknown_combo_value_is_shown_as_unknown_not_as_item_0(dock):
    widget, recipe = dock
    combo = widget.widgets["recipe.cosmic_rays"]
    object.__setattr__(recipe, "cosmic_rays", "bogus")  # bypasses the events: re-emit by hand
    recipe.events.cosmic_rays.emit("bogus")
    assert combo.currentData() == "bogus" and "unknown" in combo.currentText()
    recipe.cosmic_rays = "median"
    assert combo.currentData() == "median" and combo.count() == 4  # the unknown item is gone


def test_a_bad_section_is_undone_and_a_good_one_kept(dock):
    widget, recipe = dock
    trim = widget.widgets["recipe.trim"]
    trim.setText("[1:10")
    trim.editingFinished.emit()
    assert recipe.trim == "auto" and trim.text() == "auto"
    trim.setText("[2:9, 1:8]")
    trim.editingFinished.emit()
    assert recipe.trim == "[2:9, 1:8]"
    keyword = widget.widgets["recipe.weights_keyword"]
    keyword.setText("NOT A KEY")
    keyword.editingFinished.emit()
    assert recipe.weights_keyword == ""
    recipe.validate()


def test_optional_numbers_and_new_options_are_bound_both_ways(dock):
    widget, recipe = dock
    clip = widget.widgets["recipe.clip_max"]
    assert recipe.clip_max is None and not clip.check.isChecked() and not clip.spin.isEnabled()
    clip.spin.setValue(60000)
    assert recipe.clip_max is None  # off until checked
    clip.check.setChecked(True)
    assert recipe.clip_max == 60000.0 and clip.value() == 60000.0
    clip.spin.setValue(50000)
    assert recipe.clip_max == 50000.0
    clip.check.setChecked(False)
    assert recipe.clip_max is None
    recipe.flat_min_value = 0.25
    floor = widget.widgets["recipe.flat_min_value"]
    assert floor.check.isChecked() and floor.spin.value() == 0.25
    recipe.flat_min_value = None
    assert not floor.check.isChecked()
    widget.widgets["recipe.overscan_order"].setValue(3)
    assert recipe.overscan_order == 3
    recipe.weights = "exposure"
    assert widget.widgets["recipe.weights"].currentData() == "exposure"
    widget.widgets["recipe.flat_bad_columns"].setChecked(True)
    assert recipe.flat_bad_columns is True
    widget.widgets["recipe.stack_memory_mb"].setValue(10**9)  # clamped to the schema's maximum
    assert recipe.stack_memory_mb == 1_000_000
    recipe.validate()
