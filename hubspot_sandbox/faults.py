"""Seeded fault injection for /crm and /oauth routes (never the /_sandbox inspection routes).

Spec: "500=0.05,502=0.01,503=0.01,429=0.02,slow=0.01,drop=0.01" — the share of requests answered with
that status, delayed by `slow_seconds` before normal handling, or dropped. A drop lets the request run
(its write is applied) and then closes the socket without a response: the case a client must survive
by retrying idempotently. One draw per request from random.Random(seed) keeps runs reproducible."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import orjson

from .errors import ApiError
from .limits import rate_error

Scope = dict[str, Any]
FAULT_PREFIXES = ("/crm", "/oauth")
_STATUS_CATEGORY = {500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}


def parse_faults(spec: str | None) -> list[tuple[str, float]]:
    """[(kind, share)] with kind a status code ("500", "429", ...), "slow" or "drop"."""
    shares: list[tuple[str, float]] = []
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, _, value = part.partition("=")
        kind = kind.strip().lower()
        if kind not in ("slow", "drop") and not (kind.isdigit() and (int(kind) in _STATUS_CATEGORY or kind == "429")):
            raise ValueError(f"unknown fault kind {kind!r} (use 429, 500, 502, 503, 504, slow or drop)")
        share = float(value)
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"fault share for {kind} must be between 0 and 1")
        shares.append((kind, share))
    if sum(s for _, s in shares) > 1.0:
        raise ValueError("fault shares add up to more than 1")
    return shares


def fault_error(kind: str) -> ApiError:
    if kind == "429":
        return rate_error("TEN_SECONDLY_ROLLING")
    status = int(kind)
    return ApiError(status, _STATUS_CATEGORY[status], "The server encountered an error (injected by the sandbox).")


class FaultInjector:
    """ASGI middleware. Sets scope["sandbox.fault"] to the injected kind so stats can count it."""

    def __init__(self, app: Any, spec: str | None, seed: int | None, slow_seconds: float = 2.0) -> None:
        self.app = app
        self.shares = parse_faults(spec)
        self.seed = seed
        self.slow_seconds = slow_seconds
        self.reseed()

    def reseed(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self) -> str | None:
        if not self.shares:
            return None
        x = self.rng.random()
        for kind, share in self.shares:
            if x < share:
                return kind
            x -= share
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(FAULT_PREFIXES):
            await self.app(scope, receive, send)
            return
        kind = self.draw()
        if kind is None:
            await self.app(scope, receive, send)
            return
        scope["sandbox.fault"] = kind
        if kind == "slow":
            await asyncio.sleep(self.slow_seconds)
            await self.app(scope, receive, send)
        elif kind == "drop":
            await self._drop(scope, receive)
        else:
            err = fault_error(kind)
            body = orjson.dumps(err.body())
            await send({"type": "http.response.start", "status": err.status,
                        "headers": [(b"content-type", b"application/json;charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    async def _drop(self, scope: Scope, receive: Any) -> None:
        async def swallow(message: dict[str, Any]) -> None:
            return None

        await self.app(scope, receive, swallow)
        raw_send = scope.get("sandbox.raw_send")
        transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
        if transport is None:  # not under uvicorn: the best we can do is fail loudly
            raise ConnectionAbortedError("sandbox dropped the connection")
        transport.abort()
        for _ in range(3):  # let uvicorn see the disconnect before it decides to answer
            await asyncio.sleep(0)
