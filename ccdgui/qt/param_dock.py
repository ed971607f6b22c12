"""The parameter dock: simulation settings and the calibration recipe, each control bound two-way to the
one model object that holds the value (SimParams, Recipe)."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..model.recipe import Recipe
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

RECIPE_CHOICES = {
    "combine": ("Combine", (("average", "Average"), ("median", "Median"), ("sum", "Sum")),
                "How the frames of each master are combined."),
    "reject": ("Rejection", (("sigma", "Sigma clipping"), ("minmax", "Min/max"), ("none", "None")),
               "Which values of each pixel are left out before combining."),
    "sigma_center": ("Clip centre", (("median", "Median"), ("mean", "Mean")),
                     "Centre about which sigma clipping measures deviations."),
    "sigma_spread": ("Clip spread", (("mad_std", "MAD σ (robust)"), ("std", "Standard deviation")),
                     "Spread used to scale the sigma-clipping thresholds."),
    "flat_scaling": ("Flat scaling", (("inverse_median", "1 / median"), ("inverse_mean", "1 / mean"),
                                      ("none", "None")),
                     "Each flat is scaled by this before combining, so flats of different levels agree."),
    "flat_normalise": ("Flat normalised by", (("mean", "Mean"), ("median", "Median")),
                       "The master flat is divided by this before flat-fielding, keeping the light's level."),
    "overscan_method": ("Overscan level", (("median", "Median per line"), ("mean", "Mean per line")),
                        "How the overscan strip becomes a level per row (or column)."),
    "cosmic_rays": ("Cosmic rays", (("off", "Leave"), ("auto", "Clean (best available)"),
                                    ("lacosmic", "Clean: L.A.Cosmic"), ("median", "Clean: median method")),
                    "Clean cosmic-ray hits in the calibrated lights: L.A.Cosmic (astroscrappy, if "
                    "installed) or a median method that spares stars."),
}
RECIPE_NUMBERS = {
    "sigma_low": ("Low threshold", "σ", 0.1, 100, 2, "Reject values this many σ below the centre."),
    "sigma_high": ("High threshold", "σ", 0.1, 100, 2, "Reject values this many σ above the centre."),
    "sigma_iterations": ("Clip passes", "", 1, 20, None, "Sigma-clipping passes (ccdproc makes one)."),
    "minmax_low": ("Drop lowest", "", 0, 100, None, "Lowest values dropped per pixel (min/max)."),
    "minmax_high": ("Drop highest", "", 0, 100, None, "Highest values dropped per pixel (min/max)."),
}
RECIPE_TEXT = {
    "overscan": ("Overscan region", "auto: BIASSEC from each header; off; or a FITS section such as "
                 "[4:13,1:520] (1-based, inclusive, x first)."),
    "trim": ("Trim to", "auto: TRIMSEC from each header; off; or a FITS section such as [17:528,1:520]."),
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


class ParamDock(QScrollArea):
    """Emits ``simulate_requested`` and ``calibrate_requested`` from its buttons."""

    simulate_requested = pyqtSignal()
    calibrate_requested = pyqtSignal()

    def __init__(self, sim: SimParams, recipe: Recipe, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.widgets: dict[str, QWidget] = {}
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self._simulation_box(sim))
        layout.addWidget(self._recipe_box(recipe))
        layout.addStretch(1)
        self.setWidget(body)
        self.setMinimumWidth(300)

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
            form.addRow("", check)
            self.widgets[f"sim.{name}"] = check
        self.simulate_button = QPushButton("Simulate night")
        self.simulate_button.setToolTip("Make a new night of raw frames with these settings (Ctrl+N).")
        self.simulate_button.clicked.connect(self.simulate_requested)
        form.addRow(self.simulate_button)
        return box

    def _recipe_box(self, recipe: Recipe) -> QGroupBox:
        box = QGroupBox("Calibration recipe")
        form = QFormLayout(box)
        order = ("combine", "reject", "sigma_low", "sigma_high", "sigma_center", "sigma_spread",
                 "sigma_iterations", "minmax_low", "minmax_high", "flat_scaling", "flat_normalise",
                 "overscan", "overscan_method", "trim", "cosmic_rays")
        for name in order:
            if name in RECIPE_CHOICES:
                label, choices, tip = RECIPE_CHOICES[name]
                widget = QComboBox()
                for value, text in choices:
                    widget.addItem(text, value)
                widget.setToolTip(tip)
                bindings.bind_combo(recipe, name, widget)
            elif name in RECIPE_NUMBERS:
                label = RECIPE_NUMBERS[name][0]
                widget = _spin(RECIPE_NUMBERS[name])
                bindings.bind_spin(recipe, name, widget)
            else:
                label, tip = RECIPE_TEXT[name]
                widget = QLineEdit()
                widget.setToolTip(tip)
                bindings.bind_text(recipe, name, widget)
            form.addRow(label, widget)
            self.widgets[f"recipe.{name}"] = widget
        scale = QCheckBox("Scale darks by exposure")
        scale.setToolTip("A light with no dark of its own exposure gets a dark scaled by t_light / t_dark.")
        bindings.bind_check(recipe, "scale_dark", scale)
        form.addRow("", scale)
        self.widgets["recipe.scale_dark"] = scale
        for name, text, tip in (
                ("hot_pixels", "Mask hot pixels",
                 "Set pixels whose dark current in the master dark is above 4 e⁻/s (or 10σ above the "
                 "typical current) to NaN in the calibrated lights."),
                ("flat_defects", "Mask flat defects",
                 "Set pixels far from the local level of the master flat (ccdproc's ccdmask method: "
                 "±9σ from a 7 × 7 running median) to NaN in the calibrated lights.")):
            check = QCheckBox(text)
            check.setToolTip(tip)
            bindings.bind_check(recipe, name, check)
            form.addRow("", check)
            self.widgets[f"recipe.{name}"] = check
        self.calibrate_button = QPushButton("Calibrate")
        self.calibrate_button.setToolTip("Build the masters and calibrate every light (Ctrl+R).")
        self.calibrate_button.setStyleSheet("font-weight: bold; padding: 6px;")
        self.calibrate_button.clicked.connect(self.calibrate_requested)
        form.addRow(self.calibrate_button)
        return box
