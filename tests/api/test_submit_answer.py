"""The intake answer is written by orjson, not by the response models: it must be the models' JSON exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from controller.api.schemas import (
    SubmitBatchResult,
    SubmitResult,
    decision_fields,
    submit_answer,
    submit_result,
)
from controller.packages import PackageState

_text = st.text(max_size=12)
_eta = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=2)), timezone(-timedelta(minutes=90))])),
)
_hint_values = st.one_of(_text, st.integers(), st.floats(allow_nan=False))
_hints = st.one_of(
    st.dictionaries(_text, st.dictionaries(_text, _text, max_size=3), max_size=3),
    # What a hand-edited or older store could hold: not text everywhere, or not a dict per kind.
    st.dictionaries(_text, st.one_of(st.dictionaries(_text, _hint_values, max_size=2), _text), max_size=2),
)
_decision = st.fixed_dictionaries(
    {"decision": st.sampled_from(["van", "drone", "robot", "queued", "delivered", "cancelled"])},
    optional={
        "mode": st.sampled_from(["drone", "robot", "van", None]),
        "vehicle_id": st.one_of(st.none(), _text),
        "eta": _eta,
        "reason": st.one_of(st.none(), _text),
        "reasons": st.lists(_text, max_size=3),
        "detail": st.one_of(st.just({}), st.fixed_dictionaries({"hints": _hints})),
    },
)
_result = st.fixed_dictionaries(
    {
        "id": _text,
        "key": _text,
        "created": st.booleans(),
        "state": st.sampled_from(list(PackageState)),
        "decision": _decision,
        "tracking_url": st.one_of(st.none(), _text),
    }
)


def _as_answered(result: dict[str, Any]) -> dict[str, Any]:
    return submit_result(
        result["id"],
        result["key"],
        result["created"],
        result["state"],
        result["decision"],
        result["tracking_url"],
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(_result, min_size=1, max_size=4))
def test_a_batch_answer_is_the_models_json_byte_for_byte(results: list[dict[str, Any]]) -> None:
    answered = [_as_answered(r) for r in results]
    model = TypeAdapter(SubmitBatchResult)
    assert submit_answer(answered, batch=True) == model.dump_json(
        model.validate_python({"packages": answered})
    )


@settings(max_examples=100, deadline=None)
@given(_result)
def test_a_single_answer_is_the_models_json_byte_for_byte(result: dict[str, Any]) -> None:
    answered = _as_answered(result)
    model = TypeAdapter(SubmitResult)
    assert submit_answer([answered], batch=False) == model.dump_json(model.validate_python(answered))


def test_hints_that_are_not_all_text_are_shown_as_text() -> None:
    fields = decision_fields(
        {"decision": "van", "detail": {"hints": {"drone": {"overweight": 2.5}, "x": "y"}}}
    )
    assert fields["hints"] == {"drone": {"overweight": "2.5"}}
