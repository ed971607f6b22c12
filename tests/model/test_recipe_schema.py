"""One recipe schema: the Recipe, the command line, the validator and the README's table all come from
``recipe.OPTIONS``, and a bad value is refused with one line naming the option, the value and what is
allowed (the dock's side is in tests/qt/test_recipe_dock.py)."""

import argparse
import dataclasses
import json
import math
from pathlib import Path

import pytest

from ccdgui.cli import EXIT_USAGE, build_parser, main, recipe_from_args
from ccdgui.model import calibrate, combine
from ccdgui.model.frame import FrameKind
from ccdgui.model.recipe import FRAME_KINDS, OPTION, OPTIONS, Recipe, schema_table_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
NAMES = [option.name for option in OPTIONS]

# the defaults before the schema (the guide's), and the new options' defaults (today's behaviour)
DEFAULTS = dict(combine="average", reject="sigma", sigma_low=5.0, sigma_high=5.0, sigma_center="median",
                sigma_spread="mad_std", sigma_iterations=1, minmax_low=1, minmax_high=1,
                flat_scaling="inverse_median", flat_normalise="mean", scale_dark=True, overscan="auto",
                overscan_method="median", trim="auto", stack_memory_mb=1024, hot_pixels=False,
                flat_defects=False, cosmic_rays="off", kind_overrides={}, hdu_overrides={},
                weights="none", weights_keyword="", clip_min=None, clip_max=None, overscan_fit="none",
                overscan_order=1, flat_min_value=None, flat_bad_columns=False, match_temperature=1.0,
                nearby_temperature=3.0, match_age_days=1.0, prefer_library=False, master_overrides={})

# a value other than the default that each option accepts
OTHER = dict(combine="median", reject="minmax", sigma_low=3.5, sigma_high=2.25, sigma_center="mean",
             sigma_spread="std", sigma_iterations=3, minmax_low=2, minmax_high=0, weights="keyword",
             weights_keyword="WEIGHT", clip_min=-50.0, clip_max=60000.0, flat_scaling="none",
             flat_normalise="median", flat_min_value=0.2, scale_dark=False, overscan="[4:13,1:520]",
             overscan_method="mean", overscan_fit="legendre", overscan_order=3, trim="off",
             stack_memory_mb=0, hot_pixels=True, flat_defects=True, flat_bad_columns=True,
             cosmic_rays="median", kind_overrides={"a.fits": "flat"}, hdu_overrides={"b.fits": 2},
             match_temperature=0.5, nearby_temperature=5.0, match_age_days=30.0, prefer_library=True,
             master_overrides={"a.fits:dark": "library:0123abcd"})

# (option, bad value, how the value appears in the message)
BAD = [
    ("sigma_low", "abc", "'abc'"),
    ("sigma_low", -1.0, "-1.0"),
    ("sigma_low", 0.0, "0.0"),
    ("sigma_low", 10**5000, "5001-digit number"),
    ("sigma_high", math.nan, "nan"),
    ("sigma_high", math.inf, "inf"),
    ("sigma_high", True, "True"),
    ("sigma_iterations", 2.5, "2.5"),
    ("sigma_iterations", 0, "0"),
    ("sigma_iterations", "3", "'3'"),
    ("minmax_low", -1, "-1"),
    ("stack_memory_mb", None, "None"),
    ("cosmic_rays", "bogus", "'bogus'"),
    ("combine", "Median", "'Median'"),
    ("weights", 1, "1"),
    ("weights_keyword", "NOT A KEYWORD", "'NOT A KEYWORD'"),
    ("clip_min", "low", "'low'"),
    ("clip_max", math.inf, "inf"),
    ("flat_min_value", 2.0, "2.0"),
    ("overscan_order", 11, "11"),
    ("scale_dark", 1, "1"),
    ("hot_pixels", "yes", "'yes'"),
    ("overscan", "[1:10]", "'[1:10]'"),
    ("trim", "[" + "1" * 120 + ":2,1:2]", "(128 characters)"),
    ("kind_overrides", {"a.fits": "galaxy"}, "'galaxy'"),
    ("kind_overrides", ["a.fits"], "['a.fits']"),
    ("hdu_overrides", {"a.fits": True}, "True"),
    ("hdu_overrides", {"a.fits": -1}, "-1"),
]


def recipe_args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["reduce", "in", "out", *flags])


def test_recipe_fields_are_the_schema_with_unchanged_defaults():
    recipe = Recipe()
    assert list(recipe.to_dict()) == NAMES
    assert recipe.to_dict() == DEFAULTS
    assert {option.name: option.default for option in OPTIONS} == DEFAULTS
    assert set(OTHER) == set(NAMES) and all(OTHER[name] != DEFAULTS[name] for name in NAMES)


def test_schema_choices_are_the_engines():
    assert OPTION["combine"].values == combine.METHODS
    assert set(OPTION["reject"].values) == set(combine.REJECTIONS)
    assert set(OPTION["overscan_method"].values) == set(calibrate.OVERSCAN_METHODS)
    assert tuple(kind.value for kind in FrameKind) == FRAME_KINDS
    options = Recipe(**OTHER).combine_options()
    assert options.method == "median"
    shared = {f.name for f in dataclasses.fields(options)} & set(NAMES)
    assert {"sigma_low", "sigma_iterations", "minmax_high"} <= shared  # and clip_min etc. once there
    assert all(getattr(options, name) == OTHER[name] for name in shared)


def test_round_trip_and_copy():
    recipe = Recipe(**OTHER)
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert Recipe.from_dict(json.loads(recipe.to_json())) == recipe
    assert recipe.copy() == recipe and recipe.copy() is not recipe
    assert Recipe.from_dict({}) == Recipe()  # an older recipe.json without the new options
    assert type(Recipe(sigma_low=3).sigma_low) is float
    assert Recipe.from_dict({"sigma_iterations": 2.0}).sigma_iterations == 2


@pytest.mark.parametrize("name, value, shown", BAD, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD)])
def test_from_dict_refuses_a_bad_value_in_one_line(name, value, shown):
    with pytest.raises(ValueError) as error:
        Recipe.from_dict({name: value})
    message = str(error.value)
    assert "\n" not in message and len(message) < 200
    assert message.startswith(name) and shown in message and "is needed" in message
    recipe = Recipe()
    object.__setattr__(recipe, name, value)  # as code that bypassed the dock could
    with pytest.raises(ValueError, match=name):
        recipe.validate()


def test_the_message_says_what_is_allowed():
    with pytest.raises(ValueError) as error:
        Recipe.from_dict({"sigma_low": "abc"})
    assert str(error.value) == "sigma_low = 'abc': a number from 0.1 to 100 is needed"
    with pytest.raises(ValueError, match="unknown recipe option"):
        Recipe.from_dict({"sigma_lo": 3})


def test_the_validator_checks_every_option():
    checked = set()
    for option in OPTIONS:
        recipe = Recipe()
        object.__setattr__(recipe, option.name, object())  # no option accepts an arbitrary object
        with pytest.raises(ValueError) as error:
            recipe.validate()
        checked.add(str(error.value).split(" ")[0].split("[")[0].rstrip(":"))
    assert checked == set(NAMES)


def test_the_parser_has_one_flag_per_option():
    reduce = build_parser()._subparsers._group_actions[0].choices["reduce"]
    recipe_flags = {action.dest: action for action in reduce._actions if action.dest in OPTION}
    assert sorted(recipe_flags) == sorted(NAMES)
    for option in OPTIONS:
        assert option.cli_flag in recipe_flags[option.name].option_strings
    others = {action.dest for action in reduce._actions} - set(OPTION)
    assert others == {"help", "indir", "outdir", "recipe", "overwrite", "allow_changed_inputs", "dry_run",
                      "quiet", "scheduler",  # where to run, not how to reduce
                      "library", "no_library", "to_library"}  # where masters come from and go


def test_help_lists_every_option_with_its_default_and_range(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside a flag
    with pytest.raises(SystemExit):
        main(["reduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in OPTIONS:
        assert option.cli_flag in text
        assert option.allowed() in text or option.kind == "bool"
    assert "[a number from 0.1 to 100 (σ); default 5.0]" in text
    assert "[default --scale-dark]" in text and "default --no-mask-hot-pixels" in text


def test_flags_old_and_new_make_the_recipe():
    args = recipe_args("--combine", "median", "--sigma-low", "4", "--mask-hot-pixels", "--mask-flat-defects",
                       "--cosmic-rays", "auto", "--no-scale-dark", "--flat-scaling", "none", "--overscan",
                       "[4:13,1:520]", "--trim", "off", "--stack-memory-mb", "0", "--sigma-iterations", "2",
                       "--weights", "exposure", "--clip-min", "-5", "--overscan-fit", "polynomial",
                       "--flat-min-value", "0.25", "--flat-bad-columns", "--hdu-override", "a.fits=2",
                       "--kind-override", "b=c.fits=light")
    recipe = recipe_from_args(args)
    assert (recipe.combine, recipe.sigma_low, recipe.hot_pixels) == ("median", 4.0, True)
    assert recipe.flat_defects is True
    assert (recipe.cosmic_rays, recipe.scale_dark, recipe.flat_scaling) == ("auto", False, "none")
    assert (recipe.overscan, recipe.trim, recipe.stack_memory_mb) == ("[4:13,1:520]", "off", 0)
    assert (recipe.sigma_iterations, recipe.weights, recipe.clip_min) == (2, "exposure", -5.0)
    assert (recipe.overscan_fit, recipe.flat_min_value, recipe.flat_bad_columns) == ("polynomial", 0.25, True)
    assert recipe.hdu_overrides == {"a.fits": 2} and recipe.kind_overrides == {"b=c.fits": "light"}
    assert recipe_from_args(recipe_args()) == Recipe()


def test_flags_win_over_the_record():
    record = {"recipe": {**OTHER, "clip_min": 3.0}}
    recipe = recipe_from_args(recipe_args("--clip-min", "none", "--combine", "sum", "--scale-dark",
                                          "--hdu-override", "c.fits=1"), record)
    assert recipe.clip_min is None and recipe.combine == "sum" and recipe.scale_dark is True
    assert recipe.hdu_overrides == {"b.fits": 2, "c.fits": 1}
    assert recipe.sigma_low == OTHER["sigma_low"]  # not given: the record's


@pytest.mark.parametrize("flags, shown", [
    (["--sigma-low", "abc"], "sigma_low = 'abc': a number from 0.1 to 100 is needed"),
    (["--sigma-low", "-2"], "sigma_low = '-2'"),
    (["--sigma-high", "nan"], "sigma_high = 'nan'"),
    (["--sigma-high", "1" * 5000], "(5000 characters)"),
    (["--stack-memory-mb", "9" * 5000], "stack_memory_mb = '9999"),
    (["--sigma-iterations", "2.5"], "sigma_iterations = '2.5': a whole number from 1 to 20 is needed"),
    (["--cosmic-rays", "bogus"], "cosmic_rays = 'bogus': one of off, auto, lacosmic, median is needed"),
    (["--combine", "mode"], "combine = 'mode'"),
    (["--trim", "x" * 101], "trim = 'xxxx"),
    (["--weights-keyword", "TWO WORDS"], "weights_keyword = 'TWO WORDS'"),
    (["--hdu-override", "a.fits=one"], "hdu_overrides['a.fits'] = 'one'"),
    (["--kind-override", "a.fits"], "is not NAME=VALUE"),
])
def test_a_bad_flag_is_refused_in_one_line(tmp_path, capsys, flags, shown):
    assert main(["reduce", str(tmp_path), str(tmp_path / "out"), *flags]) == EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and shown in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, shown", [
    ('{"recipe": {"sigma_low": "abc"}}', "sigma_low = 'abc': a number from 0.1 to 100 is needed"),
    ('{"recipe": {"cosmic_rays": "bogus"}}', "cosmic_rays = 'bogus'"),
    ('{"recipe": {"sigma_iterations": 2.5}}', "sigma_iterations = 2.5"),
    ('{"recipe": {"sigma_low": -4}}', "sigma_low = -4"),
    ('{"recipe": {"sigma_high": NaN}}', "sigma_high = nan"),
    ('{"recipe": {"sigma_high": 1e999}}', "sigma_high = inf"),
    ('{"recipe": {"sigma_high": %s.0}}' % ("1" * 5000), "sigma_high = inf"),
    ('{"recipe": {"stack_memory_mb": %s}}' % ("1" * 5000), "stack_memory_mb = a 5000-digit number"),
    ('{"recipe": {"hot_pixels": 1}}', "hot_pixels = 1: true or false is needed"),
    ('{"recipe": {"overscan": "%s"}}' % ("[1:2,1:2]" * 12), "overscan = '[1:2,1:2][1:2,1:2]"),
    ('{"combine": "mode"}', "combine = 'mode'"),  # a recipe of options only
])
def test_a_bad_recipe_json_is_refused_before_any_work(tmp_path, capsys, text, shown):
    (tmp_path / "in").mkdir()
    recipe = tmp_path / "recipe.json"
    recipe.write_text(text)
    argv = ["reduce", "--recipe", str(recipe), str(tmp_path / "in"), str(tmp_path / "out")]
    assert main(argv) == EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and shown in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_a_replayed_recipe_with_a_bad_value_is_refused(tmp_path, capsys):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"input_root": str(tmp_path), "inputs": [{"file": "x.fits", "sha256": "0"}],
                                  "recipe": {"reject": "everything"}}))
    assert main(["reduce", "--recipe", str(recipe)]) == EXIT_USAGE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "reject = 'everything': one of sigma, minmax, none is needed" in lines[0]


def test_the_readme_table_is_the_schemas():
    text = README.read_text()
    start = text.index("<!-- recipe-options -->\n") + len("<!-- recipe-options -->\n")
    end = text.index("<!-- /recipe-options -->")
    assert text[start:end] == schema_table_markdown()
    table = schema_table_markdown().splitlines()
    assert len(table) == 2 + len(OPTIONS)
    for option, row in zip(OPTIONS, table[2:], strict=True):
        assert row.startswith(f"| `{option.name}` | `{option.cli_flag}")
        assert f"`{option.default_text()}`" in row


def test_a_recipe_with_listeners_pickles_as_its_options_alone():
    """The window's recipe has listeners (the dock); the copy a cluster's workers get must unpickle."""
    import pickle

    recipe = Recipe(sigma_low=3, combine="median")
    heard = []
    recipe.events.sigma_low.connect(heard.append)
    copy = pickle.loads(pickle.dumps(recipe.copy()))
    assert copy == recipe and copy.sigma_low == 3.0
    copy.sigma_low = 4
    assert heard == [] and recipe.sigma_low == 3.0
