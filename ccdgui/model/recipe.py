"""The recipe: every calibration option of a reduction, with the guide's defaults; JSON round-trips.

Each option is declared once, in :data:`OPTIONS` (type, allowed values, default, label, unit, help, CLI
flag, dock group). The :class:`Recipe` dataclass is checked against it at import; the command line
(``ccdgui reduce``), the parameter dock and the README's option table are built from it, and
:meth:`Recipe.from_dict` / :meth:`Recipe.validate` refuse a bad value with one line naming the option,
the value and what is allowed. This module imports no numpy/astropy (the CLI parser reads it).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from psygnal import evented

if TYPE_CHECKING:
    from .combine import CombineOptions
    from .frame import Frame, FrameKind

OptionKind = Literal["bool", "int", "float", "optional_float", "choice", "section", "keyword", "dict"]

MAX_SECTION_LENGTH = 100   # as calibrate.MAX_SECTION_LENGTH
MAX_NAME_LENGTH = 1024     # a file name in kind_overrides / hdu_overrides
MAX_OVERRIDES = 100_000
FRAME_KINDS = ("bias", "dark", "flat", "light", "unknown", "master bias", "master dark", "master flat",
               "calibrated")  # FrameKind's values (a test checks)
_AXIS = r"[ \t]*(?:\*|:|[0-9]{1,9}[ \t]*:[ \t]*[0-9]{1,9})?[ \t]*"
SECTION_PATTERN = rf"[ \t]*(?:[Aa][Uu][Tt][Oo]|[Oo][Ff][Ff]|\[{_AXIS},{_AXIS}\])[ \t]*"
KEYWORD_PATTERN = r"[A-Za-z0-9_-]{0,8}"
_INT_TEXT = re.compile(r"[ \t]*[+-]?[0-9]{1,30}[ \t]*")


def _number(x: float) -> str:
    """A range bound as people write it: 100, 0.1, 1e+09."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e7 else f"{x:g}"


def shown(value: Any) -> str:
    """A value for a one-line message: repr, cut short; a huge integer by its number of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 100:
        return f"a {int(value.bit_length() * math.log10(2)) + 1}-digit number"
    if isinstance(value, str) and len(value) > 40:
        return f"{value[:20]!r}… ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


@dataclass(frozen=True)
class Option:
    """One recipe option: its type, allowed values and default, and how the CLI, dock and README show it.

    ``choices`` are (value, dock label) pairs for a choice, or the allowed item values of a dict (whose
    items are otherwise whole numbers from ``minimum`` to ``maximum``). ``group`` is the dock's group
    ("" = not in the dock: dicts are set from the library panel).
    """

    name: str
    kind: OptionKind
    default: Any
    label: str
    help: str
    group: str = ""
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = 2
    choices: tuple[tuple[str, str], ...] = ()
    flag: str = ""
    metavar: str = ""
    text_values: bool = False  # a dict whose items are free text (at most MAX_NAME_LENGTH characters)

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def cli_metavar(self) -> str:
        return self.metavar or ("{" + ",".join(self.values) + "}" if self.kind == "choice" else "VALUE")

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _ in self.choices)

    def allowed(self) -> str:
        """What this option accepts, as the end of a sentence ("a number from 0.1 to 100")."""
        span = (f"from {_number(self.minimum)} to {_number(self.maximum)}"
                if self.minimum is not None and self.maximum is not None else "")
        if self.kind == "bool":
            return "true or false"
        if self.kind == "int":
            return f"a whole number {span}"
        if self.kind == "float":
            return f"a number {span}"
        if self.kind == "optional_float":
            return f"a number {span} or none"
        if self.kind == "choice":
            return "one of " + ", ".join(self.values)
        if self.kind == "section":
            return (f"auto, off or a section such as [4:13,1:520] (at most {MAX_SECTION_LENGTH} "
                    "characters)")
        if self.kind == "keyword":
            return "a FITS keyword (up to 8 letters, digits, - or _) or nothing"
        items = "one of " + ", ".join(self.values) if self.choices else f"a whole number {span}"
        if self.text_values:
            items = f"text of 1 to {MAX_NAME_LENGTH} characters"
        return f"file name: {items}"

    def default_text(self) -> str:
        """The default as the command line takes it (true, none, 5.0, auto, "", {})."""
        if self.default is None:
            return "none"
        return self.default if isinstance(self.default, str) and self.default else json.dumps(self.default)

    def refusal(self, value: Any) -> ValueError:
        """The one-line error for a value this option does not accept."""
        return ValueError(f"{self.name} = {shown(value)}: {self.allowed()} is needed")

    def check(self, value: Any) -> Any:
        """``value`` as stored (a whole float for an int, an int for a float become int / float);
        ValueError (one line naming option, value and what is allowed) when it is not accepted."""
        if self.kind == "dict":
            return self._check_dict(value)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise self.refusal(value)
        if self.kind in ("choice", "section", "keyword"):
            if not isinstance(value, str):
                raise self.refusal(value)
            if self.kind == "choice":
                ok = value in self.values
            elif self.kind == "section":
                ok = len(value) <= MAX_SECTION_LENGTH and re.fullmatch(SECTION_PATTERN, value) is not None
            else:
                ok = re.fullmatch(KEYWORD_PATTERN, value) is not None
            if not ok:
                raise self.refusal(value)
            return value
        if value is None and self.kind == "optional_float":
            return None
        return self._check_number(value)

    def _check_number(self, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refusal(value)
        if isinstance(value, float):
            whole = math.isfinite(value) and value.is_integer()
            if not math.isfinite(value) or (self.kind in ("int", "dict") and not whole):
                raise self.refusal(value)
        if not self.minimum <= value <= self.maximum:  # exact for any int, however long
            raise self.refusal(value)
        return int(value) if self.kind in ("int", "dict") else float(value)

    def _check_dict(self, value: Any) -> dict:
        if not isinstance(value, dict) or len(value) > MAX_OVERRIDES:
            raise self.refusal(value)
        checked = {}
        for key, item in value.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_NAME_LENGTH:
                raise ValueError(f"{self.name}: file name {shown(key)} is not a name of 1 to "
                                 f"{MAX_NAME_LENGTH} characters")
            where = f"{self.name}[{shown(key)}]"
            if self.text_values:
                if not isinstance(item, str) or not 0 < len(item) <= MAX_NAME_LENGTH:
                    raise ValueError(f"{where} = {shown(item)}: text of 1 to {MAX_NAME_LENGTH} characters "
                                     "is needed")
                checked[key] = item
            elif self.choices:
                if not isinstance(item, str) or item not in self.values:
                    raise ValueError(f"{where} = {shown(item)}: one of {', '.join(self.values)} is needed")
                checked[key] = item
            else:
                try:
                    checked[key] = self._check_number(item)
                except ValueError:
                    raise ValueError(f"{where} = {shown(item)}: a whole number from {_number(self.minimum)} "
                                     f"to {_number(self.maximum)} is needed") from None
        return checked

    def parse_text(self, text: str) -> Any:
        """A command-line word as a checked value (a dict option's word is NAME=VALUE, giving a pair)."""
        if self.kind == "dict":
            key, sep, item = text.rpartition("=")
            if not sep or not key:
                raise ValueError(f"{self.name}: {shown(text)} is not NAME=VALUE")
            parsed: Any = item
            if not self.choices and not self.text_values:
                parsed = int(item) if _INT_TEXT.fullmatch(item) else item
            return key, self.check({key: parsed})[key]
        if self.kind == "bool":
            words = {"true": True, "yes": True, "on": True, "1": True,
                     "false": False, "no": False, "off": False, "0": False}
            if text.strip().lower() in words:
                return words[text.strip().lower()]
            raise self.refusal(text)
        if self.kind in ("choice", "section", "keyword"):
            return self.check(text)
        if self.kind == "optional_float" and text.strip().lower() in ("none", "off", ""):
            return None
        try:
            number = int(text) if _INT_TEXT.fullmatch(text) else float(text) if len(text) <= 100 else None
        except ValueError:
            number = None
        if number is None:
            raise self.refusal(text)
        try:
            return self.check(number)
        except ValueError:
            raise self.refusal(text) from None


def _choices(*pairs: str) -> tuple[tuple[str, str], ...]:
    """(value, label) pairs from value, label, value, label, …"""
    return tuple(zip(pairs[::2], pairs[1::2], strict=True))


_COMBINE, _FLATS, _OVERSCAN, _MASKS, _MEMORY = ("Combining masters", "Darks and flats", "Overscan and trim",
                                                "Masks and cosmic rays", "Memory")
_MATCHING = "Matching masters"
_SIGMA = dict(unit="σ", minimum=0.1, maximum=100.0, decimals=2, metavar="S")
_CLIP = dict(minimum=-1e9, maximum=1e9, decimals=3, metavar="X|none")

#: Every recipe option, in the order of the Recipe's fields.
OPTIONS: tuple[Option, ...] = (
    Option("combine", "choice", "average", "Combine", "How the frames of each master are combined.",
           _COMBINE, choices=_choices("average", "Average", "median", "Median", "sum", "Sum")),
    Option("reject", "choice", "sigma", "Rejection",
           "Which values of each pixel are left out before combining.", _COMBINE,
           choices=_choices("sigma", "Sigma clipping", "minmax", "Min/max", "none", "None")),
    Option("sigma_low", "float", 5.0, "Low threshold", "Reject values this many σ below the centre.",
           _COMBINE, **_SIGMA),
    Option("sigma_high", "float", 5.0, "High threshold", "Reject values this many σ above the centre.",
           _COMBINE, **_SIGMA),
    Option("sigma_center", "choice", "median", "Clip centre",
           "Centre about which sigma clipping measures deviations.", _COMBINE,
           choices=_choices("median", "Median", "mean", "Mean")),
    Option("sigma_spread", "choice", "mad_std", "Clip spread",
           "Spread used to scale the sigma-clipping thresholds.", _COMBINE,
           choices=_choices("mad_std", "MAD σ (robust)", "std", "Standard deviation")),
    Option("sigma_iterations", "int", 1, "Clip passes", "Sigma-clipping passes (ccdproc makes one).",
           _COMBINE, minimum=1, maximum=20, metavar="N"),
    Option("minmax_low", "int", 1, "Drop lowest", "Lowest values dropped per pixel (min/max).",
           _COMBINE, minimum=0, maximum=100, metavar="N"),
    Option("minmax_high", "int", 1, "Drop highest", "Highest values dropped per pixel (min/max).",
           _COMBINE, minimum=0, maximum=100, metavar="N"),
    Option("weights", "choice", "none", "Weights",
           "Per-frame combine weights: none, exposure time, inverse variance, or a header keyword.",
           _COMBINE, choices=_choices("none", "None", "exposure", "Exposure time",
                                      "inverse_variance", "Inverse variance", "keyword", "Header keyword")),
    Option("weights_keyword", "keyword", "", "Weight keyword",
           "The header keyword holding each frame's weight, when weights = keyword.", _COMBINE,
           metavar="KEY"),
    Option("clip_min", "optional_float", None, "Clip below",
           "Absolute lower limit: values below it are rejected before the statistic (none = off).",
           _COMBINE, **_CLIP),
    Option("clip_max", "optional_float", None, "Clip above",
           "Absolute upper limit: values above it are rejected before the statistic (none = off).",
           _COMBINE, **_CLIP),
    Option("flat_scaling", "choice", "inverse_median", "Flat scaling",
           "Each flat is scaled by this before combining, so flats of different levels agree.", _FLATS,
           choices=_choices("inverse_median", "1 / median", "inverse_mean", "1 / mean", "none", "None")),
    Option("flat_normalise", "choice", "mean", "Flat normalised by",
           "The master flat is divided by this before flat-fielding, keeping the light's level.", _FLATS,
           choices=_choices("mean", "Mean", "median", "Median")),
    Option("flat_min_value", "optional_float", None, "Flat floor",
           "Pixels of the normalised flat below this are raised to it (none = off).", _FLATS,
           minimum=0.0, maximum=1.0, decimals=3, metavar="X|none"),
    Option("scale_dark", "bool", True, "Scale darks by exposure",
           "A light with no dark of its own exposure gets a dark scaled by t_light / t_dark.", _FLATS),
    Option("overscan", "section", "auto", "Overscan region",
           "auto: BIASSEC from each header; off; or a FITS section such as [4:13,1:520] (1-based, "
           "inclusive, x first).", _OVERSCAN, metavar="SECTION"),
    Option("overscan_method", "choice", "median", "Overscan level",
           "How the overscan strip becomes a level per row (or column).", _OVERSCAN,
           choices=_choices("median", "Median per line", "mean", "Mean per line")),
    Option("overscan_fit", "choice", "none", "Overscan fit",
           "A fit along the strip to the per-line levels (none: the median/mean per line as is).",
           _OVERSCAN, choices=_choices("none", "None", "polynomial", "Polynomial", "legendre", "Legendre")),
    Option("overscan_order", "int", 1, "Fit order", "Order of the overscan fit.", _OVERSCAN,
           minimum=0, maximum=10, metavar="N"),
    Option("trim", "section", "auto", "Trim to",
           "auto: TRIMSEC from each header; off; or a FITS section such as [17:528,1:520].", _OVERSCAN,
           metavar="SECTION"),
    Option("stack_memory_mb", "int", 1024, "Stack memory",
           "Above this, the processed frames of a master wait in scratch files.", _MEMORY, unit="MB",
           minimum=0, maximum=1_000_000, metavar="MB"),
    Option("hot_pixels", "bool", False, "Mask hot pixels",
           "Set pixels whose dark current in the master dark is above 4 e⁻/s (or 10σ above the typical "
           "current) to NaN in the calibrated lights.", _MASKS, flag="--mask-hot-pixels"),
    Option("flat_defects", "bool", False, "Mask flat defects",
           "Set pixels far from the local level of the master flat (ccdproc's ccdmask method: ±9σ from a "
           "7 × 7 running median) to NaN in the calibrated lights.", _MASKS, flag="--mask-flat-defects"),
    Option("flat_bad_columns", "bool", False, "Flat bad columns",
           "Also look for bad columns in the flat-defect mask.", _MASKS),
    Option("cosmic_rays", "choice", "off", "Cosmic rays",
           "Clean cosmic-ray hits in the calibrated lights: L.A.Cosmic (astroscrappy, if installed), a "
           "median method that spares stars, or auto (the best available).", _MASKS,
           choices=_choices("off", "Leave", "auto", "Clean (best available)", "lacosmic",
                            "Clean: L.A.Cosmic", "median", "Clean: median method")),
    Option("kind_overrides", "dict", {}, "Kind overrides",
           "Frame kinds the user chose, by file name (repeat the flag for more files).",
           choices=tuple((kind, kind) for kind in FRAME_KINDS), flag="--kind-override", metavar="NAME=KIND"),
    Option("hdu_overrides", "dict", {}, "HDU overrides",
           "The image HDU to use, by file name (repeat the flag for more files).", minimum=0, maximum=9999,
           flag="--hdu-override", metavar="NAME=N"),
    Option("match_temperature", "float", 1.0, "Same temperature within",
           "A master within this of the frame's temperature (set-point, else measured) is an exact match.",
           _MATCHING, unit="°C", minimum=0.0, maximum=50.0, decimals=1, metavar="C"),
    Option("nearby_temperature", "float", 3.0, "Dark temperature limit",
           "A dark further than this from the frame's temperature is refused (a bias or flat is then only "
           "'nearby').", _MATCHING, unit="°C", minimum=0.0, maximum=50.0, decimals=1, metavar="C"),
    Option("match_age_days", "float", 1.0, "Same night within",
           "A master taken further than this from the frame is 'nearby' (another night), not exact.",
           _MATCHING, unit="days", minimum=0.0, maximum=100000.0, decimals=1, metavar="DAYS"),
    Option("prefer_library", "bool", False, "Prefer library masters",
           "Use a matching master of the library even when tonight's frames can make one (else tonight's "
           "frames win).", _MATCHING),
    Option("master_overrides", "dict", {}, "Master overrides",
           "The master the user chose for a frame and kind, as NAME:KIND=MASTER (MASTER: a master's file "
           "name, library:SHA256, or none).", flag="--master-override", metavar="NAME:KIND=MASTER",
           text_values=True),
)
OPTION = {option.name: option for option in OPTIONS}
DOCK_GROUPS = (_COMBINE, _FLATS, _OVERSCAN, _MASKS, _MEMORY, _MATCHING)  # the dock's (and --help's) order


@evented
@dataclass
class Recipe:
    """Every calibration option (declared in :data:`OPTIONS`); JSON round-trips. Defaults follow the guide.

    Construction and :meth:`from_dict` validate; code that sets a field later must set a valid value
    (the dock's widgets only offer valid ones).
    """

    combine: str = "average"
    reject: str = "sigma"
    sigma_low: float = 5.0
    sigma_high: float = 5.0
    sigma_center: str = "median"
    sigma_spread: str = "mad_std"
    sigma_iterations: int = 1
    minmax_low: int = 1
    minmax_high: int = 1
    weights: str = "none"
    weights_keyword: str = ""
    clip_min: float | None = None
    clip_max: float | None = None
    flat_scaling: str = "inverse_median"
    flat_normalise: str = "mean"
    flat_min_value: float | None = None
    scale_dark: bool = True
    overscan: str = "auto"
    overscan_method: str = "median"
    overscan_fit: str = "none"
    overscan_order: int = 1
    trim: str = "auto"
    stack_memory_mb: int = 1024
    hot_pixels: bool = False
    flat_defects: bool = False
    flat_bad_columns: bool = False
    cosmic_rays: str = "off"
    kind_overrides: dict[str, str] = field(default_factory=dict)  # file name -> kind the user chose
    hdu_overrides: dict[str, int] = field(default_factory=dict)   # file name -> image HDU the user chose
    match_temperature: float = 1.0
    nearby_temperature: float = 3.0
    match_age_days: float = 1.0
    prefer_library: bool = False
    master_overrides: dict[str, str] = field(default_factory=dict)  # "NAME:KIND" -> master the user chose

    def __post_init__(self) -> None:
        for option in OPTIONS:
            value = option.check(getattr(self, option.name))
            if type(value) is not type(getattr(self, option.name)):  # e.g. 3 given for a float
                setattr(self, option.name, value)

    def validate(self) -> None:
        """Raise ValueError (one line naming option, value and what is allowed) for a bad value."""
        for option in OPTIONS:
            option.check(getattr(self, option.name))

    def check_together(self) -> None:
        """Raise ValueError (one line) for options that are each valid but do not go together."""
        if self.weights == "keyword" and not self.weights_keyword:
            raise ValueError("weights = 'keyword' needs weights_keyword, the header keyword holding each "
                             "frame's weight")
        if self.clip_min is not None and self.clip_max is not None and self.clip_min >= self.clip_max:
            raise ValueError(f"clip_min = {self.clip_min:g} must be below clip_max = {self.clip_max:g}")

    def tolerances(self):
        """The matching tolerances (:class:`library.Tolerances`) of this recipe."""
        from .library import Tolerances

        return Tolerances(self.match_temperature, max(self.nearby_temperature, self.match_temperature),
                          self.match_age_days, self.scale_dark)

    def master_override(self, frame_name: str, kind: str) -> str | None:
        """The master the user chose for a frame and kind ('bias', 'dark', 'flat'), or None."""
        return self.master_overrides.get(f"{frame_name}:{kind}")

    def kind_of(self, frame: Frame) -> FrameKind:
        """The frame's kind, as the user re-classified it or as read from its header."""
        from .frame import FrameKind

        override = self.kind_overrides.get(frame.name)
        return FrameKind(override) if override else frame.kind

    def combine_options(self) -> CombineOptions:
        """The combine options: ``method`` from ``combine``, and every CombineOptions field the recipe
        has under the same name (sigma_*, minmax_*, and new ones such as weights or clip_min)."""
        from .combine import CombineOptions

        shared = {f.name for f in fields(CombineOptions)} & {f.name for f in fields(Recipe)}
        return CombineOptions(method=self.combine, **{name: getattr(self, name) for name in sorted(shared)})

    def copy(self) -> Recipe:
        """An independent copy (the options a run uses, fixed while the dock changes)."""
        return Recipe.from_dict(json.loads(self.to_json()))

    def to_dict(self) -> dict:
        return asdict(self)

    def __getstate__(self) -> dict:
        """The options only: a recipe pickled for a cluster's workers leaves its listeners behind."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @classmethod
    def from_dict(cls, data: dict) -> Recipe:
        """A recipe from JSON data; options left out take their defaults. ValueError (one line) for an
        unknown option or a bad value."""
        if not isinstance(data, dict):
            raise ValueError("a recipe is a JSON object of options")
        unknown = set(data) - set(OPTION)
        if unknown:
            raise ValueError(f"unknown recipe option(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**{name: OPTION[name].check(value) for name, value in data.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _check_recipe_against_schema() -> None:
    """The Recipe's fields are exactly OPTIONS, in order, with the same defaults (raised at import)."""
    recipe = Recipe()
    names = [f.name for f in fields(Recipe)]
    if names != [option.name for option in OPTIONS]:
        raise TypeError(f"Recipe fields {names} differ from the schema's options")
    for option in OPTIONS:
        if getattr(recipe, option.name) != option.default or option.check(option.default) != option.default:
            raise TypeError(f"Recipe.{option.name} default differs from the schema's {option.default!r}")


_check_recipe_against_schema()


def schema_table_markdown() -> str:
    """The README's table of recipe options: flag, default, what is allowed, meaning."""
    rows = ["| Option | Flag | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
    for option in OPTIONS:
        flag = f"`{option.cli_flag}`"
        if option.kind == "bool":
            flag += f", `--no-{option.cli_flag[2:]}`"
        elif option.kind != "choice":  # a choice's values are in the Allowed column
            flag = f"`{option.cli_flag} {option.cli_metavar}`"
        allowed = option.allowed() + (f" ({option.unit})" if option.unit else "")
        cells = (f"`{option.name}`", flag, f"`{option.default_text()}`", allowed, option.help)
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"
