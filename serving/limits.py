"""Limits of the scoring API, enforced before work a caller can cause (issue 13).

`ApiGate` is an ASGI middleware placed in front of the whole service (BentoML's app, so it also
guards routes BentoML owns, such as /metrics). For the routes it is given it checks, in order:

1. the API key, from the `Authorization` header alone: no valid key -> 401/403 and the body is
   never read;
2. the declared `Content-Length` against the route's byte limit -> 413 before reading;
3. the body as it streams in (chunked uploads have no length): past the limit -> 413, and the
   app never sees the request.

When `authorize` fails because the database cannot be reached (`unavailable(exc)`), the
request is answered 503 with `Retry-After`, never 500. A body within its limit is handed to the
app whole; the key's name travels in the ASGI scope
(`SCOPE_KEY`) so the API does not check the key a second time.

`RequestLimits` are the limits applied while reading what was sent: dossiers per envelope
(counted while reading), lines per claim, and how far in the future a date may lie.
Configuration comes in as arguments; this module reads no settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

# Where the gate leaves the name of the key it accepted (the API trusts it: clients cannot set
# ASGI scope entries).
SCOPE_KEY = "claimradar.api_key"
log = logging.getLogger("claimradar.api")

Authorize = Callable[[str], tuple[str | None, int, str]]


@dataclass(frozen=True)
class RequestLimits:
    max_dossiers: int = 1_000  # HOSO per /score_xml envelope
    max_lines_per_claim: int = 500  # XML2 lines, and XML3 lines, of one claim
    clock_skew: timedelta = timedelta(days=1)  # how far past now a date may lie


class TooManyDossiers(ValueError):
    """An envelope with more dossiers than the limit (answered 413)."""


class ApiGate:
    """ASGI middleware: API key, then body bytes, before the app reads anything.

    authorize: Authorization header -> (key name, 200, "") or (None, 401/403, why); blocking
    (a database look-up), run in a thread. body_limits: path -> most body bytes; those paths need
    a key and a bounded body. key_paths: paths that need a key but have no body (e.g. /metrics).
    """

    def __init__(
        self,
        app,
        authorize: Authorize,
        body_limits: Mapping[str, int],
        key_paths: Iterable[str] = (),
        unavailable: Callable[[BaseException], bool] | None = None,
    ) -> None:
        if unavailable is None:
            from serving.store import store_unavailable as unavailable
        self.app, self.authorize, self.unavailable = app, authorize, unavailable
        self.body_limits = dict(body_limits)
        self.key_paths = frozenset(key_paths)

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else None
        if path not in self.body_limits and path not in self.key_paths:
            return await self.app(scope, receive, send)
        from starlette.concurrency import run_in_threadpool

        headers = dict(scope.get("headers") or [])
        header = headers.get(b"authorization", b"").decode("latin-1")
        try:
            name, status, why = await run_in_threadpool(self.authorize, header)
        except Exception as e:
            if not self.unavailable(e):
                raise
            log.warning("key store unavailable: %s", type(e).__name__)
            return await store_down_response()(scope, _nothing, send)
        if name is None:
            return await _answer(scope, send, status, why, {"WWW-Authenticate": "Bearer"})
        scope = {**scope, SCOPE_KEY: name}
        limit = self.body_limits.get(path)
        if limit is None:
            return await self.app(scope, receive, send)
        too_big = f"request body larger than {limit:,} bytes"
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared.isdigit() and int(declared) > limit:
            return await _answer(scope, send, 413, too_big)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _answer(scope, send, 413, too_big)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: disconnects, as the server reports them

        await self.app(scope, replay, send)


def store_down_response():
    """503 + Retry-After: the answer to a request the case store could not serve."""
    from starlette.responses import JSONResponse

    from serving.store import RETRY_AFTER_SECONDS, UNAVAILABLE_DETAIL, UNAVAILABLE_STATUS

    return JSONResponse(
        {"detail": UNAVAILABLE_DETAIL},
        status_code=UNAVAILABLE_STATUS,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _nothing():  # a response never reads the request
    return {"type": "http.disconnect"}


async def _answer(scope, send, status: int, detail: str, headers: dict | None = None) -> None:
    from starlette.responses import JSONResponse

    response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
    await response(scope, _nothing, send)
