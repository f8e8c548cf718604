"""``GET /schema/openapi.json``: Litestar's document, with the request bodies made exact.

Handlers decode their bodies themselves with one strict msgspec decoder each (Litestar's
own decoding is lax: it would take ``"1"`` for ``1``), and name the body type in their
``opt``. This render plugin adds each such body to the document from msgspec's own JSON
Schema (so the document says exactly what the decoder accepts: limits, patterns, no
unknown fields), documents the problem responses every route can give, and the bearer
scheme on every route that needs a key.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.routes import HTTPRoute

from adapters.http.access import Rule
from adapters.http.problems import PROBLEM_JSON, TITLES, Problem

REF = "#/components/schemas/{name}"
BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key (`ledger keys create`) in the header `Authorization: Bearer "
    "<key>`; the scheme name is matched case-insensitively. Routes without a security "
    "requirement need no key. On the embedded default served on loopback, no key is needed "
    "until the first one is created.",
}
"""The one way to authenticate (:mod:`adapters.http.access` reads it)."""


class ExactJsonRenderPlugin(JsonRenderPlugin):
    """Serves the OpenAPI document as JSON, completed once per application."""

    def __init__(self) -> None:
        super().__init__()
        self._done: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._done is None:
            document = complete(request.app.routes, copy.deepcopy(openapi_schema))
            self._done = self.render_json(request, document)
        return self._done


def complete(routes: list[Any], document: dict[str, Any]) -> dict[str, Any]:
    """Add the strict request bodies and the problem responses to ``document``."""
    bodies: dict[tuple[str, str], type[Any]] = {}
    rules: dict[tuple[str, str], Rule | None] = {}
    alternates: dict[tuple[str, str], str] = {}
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for http_method in handler.http_methods:
                key = (route.path_format, str(http_method).lower())
                rules[key] = handler.opt.get("access")
                if "alternate_media" in handler.opt:
                    alternates[key] = handler.opt["alternate_media"]
                body = handler.opt.get("body")
                if body is not None:
                    bodies[key] = body
    types = [*set(bodies.values()), Problem]
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    document["components"]["securitySchemes"] = {"bearer": BEARER}
    ref_of = dict(zip(types, refs, strict=True))
    for (path, method), operation in _operations(document):
        body = bodies.get((path, method))
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[body]}},
            }
        rule = rules.get((path, method))
        if rule is not None:
            operation["security"] = [{"bearer": []}]
        _problems(operation, ref_of[Problem], rule, body is not None, method == "post")
        alternate = alternates.get((path, method))
        if alternate is not None:
            for response in operation.get("responses", {}).values():
                response.setdefault("content", {})[alternate] = {"schema": {"type": "object"}}
    return document


def _operations(document: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    found = []
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and method in {"get", "post", "put", "patch", "delete"}:
                found.append(((path, method), operation))
    return found


def _problems(
    operation: dict[str, Any], problem: dict[str, Any], rule: Rule | None, has_body: bool,
    changes_state: bool,
) -> None:
    """The problems an operation can answer: every keyed or bodied route 400, 404 and 503;
    a keyed one 401, 403 and 429; one with a body 413, 415 and 422; one that changes state
    (a POST) 409; one with query parameters 400 (a parameter it cannot read)."""
    responses = operation.setdefault("responses", {})
    statuses = {400, 404, 503} if rule is not None or has_body else set()
    if rule is not None:
        statuses |= {401, 403, 429}
    if has_body:
        statuses |= {413, 415, 422}
    if has_body or changes_state:
        statuses.add(409)
    if any(p.get("in") == "query" for p in operation.get("parameters", ())):
        statuses.add(400)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": TITLES.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": problem}},
        }
