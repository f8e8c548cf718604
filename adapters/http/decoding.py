"""Decoding a request body: strict msgspec, a nesting limit, and integral floats as integers.

- **Depth**: a body may nest at most ``MAX_DEPTH`` arrays and objects (400 ``too_deep``
  beyond). Without a limit, a body nested about a thousand levels deep made the decoder
  raise ``RecursionError`` (a 500), and a payload a little shallower could be accepted and
  then fail wherever else it is decoded or encoded (a view, the history route).
- **Integral floats**: JSON Schema counts ``17.0`` as an integer, so an integer field
  accepts it as ``17``; ``17.5``, ``"17"`` and ``true`` are still refused (422). Only the
  declared integer fields are touched: a payload keeps its ``1.0``.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any, TypeVar

import msgspec
from msgspec import inspect

from adapters.http.problems import ApiError

MAX_DEPTH = 64
"""The deepest a request body may nest (arrays and objects, the body itself included)."""

T = TypeVar("T")

_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]++")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def too_deep() -> ApiError:
    return ApiError(
        400, f"the body nests more than {MAX_DEPTH} levels of arrays and objects",
        code="too_deep",
    )


def depth(raw: bytes) -> int:
    """How deeply the valid JSON ``raw`` nests (brackets inside strings do not count)."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return MAX_DEPTH  # cannot be deeper: no need to look closer
    brackets = _NOT_BRACKETS.sub(b"", _STRINGS.sub(b"", raw))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
"""A ``\\uD800``-``\\uDFFF`` escape outside a high-low pair: a lone surrogate."""


def _malformed(raw: bytes, error: msgspec.DecodeError) -> str:
    """Why ``raw`` is not JSON the ledger reads; a lone surrogate is named as such (the
    decoder's own message for it is "Input data was truncated")."""
    found = _LONE_SURROGATE.search(raw)
    if found is not None:
        escape = found.group().decode("ascii")
        return (f"malformed JSON: {escape} at byte {found.start()} is a lone surrogate, "
                "which is not text (a surrogate escape must be half of a pair)")
    return f"malformed JSON: {error}"


def decode_body(raw: bytes, decoder: msgspec.json.Decoder[T], body_type: type[T]) -> T:
    """``raw`` as ``body_type`` by ``decoder``, or the 4xx :class:`ApiError`."""
    try:
        body = decoder.decode(raw)
    except RecursionError:
        raise too_deep() from None
    except msgspec.ValidationError as error:
        body = _with_integral_floats(raw, body_type, error)
    except msgspec.DecodeError as error:
        raise ApiError(400, _malformed(raw, error), code="malformed_json") from None
    if depth(raw) > MAX_DEPTH:  # only valid JSON gets here: the scan is linear
        raise too_deep()
    return body


def _with_integral_floats(raw: bytes, body_type: type[T], error: msgspec.ValidationError) -> T:
    """Decode again with integral floats in integer fields made integers, or raise the 422
    of the first decoding."""
    refused = ApiError(422, f"invalid body: {error}", code="invalid_body")
    if "got `float`" not in str(error):
        raise refused from None
    try:
        loose = msgspec.json.decode(raw)
        return msgspec.convert(_integral(loose, inspect.type_info(body_type)), body_type)
    except RecursionError:
        raise too_deep() from None
    except msgspec.ValidationError as again:
        raise ApiError(422, f"invalid body: {again}", code="invalid_body") from None


def _integral(value: Any, info: inspect.Type) -> Any:
    """``value`` with each integral float where ``info`` declares an integer made an int."""
    if isinstance(info, inspect.IntType):
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            return int(value)
        return value
    if isinstance(info, inspect.UnionType):
        for member in info.types:
            if isinstance(member, inspect.IntType | inspect.StructType | inspect.ListType):
                value = _integral(value, member)
        return value
    if isinstance(info, inspect.StructType) and isinstance(value, dict):
        for field in info.fields:
            if field.encode_name in value:
                value[field.encode_name] = _integral(value[field.encode_name], field.type)
        return value
    if isinstance(info, inspect.ListType) and isinstance(value, list):
        return [_integral(item, info.item_type) for item in value]
    return value
