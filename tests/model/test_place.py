"""Where a run executes, named and checked without Dask or Qt."""

import pytest

from ccdgui.model.place import HERE, describe_place, parse_place, why_not_on_cluster
from ccdgui.model.simulate import SimParams, iter_night


@pytest.mark.parametrize("typed, place", [
    ("", HERE), ("  here ", HERE), ("local", HERE), ("local:2", "local:2"), ("LOCAL:03", "local:3"),
    ("head", "tcp://head:8786"), ("head:9000", "tcp://head:9000"), ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
    ("tls://head.example.org:8786/", "tls://head.example.org:8786"), ("[::1]:8786", "tcp://[::1]:8786"),
])
def test_typed_places_become_canonical(typed, place):
    assert parse_place(typed) == place


@pytest.mark.parametrize("typed", ["local:0", "local:x", "local:-2", "local:1000", "http://head:8786",
                                   "head:99999", "head:port", "a b", "tcp://"])
def test_what_is_not_a_place_is_refused_in_one_line(typed):
    with pytest.raises(ValueError) as caught:
        parse_place(typed)
    assert "\n" not in str(caught.value) and repr(typed.strip()) in str(caught.value)


def test_places_are_described_for_the_status_bar():
    assert describe_place(HERE) == "this computer"
    assert describe_place("local:1") == "a local Dask cluster of 1 worker process"
    assert describe_place("local:4") == "a local Dask cluster of 4 worker processes"
    assert describe_place("tcp://head:8786") == "the Dask cluster at tcp://head:8786"


def test_a_simulated_night_runs_here_only():
    frames = list(iter_night(SimParams(nx=32, ny=32, n_bias=2, n_dark=2, n_flat=2, n_light=1, seed=1)))
    assert why_not_on_cluster(frames, HERE) is None
    why = why_not_on_cluster(frames, "local:2")
    assert "simulated" in why and "ccdgui simulate" in why and "\n" not in why
