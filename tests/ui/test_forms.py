"""Predictor forms: which input each JSON Schema property becomes, and the chart's rows."""

from __future__ import annotations

import gradio as gr

from ui.predictors import chart_frame, field_component


def test_enum_becomes_a_dropdown_of_exactly_the_schema_values() -> None:
    schema = {"type": "string", "enum": ["Female", "Male"]}
    with gr.Blocks():
        box = field_component("sex", schema, "income-sex")
    assert isinstance(box, gr.Dropdown)
    assert [value for _, value in box.choices] == ["Female", "Male"]
    assert box.label == "sex" and box.elem_id == "income-sex"


def test_integer_and_number_become_bounded_number_boxes() -> None:
    with gr.Blocks():
        age = field_component("age", {"type": "integer", "minimum": 17, "maximum": 90}, "a")
        width = field_component("petal_width", {"type": ["number", "null"]}, "w")
    assert isinstance(age, gr.Number) and isinstance(width, gr.Number)
    assert age.precision == 0
    assert age.info == "from 17 to 90"
    assert width.precision is None and width.label == "petal width"


def test_free_string_becomes_a_textbox() -> None:
    with gr.Blocks():
        note = field_component("note", {"type": "string"}, "n")
    assert isinstance(note, gr.Textbox)


def test_chart_rows_are_ranked_most_likely_first() -> None:
    frame = chart_frame({"setosa": 0.1, "virginica": 0.7, "versicolor": 0.2})
    assert list(frame["class"]) == ["virginica", "versicolor", "setosa"]
    assert list(frame["probability"]) == [0.7, 0.2, 0.1]
