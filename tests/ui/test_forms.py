"""Predictor forms: which input each JSON Schema property the server writes becomes; chart rows."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from models.predictors.schema import input_schema
from ui.predictors import chart_frame, field_component, start_value


def test_enum_becomes_an_empty_dropdown_of_exactly_the_schema_values() -> None:
    """A string enum: a dropdown offering exactly those values, nothing preselected."""
    schema = {"type": "string", "enum": ["Female", "Male"]}
    with gr.Blocks():
        box = field_component("sex", schema, "income-sex")
    assert isinstance(box, gr.Dropdown)
    assert [value for _, value in box.choices] == ["Female", "Male"]
    assert box.value is None
    assert box.label == "sex" and box.elem_id == "income-sex"


def test_numbers_become_unbounded_number_boxes_captioned_with_the_training_range() -> None:
    """Numbers/integers of a schema learned as the server learns it: number boxes, no min/max."""
    train = pd.DataFrame({"age": [17, 90], "petal_width": [0.1, 2.5], "label": ["a", "b"]})
    properties = input_schema(train)["properties"]
    with gr.Blocks():
        age = field_component("age", properties["age"], "a")
        width = field_component("petal_width", properties["petal_width"], "w")
    assert isinstance(age, gr.Number) and isinstance(width, gr.Number)
    assert age.precision == 0 and width.precision is None
    assert age.info == "seen in training: 17 to 90" and width.label == "petal width"
    assert age.minimum is None and age.maximum is None  # the server's 422 names a bad field


def test_zero_one_integer_becomes_a_dropdown() -> None:
    """A 0/1 column (the server writes an integer enum) is a two-choice dropdown."""
    train = pd.DataFrame({"senior": [0, 1, 0], "label": ["a", "b", "a"]})
    with gr.Blocks():
        box = field_component("senior", input_schema(train)["properties"]["senior"], "s")
    assert isinstance(box, gr.Dropdown)
    assert [value for _, value in box.choices] == [0, 1]


def test_chart_rows_are_ranked_most_likely_first() -> None:
    """The bar chart's rows: most likely class first."""
    frame = chart_frame({"setosa": 0.1, "virginica": 0.7, "versicolor": 0.2})
    assert list(frame["class"]) == ["virginica", "versicolor", "setosa"]
    assert list(frame["probability"]) == [0.7, 0.2, 0.1]


def test_a_nullable_feature_says_it_may_be_left_empty() -> None:
    """A feature missing in training (the server says nullable): the caption says so."""
    train = pd.DataFrame({"total": [1.0, None, 3.0], "kind": ["a", None, "b"], "label": [0, 1, 0]})
    properties = input_schema(train)["properties"]
    with gr.Blocks():
        total = field_component("total", properties["total"], "t")
        kind = field_component("kind", properties["kind"], "k")
    assert total.info == "seen in training: 1.0 to 3.0; may be left empty if unknown"
    assert kind.info == "may be left empty if unknown"


def test_fields_start_inside_the_training_data_never_at_zero() -> None:
    """A schema `default` (median/mode) wins; else a number starts mid training range."""
    train = pd.DataFrame({"age": [17, 90, 40], "width": [0.1, 2.5, 1.0], "label": ["a", "b", "a"]})
    properties = input_schema(train)["properties"]
    with gr.Blocks():
        age = field_component("age", properties["age"], "a")
        width = field_component("width", properties["width"], "w")
        sex = field_component("sex", {"type": "string", "enum": ["F", "M"], "default": "M"}, "s")
    assert age.value == 40 and width.value == 1.0  # the training medians
    mid = {"type": "number", "minimum": 0, "maximum": 10, "description": "seen in training: 1 to 9"}
    assert start_value(mid) == 5  # without a default: the middle of the training range
    assert sex.value == "M"
    assert (
        start_value({"type": "number", "default": 5.8, "description": "seen in training: 1 to 9"})
        == 5.8
    )
    assert start_value({"type": "string", "enum": ["F", "M"]}) is None  # no mode known
    assert start_value({"type": "number"}) is None
