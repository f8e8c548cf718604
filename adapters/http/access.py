"""Who may call a route, and how often: API keys, roles, customer scope and rate limits.

Each limited route carries a :class:`Rule` in its ``opt``; one ASGI middleware (run by
Litestar after routing, so it knows the route) authenticates the caller (:class:`Access`),
checks the role, asks the limiter, and adds the rate-limit headers to whatever the route
answers. It also times every request for the latency histogram.

A request with a bad key counts against the ``auth`` preset of its client address (5 per
15 minutes), so keys cannot be guessed quickly; good keys are never slowed by it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.problems import ApiError
from adapters.http.ratelimit import Decision, Limiter
from adapters.service.keys import KeyVerifier
from adapters.service.metrics import REQUEST_LATENCY
from ledger.access import OPEN, Principal, Role

ANYONE: frozenset[Role] = frozenset()


@dataclass
class Access:
    """Who may call: API keys, or anyone on the embedded default's loopback."""

    verifier: KeyVerifier
    open_allowed: bool
    """True only for the embedded default on a loopback address: while no key exists,
    requests need none (``ledger serve`` says so when it starts)."""

    async def open_now(self) -> bool:
        if not self.open_allowed:
            return False
        return not await anyio.to_thread.run_sync(self.verifier.keys_exist)

    async def principal_for(self, key: str) -> Principal | None:
        cached = self.verifier.cached(key)
        if cached is not None:
            return cached
        return await anyio.to_thread.run_sync(self.verifier.verify, key)


@dataclass(frozen=True, slots=True)
class Rule:
    """The access rule of a route."""

    roles: frozenset[Role]
    """Roles that may call it (``admin`` always may)."""
    preset: str
    """The rate-limit preset it counts against."""
    customer_param: str | None = None
    """A path parameter naming a customer: any key scoped to that customer may call."""


def rule(*roles: Role, preset: str, customer_param: str | None = None) -> Rule:
    return Rule(frozenset(roles), preset, customer_param)


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    """The caller the middleware let through (``OPEN`` on routes without a rule)."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else OPEN


def actor_of(principal: Principal) -> str:
    """The caller as the ledger records who asked."""
    return f"api:key:{principal.key_id}" if principal.key_id else "api:open"


def access_middleware(app: ASGIApp, access: Access, limiter: Limiter) -> ASGIApp:
    """Litestar middleware factory (with ``DefineMiddleware``): see the module docstring."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]
        extra: list[tuple[bytes, bytes]] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            opt = scope["route_handler"].opt
            found = opt.get("access") or _rule_for_query(scope, opt)
            if isinstance(found, Rule):
                decision = await _admit(scope, found, access, limiter)
                extra.extend(decision.header_pairs())
            await app(scope, receive, send_with_headers)
        except ApiError as error:
            status[0] = error.status
            raise
        finally:
            route = scope.get("path_template") or "unmatched"
            _latency(scope.get("method", "-"), route, status[0]).observe(
                time.perf_counter() - started
            )

    return middleware


_LATENCIES: dict[tuple[str, str, int], Any] = {}
MAX_LATENCY_SERIES = 2_000


def _latency(method: str, route: str, status: int) -> Any:
    """The latency histogram's child for these labels, looked up once per label set (route
    templates and statuses are a bounded few; past ``MAX_LATENCY_SERIES``, no caching)."""
    key = (method, route, status)
    found = _LATENCIES.get(key)
    if found is None:
        found = REQUEST_LATENCY.labels(method, route, str(status))
        if len(_LATENCIES) < MAX_LATENCY_SERIES:
            _LATENCIES[key] = found
    return found


def _rule_for_query(scope: Scope, opt: dict[str, Any]) -> Rule | None:
    """The rule an open route takes when a query parameter is given (``access_with_query``:
    ``{"as_of": rule}`` makes ``/health?as_of=`` staff-only while ``/health`` stays open)."""
    rules = opt.get("access_with_query")
    if not rules:
        return None
    given = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return next((r for name, r in rules.items() if name in given), None)


async def _admit(scope: Scope, rule: Rule, access: Access, limiter: Limiter) -> Decision:
    """Authenticate, authorise and rate-limit; raise the 401/403/404/429 otherwise."""
    client = scope.get("client")
    address = client[0] if client else "unknown"
    principal = await _authenticate(access, limiter, scope, address)
    _authorise(scope, rule, principal)
    subject = f"key:{principal.key_id}" if principal.key_id else f"ip:{address}"
    decision = await limiter.decide(
        rule.preset, subject, principal.customer_id or subject
    )
    if not decision.allowed:
        raise ApiError(
            429,
            f"rate limit of the {rule.preset!r} preset exceeded "
            f"({decision.preset.limit} per {decision.preset.window_seconds}s); "
            f"retry in {decision.reset_after}s",
            code="rate_limited", headers=decision.headers(),
        )
    scope.setdefault("state", {})["principal"] = principal
    return decision


async def _authenticate(
    access: Access, limiter: Limiter, scope: Scope, address: str
) -> Principal:
    key = _bearer(scope)
    if key is None:
        if await access.open_now():
            return OPEN
        raise ApiError(
            401, "an API key is required: Authorization: Bearer <key>", code="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="job-ledger"'},
        )
    principal = await access.principal_for(key)
    if principal is not None:
        return principal
    decision = await limiter.decide("auth", f"ip:{address}")
    if not decision.allowed:
        raise ApiError(
            429, "too many requests with invalid API keys from this address; "
            f"retry in {decision.reset_after}s", code="rate_limited", headers=decision.headers(),
        )
    raise ApiError(
        401, "the API key is not valid (unknown, revoked or malformed)", code="invalid_key",
        headers={"WWW-Authenticate": 'Bearer realm="job-ledger", error="invalid_token"'},
    )


def _authorise(scope: Scope, rule: Rule, principal: Principal) -> None:
    if rule.customer_param is not None:
        customer = str(scope.get("path_params", {}).get(rule.customer_param, ""))
        if principal.customer_id is not None:
            if not principal.sees_customer(customer):
                raise ApiError(404, f"no customer {customer!r}", code="not_found")
            return
    if not principal.may(rule.roles):
        wanted = " or ".join(sorted(str(r) for r in rule.roles | {Role.ADMIN}))
        raise ApiError(
            403, f"this route needs a {wanted} key; this key is {principal.role}",
            code="forbidden",
        )


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""  # present but not a bearer token: a bad key
    return None
