"""The real data sets, their fixed splits and the input schemas learned from them."""

from __future__ import annotations

import pytest

from models.predictors.datasets import LABEL, feature_records, load_split, load_training_frame
from models.predictors.registry import PREDICTOR_NAMES
from models.predictors.schema import InvalidInput, input_schema, to_frame, validate_records

INCOME_FEATURES = [
    "age",
    "workclass",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
]


def test_split_sizes_and_labels() -> None:
    """Iris 150, Adult 32,561 + 16,281 (official split), Telco 7,043 rows; clean labels."""
    sizes = {name: load_split(name) for name in PREDICTOR_NAMES}
    assert (len(sizes["iris"].train), len(sizes["iris"].test)) == (120, 30)
    assert (len(sizes["income"].train), len(sizes["income"].test)) == (32_561, 16_281)
    assert len(sizes["churn"].train) + len(sizes["churn"].test) == 7_043
    assert set(sizes["income"].test[LABEL]) == {"<=50K", ">50K"}  # the trailing dots are gone
    assert set(sizes["churn"].train[LABEL]) == {"No", "Yes"}
    assert set(sizes["iris"].train[LABEL]) == {"setosa", "versicolor", "virginica"}


def test_training_frame_uses_the_api_feature_names() -> None:
    """load_training_frame: the API's feature names (snake_case) plus "label"."""
    iris = load_training_frame("iris")
    assert list(iris.columns) == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
        LABEL,
    ]
    income = load_training_frame("income")
    assert list(income.columns) == [*INCOME_FEATURES, LABEL]
    assert not (income == "?").any().any()  # "?" is read as missing
    churn = load_training_frame("churn")
    assert "rownames" not in churn.columns and churn.columns[-1] == LABEL


@pytest.mark.parametrize("name", PREDICTOR_NAMES)
def test_schema_gives_every_category_an_enum(name: str) -> None:
    """Strings carry their categories; numbers a range that holds the training range."""
    train = load_training_frame(name)
    schema = input_schema(train)
    assert schema["required"] == [c for c in train.columns if c != LABEL]
    for feature, spec in schema["properties"].items():
        assert spec.get("nullable", False) == bool(train[feature].isna().any())
        if spec["type"] == "string":
            assert spec["enum"] == sorted(train[feature].dropna().unique())
        else:
            assert spec["minimum"] <= train[feature].min() <= train[feature].max()
            assert train[feature].max() <= spec["maximum"]
            assert spec["minimum"] >= 0 or train[feature].min() < 0


def test_validation_converts_and_names_the_field() -> None:
    """Integers given as 40.0 become ints; a bad category names the field and the allowed values."""
    schema = input_schema(load_training_frame("income"))
    record = load_training_frame("income").dropna().iloc[0].drop(LABEL).to_dict()
    record = {k: v.item() if hasattr(v, "item") else v for k, v in record.items()}
    record["hours_per_week"] = 40.0
    assert validate_records(schema, [record])[0]["hours_per_week"] == 40
    with pytest.raises(InvalidInput) as bad:
        validate_records(schema, [record, {**record, "sex": "Robot"}])
    assert bad.value.param == "inputs[1].sex"
    assert "'Female', 'Male'" in str(bad.value)


def test_null_is_accepted_exactly_where_training_had_missing_values() -> None:
    """Adult's unknown workclass / occupation / native_country: null passes and becomes NaN."""
    train = load_training_frame("income")
    schema = input_schema(train)
    nullable = {n for n, spec in schema["properties"].items() if spec.get("nullable")}
    assert nullable == {"workclass", "occupation", "native_country"}
    unknown = train[train["native_country"].isna() & train["workclass"].isna()].head(3)
    records = validate_records(schema, feature_records(unknown, keep_missing=True))
    assert [r["native_country"] for r in records] == [None] * 3
    frame = to_frame(schema, records)
    assert frame["native_country"].isna().all() and frame["workclass"].isna().all()
    numbers = train.drop(columns=LABEL).select_dtypes("number").dtypes
    assert frame.select_dtypes("number").dtypes.equals(numbers)
    with pytest.raises(InvalidInput, match="null is not allowed") as bad:
        validate_records(schema, [{**records[0], "age": None}])
    assert bad.value.param == "inputs[0].age"
