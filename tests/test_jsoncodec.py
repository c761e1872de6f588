"""The ingest path's JSON: orjson's speed, the standard library's answers."""

from __future__ import annotations

import json

import pytest
from django.utils.safestring import SafeString

from eventfeed.events import jsoncodec
from eventfeed.events.schema import validate_event
from tests.conftest import make_event


def test_it_reads_integers_beyond_64_bits_and_writes_them_back():
    value = jsoncodec.loads(b'{"n": 123456789012345678901234567890}')
    assert value == {"n": 123456789012345678901234567890}
    assert json.loads(jsoncodec.dumps(value)) == value


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_it_refuses_nan_and_infinity_by_name(constant):
    with pytest.raises(json.JSONDecodeError) as info:
        jsoncodec.loads(f'{{"ok": 1, "x": {constant}}}'.encode())
    assert info.value.msg == f"{constant} is not a JSON number"
    assert info.value.colno > 1


def test_it_names_line_and_column_of_malformed_json():
    with pytest.raises(json.JSONDecodeError) as info:
        jsoncodec.loads(b'{"a": 1,\n "b": }')
    assert (info.value.lineno, info.value.colno) == (2, 7)


def test_it_lets_validation_name_a_lone_surrogate():
    # msgspec refuses the escape outright; the fallback reads it so validation can say where.
    raw = jsoncodec.loads(json.dumps(make_event(payload={"s": "\ud800"})))
    event, problems = validate_event(raw)
    assert event is None and "surrogate" in problems[0].rule


def test_it_writes_compact_json_and_keeps_non_ascii():
    assert jsoncodec.dumps({"a": [1, "é"]}) == '{"a":[1,"é"]}'


def test_it_writes_str_subclasses_as_strings():
    assert jsoncodec.dumps({"a": SafeString("<b>")}) == '{"a":"<b>"}'


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_it_refuses_json_nested_too_deeply_by_name(depth):
    # msgspec and json both raise RecursionError here: it must be the same clean refusal as
    # any other malformed JSON, not an exception that takes a batch down with it.
    with pytest.raises(json.JSONDecodeError) as info:
        jsoncodec.loads("[" * depth + "]" * depth)
    assert "nested too deeply" in info.value.msg


def test_it_refuses_an_event_too_deep_to_validate_with_a_problem():
    # Parsed in a shallow stack, validated in a deep one: validation names the problem too.
    raw = make_event(payload={"a": jsoncodec.loads("[" * 900 + "]" * 900)})

    def nested(n):
        return validate_event(raw) if n == 0 else nested(n - 1)

    event, problems = nested(300)
    assert event is None and "nested too deeply" in problems[0].rule
