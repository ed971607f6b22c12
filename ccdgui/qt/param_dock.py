"""The parameter dock, organised by task as tabs: *Recipe* (with Calibrate always in reach below its
scrolling options) and *Simulation* (first when the session is a simulated night); other tabs (QA,
masters) are added with :meth:`ParamDock.add_tab`. Each control is bound two-way to the one model object
that holds the value (SimParams, Recipe). The recipe's controls are built from its
schema (:data:`ccdgui.model.recipe.OPTIONS`): widget, range, decimals, unit, tooltip, combo items."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..model.recipe import DOCK_GROUPS, MAX_SECTION_LENGTH, OPTIONS, Option, Recipe
from ..model.simulate import SimParams
from . import bindings

# field: (label, unit, minimum, maximum, decimals or None for int, tooltip)
SIM_FIELDS = {
    "nx": ("Width", "px", 8, 16384, None, "Frame width (NAXIS1)."),
    "ny": ("Height", "px", 8, 16384, None, "Frame height (NAXIS2)."),
    "n_bias": ("Bias frames", "", 0, 200, None, "Number of bias frames."),
    "n_dark": ("Dark frames", "", 0, 200, None, "Number of dark frames."),
    "n_flat": ("Flats per filter", "", 0, 200, None, "Number of flat frames for each filter."),
    "n_light": ("Lights per filter", "", 0, 200, None, "Number of science frames for each filter."),
    "gain": ("Gain", "e⁻/ADU", 0.01, 100, 3, "Electrons per ADU."),
    "read_noise": ("Read noise", "e⁻", 0, 10000, 1,
                   "Read noise in electrons. The guide's 700 e⁻ is exaggerated on purpose."),
    "bias_level": ("Bias level", "ADU", 0, 60000, 1, "Constant bias level."),
    "dark_current": ("Dark current", "e⁻/s/px", 0, 1000, 3, "Mean dark current per pixel."),
    "dark_exposure": ("Dark exposure", "s", 0, 100000, 1, "Exposure time of the dark frames."),
    "light_exposure": ("Light exposure", "s", 0, 100000, 1, "Exposure time of the science frames."),
    "flat_exposure": ("Flat exposure", "s", 0, 100000, 1, "Exposure time of the flat frames."),
    "flat_level": ("Flat level", "ADU", 0, 60000, 0, "Mean counts of a flat frame."),
    "sky": ("Sky", "ADU", 0, 60000, 1, "Sky background in a light frame."),
    "n_stars": ("Stars", "", 0, 100000, None, "Number of stars in the field."),
    "max_star_counts": ("Brightest star", "ADU", 0, 1e6, 0, "Peak counts of the brightest star."),
    "star_sigma": ("Star width σ", "px", 0.3, 100, 2, "Gaussian σ of a star image."),
    "cosmic_rays": ("Cosmic rays", "per light", 0, 10000, None, "Cosmic-ray hits added to each light."),
    "seed": ("Random seed", "", 0, 2**31 - 1, None, "The same seed gives the same night, frame by frame."),
}

def _spin(spec) -> QSpinBox | QDoubleSpinBox:
    _label, unit, minimum, maximum, decimals, tooltip = spec
    if decimals is None:
        widget = QSpinBox()
        widget.setRange(int(minimum), int(maximum))
    else:
        widget = QDoubleSpinBox()
        widget.setDecimals(decimals)
        widget.setRange(float(minimum), float(maximum))
    if unit:
        widget.setSuffix(f" {unit}")
    widget.setToolTip(tooltip)
    widget.setKeyboardTracking(False)
    return widget


class OptionalSpin(QWidget):
    """A number that may be off (None): a check box turns it on, a spin box gives its value."""

    def __init__(self, spin: QDoubleSpinBox, parent=None) -> None:
        super().__init__(parent)
        self.check = QCheckBox()
        self.check.setToolTip("On: use the value; off: none.")
        self.spin = spin
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.spin, 1)

    def value(self) -> float | None:
        return self.spin.value() if self.check.isChecked() else None


def recipe_widget(option: Option, recipe: Recipe) -> QWidget:
    """The control for one recipe option, from its schema entry, bound two-way to ``recipe``."""
    if option.kind == "bool":
        widget = QCheckBox(option.label)
        bindings.bind_check(recipe, option.name, widget)
    elif option.kind == "choice":
        widget = QComboBox()
        for value, text in option.choices:
            widget.addItem(text, value)
        bindings.bind_combo(recipe, option.name, widget)
    elif option.kind in ("int", "float", "optional_float"):
        decimals = None if option.kind == "int" else option.decimals
        spin = _spin((option.label, option.unit, option.minimum, option.maximum, decimals, option.help))
        if option.kind == "optional_float":
            widget = OptionalSpin(spin)
            bindings.bind_optional_spin(recipe, option.name, widget.check, spin)
        else:
            widget = spin
            bindings.bind_spin(recipe, option.name, widget)
    elif option.kind in ("section", "keyword"):
        widget = QLineEdit()
        widget.setMaxLength(MAX_SECTION_LENGTH)
        bindings.bind_text(recipe, option.name, widget, check=option.check)  # a bad entry is undone
    else:
        raise TypeError(f"the dock has no control for {option.name} ({option.kind})")
    widget.setToolTip(f"{option.help}\nAllowed: {option.allowed()}. Default: {option.default_text()}.")
    return widget


def _scrolling(*widgets: QWidget) -> QScrollArea:
    """A vertical scroll area holding ``widgets`` one below the other (long lists scroll in the dock)."""
    body = QWidget()
    layout = QVBoxLayout(body)
    layout.setContentsMargins(4, 4, 4, 4)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addStretch(1)
    for combo in body.findChildren(QComboBox):  # narrow docks: fields shrink, labels stay whole
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)
    for field in [*body.findChildren(QAbstractSpinBox), *body.findChildren(QLineEdit),
                  *body.findChildren(QComboBox)]:
        field.setMinimumWidth(64)
    for form in body.findChildren(QFormLayout):
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(body)
    return area


def _with_button(area: QScrollArea, button: QPushButton) -> QWidget:
    """The scroll area with ``button`` pinned below it, so the action never scrolls out of reach."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 4)
    layout.addWidget(area, 1)
    layout.addWidget(button)
    return page


#: The recipe settings that only one rejection uses (greyed under the others).
REJECTION_SETTINGS = {"sigma_low": "sigma", "sigma_high": "sigma", "sigma_center": "sigma",
                      "sigma_spread": "sigma", "sigma_iterations": "sigma",
                      "minmax_low": "minmax", "minmax_high": "minmax"}


class ParamDock(QWidget):
    """Emits ``simulate_requested`` and ``calibrate_requested`` from its buttons."""

    simulate_requested = pyqtSignal()
    calibrate_requested = pyqtSignal()

    def __init__(self, sim: SimParams, recipe: Recipe, parent=None) -> None:
        super().__init__(parent)
        self.widgets: dict[str, QWidget] = {}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.calibrate_button = QPushButton("Calibrate")
        self.calibrate_button.setToolTip("Build the masters and calibrate every light (Ctrl+R).")
        self.calibrate_button.setStyleSheet("font-weight: bold; padding: 6px;")
        self.calibrate_button.clicked.connect(self.calibrate_requested)
        self.recipe_page = _with_button(_scrolling(*self._recipe_boxes(recipe)), self.calibrate_button)
        self._follow_rejection(recipe)
        self.simulate_button = QPushButton("Simulate night")
        self.simulate_button.setToolTip("Make a new night of raw frames with these settings (Ctrl+N).")
        self.simulate_button.setStyleSheet("padding: 6px;")
        self.simulate_button.clicked.connect(self.simulate_requested)
        self.simulation_page = _with_button(_scrolling(self._simulation_box(sim)), self.simulate_button)
        self.tabs.addTab(self.recipe_page, "Recipe")
        self.tabs.addTab(self.simulation_page, "Simulation")
        self.tabs.setTabToolTip(0, "How masters are built and lights calibrated (saved in recipe.json)")
        self.tabs.setTabToolTip(1, "The simulated night's settings")
        self.setMinimumWidth(280)

    def add_tab(self, title: str, widget: QWidget, tooltip: str = "") -> int:
        """Add a task's tab (QA, masters…) after the built-in ones; returns its index."""
        index = self.tabs.addTab(widget, title)
        self._place_tabs()
        if tooltip:
            self.tabs.setTabToolTip(index, tooltip)
        return index

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """Tabs along the top while their titles fit the dock's width, else down its side (every tab
        stays one click away on a narrow dock instead of behind scroll arrows)."""
        super().resizeEvent(event)
        self._place_tabs()

    def _place_tabs(self) -> None:
        metrics = self.tabs.tabBar().fontMetrics()
        needed = sum(metrics.horizontalAdvance(title) + 2 * metrics.averageCharWidth() + 16
                     for title in self.tab_titles())
        position = QTabWidget.TabPosition
        wanted = position.North if needed <= self.width() else position.West
        if self.tabs.tabPosition() != wanted:
            self.tabs.setTabPosition(wanted)

    def tab_titles(self) -> list[str]:
        return [self.tabs.tabText(i) for i in range(self.tabs.count())]

    def show_simulation_first(self, simulated: bool) -> None:
        """Simulation as the first tab for a simulated session, Recipe first for real data; the first
        tab is the one shown."""
        wanted = self.simulation_page if simulated else self.recipe_page
        index = self.tabs.indexOf(wanted)
        if index != 0:
            self.tabs.tabBar().moveTab(index, 0)
        self.tabs.setCurrentIndex(0)

    def _simulation_box(self, sim: SimParams) -> QGroupBox:
        box = QGroupBox("Simulated night")
        form = QFormLayout(box)
        for name, spec in SIM_FIELDS.items():
            widget = _spin(spec)
            bindings.bind_spin(sim, name, widget)
            form.addRow(spec[0], widget)
            self.widgets[f"sim.{name}"] = widget
        filters = QLineEdit()
        filters.setToolTip("Filters for flats and lights, separated by commas (e.g. r, g).")
        bindings.bind_text_tuple(sim, "filters", filters)
        form.addRow("Filters", filters)
        self.widgets["sim.filters"] = filters
        for name, label, tip in (("realistic_bias", "Bias column pattern", "Five bright bias columns."),
                                 ("hot_pixels", "Hot pixels", "0.01 % of pixels with 10000× dark current.")):
            check = QCheckBox(label)
            check.setToolTip(tip)
            bindings.bind_check(sim, name, check)
            form.addRow(check)
            self.widgets[f"sim.{name}"] = check
        return box

    def _follow_rejection(self, recipe: Recipe) -> None:
        """Grey the settings the chosen rejection does not use (the min/max counts under sigma
        clipping, the σ thresholds under min/max), so the dock never suggests they apply."""
        def show(reject) -> None:
            for name, uses in REJECTION_SETTINGS.items():
                widget = self.widgets.get(f"recipe.{name}")
                if widget is not None:
                    widget.setEnabled(reject == uses)

        recipe.events.reject.connect(show)
        self.destroyed.connect(lambda *_: recipe.events.reject.disconnect(show))
        show(recipe.reject)

    def _recipe_boxes(self, recipe: Recipe) -> list[QGroupBox]:
        """A group box per dock group of the recipe schema, each option's widget built from its entry."""
        boxes = []
        for group in DOCK_GROUPS:
            box = QGroupBox(group.capitalize())
            form = QFormLayout(box)
            for option in OPTIONS:
                if option.group == group:
                    widget = recipe_widget(option, recipe)
                    if option.kind == "bool":  # a check box spans the row: the label column stays narrow
                        form.addRow(widget)
                    else:
                        form.addRow(option.label, widget)
                    self.widgets[f"recipe.{option.name}"] = widget
            boxes.append(box)
        return boxes
