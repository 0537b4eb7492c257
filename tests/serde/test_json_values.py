"""The one rule of what a JSON value is (requests' data, actions' outputs)."""

from __future__ import annotations

import datetime
import math

import pytest

from actionstate.serde import json_problem


@pytest.mark.parametrize(
    "value", [None, True, 0, -1.5, "x", [], {}, [1, {"a": [None, "b"]}], (1, 2), {"k": 2**70}]
)
def test_json_values_have_no_problem(value: object) -> None:
    assert json_problem(value) is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (math.nan, "value is a float JSON cannot hold"),
        ({"x": [1, math.inf]}, "value['x'][1] is a float JSON cannot hold"),
        ({1: "a"}, "value has a key of type int; JSON object keys are str"),
        ([datetime.date(2026, 1, 1)], "value[0] is of type date"),
        ({"s": {1, 2}}, "value['s'] is of type set"),
    ],
)
def test_the_problem_names_where_it_is(value: object, problem: str) -> None:
    found = json_problem(value)
    assert found is not None
    assert found.startswith(problem)


def test_the_path_names_the_root() -> None:
    assert json_problem([math.nan], "data") == "data[0] is a float JSON cannot hold (nan or inf)"
