"""Request bodies and paths at the HTTP boundary, without a server: the depth scan, integral
floats in integer fields only, and the path checks."""

from __future__ import annotations

import gc
import json
from typing import Any, cast

import msgspec
import pytest
from litestar.types import Scope

from adapters.http.bodies import EnqueueRequest, HeartbeatBatchRequest, decoder
from adapters.http.decoding import MAX_DEPTH, decode_body, depth
from adapters.http.paths import check_path
from adapters.http.problems import ApiError
from ledger.text import name_problem


def decode(body: Any, body_type: type[Any] = EnqueueRequest) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_body(raw, decoder(body_type), body_type)


def test_the_depth_scan_ignores_brackets_and_escaped_quotes_in_strings() -> None:
    tricky = json.dumps({"a": ['[{"\\"', "]]]" * 100, "[[[" * 100], "b": {"c": []}})
    assert depth(tricky.encode()) == 3
    assert depth(b"[" * 70 + b"]" * 70) == 70
    assert depth(b"[]" * 1000) == 1


def test_the_depth_limit_is_inclusive_and_a_recursion_error_becomes_a_400() -> None:
    def body(levels: int) -> bytes:
        inner = levels - 1
        return b'{"customer_id": "a", "payload": ' + b"[" * inner + b"]" * inner + b"}"

    assert decode(body(MAX_DEPTH)).customer_id == "a"
    # Earlier tests' garbage (an unclosed application's __del__) finalized by a collection
    # that the deep decode triggers would run at the recursion limit and fail there as an
    # unraisable exception, which pytest reports as this test's: collect it first.
    gc.collect()
    gc.disable()
    try:
        for levels in (MAX_DEPTH + 1, 200_000):
            with pytest.raises(ApiError) as refused:
                decode(body(levels))
            assert (refused.value.status, refused.value.code) == (400, "too_deep")
    finally:
        gc.enable()


def test_integral_floats_become_integers_only_in_integer_fields() -> None:
    body = decode({"customer_id": "a", "max_attempts": 17.0, "payload": {"x": 1.0}})
    assert body.max_attempts == 17
    assert type(body.max_attempts) is int
    assert body.payload == {"x": 1.0}
    assert type(body.payload["x"]) is float
    batch = decode({"worker_id": "w", "worker_time": "2026-11-28T15:31:45Z", "jobs": [
        {"job_id": "6f0c7c36-55a4-4c1e-9f3b-1c7f0a2b9d11", "attempt": 2.0}]},
        HeartbeatBatchRequest)
    assert batch.jobs[0].attempt == 2
    assert batch.worker_time is not None


@pytest.mark.parametrize("value", [17.5, "17", True, 1e300, -0.5, None])
def test_other_values_in_integer_fields_are_still_refused(value: Any) -> None:
    with pytest.raises(ApiError) as refused:
        decode({"customer_id": "a", "max_attempts": value})
    assert (refused.value.status, refused.value.code) == (422, "invalid_body")


def test_the_enqueue_body_schema_still_says_integer() -> None:
    schema = msgspec.json.schema(EnqueueRequest)["$defs"]["EnqueueRequest"]
    assert schema["properties"]["max_attempts"]["type"] == "integer"


def test_name_problem_names_control_characters_lone_surrogates_and_non_characters() -> None:
    assert name_problem("acme café ☕") is None
    assert name_problem("a\x00b") == "it contains U+0000 (a control character)"
    assert name_problem("a\ud800") == "it contains U+D800 (a lone surrogate)"
    assert name_problem("a\ufffe") == "it contains U+FFFE (a non-character)"
    assert name_problem("tab\there") == "it contains U+0009 (a control character)"


@pytest.mark.parametrize(("raw", "params"), [
    (b"/queue/%FF%FE", {"customer_id": "\ufffd\ufffd"}),
    (b"/queue/a%00b", {"customer_id": "a\x00b"}),
    (b"/queue/x", {"customer_id": "a\udc80"}),
])
def test_check_path_refuses_non_utf8_paths_and_odd_parameters(
    raw: bytes, params: dict[str, Any]
) -> None:
    with pytest.raises(ApiError) as refused:
        check_path(cast(Scope, {"type": "http", "raw_path": raw, "path_params": params}))
    assert (refused.value.status, refused.value.code) == (400, "invalid_path")
    check_path(cast(Scope, {"type": "http", "raw_path": b"/queue/caf%C3%A9",
                            "path_params": {"customer_id": "café"}}))


@pytest.mark.parametrize(("raw", "escape"), [
    (b'{"customer_id": "a\\ud800"}', "\\ud800"),
    (b'{"customer_id": "a\\udc00b"}', "\\udc00"),
    (b'{"customer_id": "acme", "payload": {"k": "\\uD83D"}}', "\\uD83D"),
])
def test_a_lone_surrogate_is_named_in_the_400(raw: bytes, escape: str) -> None:
    with pytest.raises(ApiError) as refused:
        decode_body(raw, decoder(EnqueueRequest), EnqueueRequest)
    assert refused.value.status == 400
    assert refused.value.code == "malformed_json"
    assert f"{escape} at byte" in str(refused.value)
    assert "lone surrogate" in str(refused.value)


def test_a_surrogate_pair_is_text() -> None:
    raw = b'{"customer_id": "a\\ud83d\\ude00"}'
    body = decode_body(raw, decoder(EnqueueRequest), EnqueueRequest)
    assert body.customer_id == "a\U0001f600"
