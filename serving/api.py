"""The HTTP API for the claims system (FastAPI, served inside the BentoML service).

Endpoints: POST /score (JSON claims), POST /score_xml (one XML 130 envelope, raw or base64),
GET /model. Every endpoint needs an API key (`Authorization: Bearer <key>`); BentoML's own
/livez, /readyz and /metrics stay open. Bad input is answered with 4xx and field-level messages;
one bad claim never stops the good ones in the same request.

The request model is generated from the data contract (features/schema.py), so /docs.json names
and describes every XML 130 field.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model
from sqlalchemy.exc import DBAPIError

from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES, Table
from scoring import registry
from serving.limits import SCOPE_KEY, TooManyDossiers, store_down_response
from serving.store import StoreBusy, store_unavailable

log = logging.getLogger("claimradar.api")
EXAMPLE = json.loads((Path(__file__).with_name("example_claim.json")).read_text())
XML_TYPES = ("application/xml", "text/xml")


# -- request and response models, from the data contract ---------------------------------------


def _fields(table: Table, example: dict) -> dict[str, Any]:
    out = {}
    for f in table.fields:
        if not f.xml or f.xml in out:
            continue
        what = f.description or f.name
        unit = f" ({f.unit})" if f.unit else ""
        need = "required" if f.required else "optional"
        alias = f"; also accepted as {', '.join(f.aliases)}" if f.aliases else ""
        extra = {"examples": [example[f.xml]]} if f.xml in example else {}
        names = AliasChoices(f.xml, *f.aliases) if f.aliases else None
        out[f.xml] = (
            Any,
            Field(
                None,
                description=f"{what}{unit}; {need}{alias}",
                json_schema_extra=extra,
                validation_alias=names,
            ),
        )
    return out


# Keys that are not XML 130 names (nor their 4210 aliases) are ignored: they never become columns.
_lenient = ConfigDict(extra="ignore")
DrugLine = create_model(
    "DrugLine",
    __config__=_lenient,
    __doc__="One XML2 line (drug or blood product); XML 130 names.",
    **_fields(DRUG_LINES, EXAMPLE["xml2"][0]),
)
ServiceLine = create_model(
    "ServiceLine",
    __config__=_lenient,
    __doc__="One XML3 line (service, supply, bed-day); XML 130 names.",
    **_fields(SERVICE_LINES, EXAMPLE["xml3"][0]),
)
Claim = create_model(
    "Claim",
    __config__=_lenient,
    __doc__="One care episode: the XML1 fields (XML 130 names) and its lines. Values may be "
    "given as JSON strings or numbers, as the XML carries them; they are validated per claim.",
    xml2=(list[DrugLine], Field(default_factory=list, description="Drug lines (XML2).")),
    xml3=(list[ServiceLine], Field(default_factory=list, description="Service lines (XML3).")),
    **_fields(CLAIMS, EXAMPLE),
)


class ScoreRequest(BaseModel):
    claims: list[Claim] = Field(
        min_length=1,
        description="The claims to score (at least one); at most the service's batch limit "
        "(1,000 by default; more is answered 413).",
    )
    model_config = ConfigDict(json_schema_extra={"examples": [{"claims": [EXAMPLE]}]})


class Reason(BaseModel):
    feature: str = Field(description="Model feature behind the reason.")
    value: float | None = Field(None, description="The claim's value of the feature.")
    peer_value: float | None = Field(
        None, description="The peers' value (median of diagnosis x visit type x level)."
    )
    contribution: float = Field(description="SHAP contribution to the risk (log-odds).")
    text_vi: str = Field(description="The reason in Vietnamese.")
    text_en: str = Field(description="The reason in English.")
    model_config = ConfigDict(extra="allow")


class RuleHit(BaseModel):
    code: str = Field(description="Rule code, R01-R19 (docs/features.md).")
    rule: str = Field(description="Rule name.")
    amount: float = Field(description="Money at stake under the rule (VND).")
    text_vi: str = Field(description="What the rule found, in Vietnamese.")
    text_en: str = Field(description="What the rule found, in English.")
    model_config = ConfigDict(extra="allow")


class ScoredClaim(BaseModel):
    MA_LK: str = Field(description="The claim's key, as sent.")
    risk_score: float = Field(description="Calibrated probability of abuse, 0-1.")
    band: str = Field(description="high, review, watch or low (review band: high + review).")
    expected_overbilled: float = Field(description="Expected overbilled amount (VND).")
    priority: float = Field(description="Money at stake that orders the review queue (VND).")
    reasons: list[Reason] = Field(description="Top reasons (up to 5); empty below the review band.")
    rule_hits: list[RuleHit] = Field(description="Fixed rules the claim breaks, with amounts.")
    model_version: str = Field(description="Registered model version that scored the claim.")
    scored_at: str = Field(description="When it was scored (UTC, ISO 8601).")


class FieldError(BaseModel):
    table: str | None = Field(None, description="claims, drug_lines, service_lines or file.")
    field: str | None = Field(None, description="XML 130 field name.")
    value: str | None = Field(None, description="The value received (personal data masked).")
    error: str = Field(description="What is wrong with it.")


class ClaimError(BaseModel):
    index: int = Field(description="Position of the claim in the request (0-based).")
    MA_LK: str | None = Field(None, description="The claim's key, when it could be read.")
    errors: list[FieldError]


class ScoreResponse(BaseModel):
    scored: list[ScoredClaim]
    errors: list[ClaimError] = Field(description="Claims not scored, each with its field errors.")
    model_version: str


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str = Field(description="champion, or challenger when no champion exists yet.")
    data_window: dict[str, Any] = Field(description="Training, validation and holdout periods.")
    holdout_metrics: dict[str, Any]
    features: list[str]
    bands: dict[str, float] = Field(description="Priority thresholds of the bands (VND).")
    loaded_at: str


class Problem(BaseModel):
    detail: str | list[dict[str, Any]]


# -- the app ------------------------------------------------------------------------------------


class JsonRequest(Request):
    """A request whose JSON body orjson parses (a 1,000-claim body of ~5 MB: ~25 ms against
    stdlib json's ~100 ms, on the event loop). Whatever orjson refuses (NaN literals, UTF-16 or
    a BOM, lone surrogates, malformed text) is parsed by stdlib json as before, so every
    accepted body reads the same and every refused one fails as before; so is a body with 19
    digits in a row (orjson reads an integer past 64 bits as a float, json as an int)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                if body.translate(_DIGITS).find(_LONG_NUMBER) >= 0:  # ~3x faster than a regex
                    raise orjson.JSONDecodeError("a long number", "", 0)
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))  # a digit -> 0, else a space
_LONG_NUMBER = b"0" * 19


class JsonRoute(APIRoute):
    """The API's routes: their handler gets a JsonRequest."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def with_orjson(request: Request) -> Response:
            return await handler(JsonRequest(request.scope, request.receive))

        return with_orjson


def create_app(state, store, settings, metrics=None, shadow=None) -> FastAPI:
    """state: serving.online.ScoringState; store: serving.store.Store (API keys, records);
    metrics: serving.metrics.Metrics or None; shadow: serving.shadow.ShadowState or None (the
    challenger scores each request after the answer, recorded beside the champion's)."""
    app = FastAPI(
        title="claimradar",
        version=_version(),
        description=(
            "Abuse-risk scores, expected overbilled amounts and reasons (vi/en) for Vietnamese "
            "health-insurance claims (XML 130). Authenticate with `Authorization: Bearer <key>` "
            "(keys: `claimradar keys create NAME`)."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # BentoML publishes the spec (with these routes) at /docs.json
    )
    app.router.route_class = JsonRoute
    limit = settings.api_max_claims
    errors = {
        401: {"model": Problem},
        403: {"model": Problem},
        503: {
            "model": Problem,
            "description": "The case store cannot be reached, or no model is registered yet: "
            "retry after Retry-After seconds.",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying (when the store is down).",
                    "schema": {"type": "integer"},
                }
            },
        },
    }

    def api_key(request: Request) -> str:
        if request.scope.get(SCOPE_KEY):  # checked by the gate in front (serving.limits)
            return request.scope[SCOPE_KEY]
        name, status, why = authorize(store, request.headers.get("authorization", ""))
        if name is None:
            raise HTTPException(status, why, headers={"WWW-Authenticate": "Bearer"})
        return name

    auth = Depends(api_key)

    def served():
        if state.served is None:
            raise HTTPException(503, "no model is registered yet: run claimradar train")
        return state.served

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = []
        for e in exc.errors():
            if e.get("type") == "json_invalid":
                at = e.get("loc", ("body", "?"))[-1]
                detail.append({"field": "body", "error": f"malformed JSON at character {at}"})
                continue
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            detail.append({"field": where or "body", "error": e.get("msg", "invalid")})
        if metrics:
            metrics.error("request")
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StoreBusy)
    async def _store_busy(request: Request, exc: StoreBusy) -> JSONResponse:
        # reachable but not taking the write now (shutting down, writers racing): retry
        log.warning("case store busy: %s", exc)
        if metrics:
            metrics.error("store")
        return store_down_response()

    @app.exception_handler(DBAPIError)
    async def _store_down(request: Request, exc: DBAPIError) -> JSONResponse:
        # the database is down or unreadable while checking a key or recording scores: 503 with
        # Retry-After, never 500 (issue 13); other database errors are bugs and stay 500
        if not store_unavailable(exc):
            raise exc
        log.warning("case store unavailable: %s", type(exc.orig or exc).__name__)
        if metrics:
            metrics.error("store")
        return store_down_response()

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses={
            **errors,
            400: {"model": Problem, "description": "The body is not JSON text (not UTF-8)."},
            413: {"model": Problem},
            422: {"model": Problem},
        },
        summary="Score a batch of claims (JSON)",
        tags=["scoring"],
    )
    def score(body: ScoreRequest, key: str = auth) -> Response:
        if len(body.claims) > limit:
            raise HTTPException(
                413,
                [{"field": "claims", "error": f"{len(body.claims)} claims; at most {limit} per "
                  "request (send whole months with `claimradar score`)"}],
            )  # fmt: skip
        s = served()
        claims = [c.model_dump(exclude_none=True) for c in body.claims]
        t0 = time.perf_counter()
        out = state.score_records(claims, actor=f"api:{key}", served=s)
        if shadow is not None:
            shadow.submit("records", claims, f"api:{key}")
        if metrics:
            metrics.observe(out, time.perf_counter() - t0)
        return scores_response(out)

    @app.post(
        "/score_xml",
        response_model=ScoreResponse,
        responses={**errors, 400: {"model": Problem}, 413: {"model": Problem}},
        summary="Score one XML 130 envelope (GIAMDINHHS), raw or base64",
        tags=["scoring"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "The envelope as the facility sends it: raw XML "
                "(Content-Type application/xml) or its base64 text (text/plain). A body that is "
                "not a GIAMDINHHS envelope is answered 400.",
                "content": {
                    "application/xml": {"schema": {"type": "string", "minLength": 1}},
                    "text/plain": {
                        "schema": {"type": "string", "format": "base64", "minLength": 1}
                    },
                },
            }
        },
    )
    async def score_xml(request: Request, key: str = auth) -> Response:
        from lxml import etree

        from contract.ingest import HostileInput

        max_bytes = settings.api_max_xml_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > 2 * max_bytes:
            raise HTTPException(413, f"envelope larger than {max_bytes:,} bytes")
        data = bytearray()
        async for chunk in request.stream():
            data.extend(chunk)
            if len(data) > 2 * max_bytes:  # base64 is 4/3 of the bytes it carries
                raise HTTPException(413, f"envelope larger than {max_bytes:,} bytes")
        raw = _envelope_bytes(bytes(data), request.headers.get("content-type", ""))
        if len(raw) > max_bytes:
            raise HTTPException(413, f"envelope larger than {max_bytes:,} bytes")
        s = served()
        t0 = time.perf_counter()
        try:
            out = await _in_thread(state.score_envelope, raw, f"api:{key}", s)
            if shadow is not None:
                shadow.submit("envelope", raw, f"api:{key}")
        except TooManyDossiers as e:
            if metrics:
                metrics.error("envelope")
            raise HTTPException(413, str(e)) from None
        except (HostileInput, etree.XMLSyntaxError) as e:
            from contract.ingest import file_error_message

            if metrics:
                metrics.error("envelope")
            raise HTTPException(400, f"envelope refused: {file_error_message(e)}") from None
        if metrics:
            metrics.observe(out, time.perf_counter() - t0)
        return scores_response(out)

    @app.get("/model", response_model=ModelInfo, responses=errors, tags=["model"])
    def model(key: str = auth) -> dict:
        s = served()
        meta = s.bundle.meta
        return {
            "name": registry.MODEL_NAME,
            "version": s.version,
            "alias": s.alias,
            "data_window": meta.get("data_window", {}),
            "holdout_metrics": _holdout(meta.get("metrics", {})),
            "features": list(s.bundle.feature_names),
            "bands": {k: float(v) for k, v in s.bundle.band_thresholds.items()},
            "loaded_at": s.loaded_at,
        }

    return app


def scores_response(out: dict) -> Response:
    """A ScoreResponse as JSON, written by orjson: the routes return it as it is (no pydantic
    validation of the answer, which cost more than the scoring); the one coercion that validation
    made is made here (a reason's value and its peers' value are numbers as floats)."""
    for row in out["scored"]:
        for reason in row["reasons"]:
            for k in ("value", "peer_value"):
                v = reason.get(k)
                if isinstance(v, int):  # bool too, as pydantic's float does
                    reason[k] = float(v)
    return Response(
        orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )


def authorize(store, header: str) -> tuple[str | None, int, str]:
    """An Authorization header -> (key name, 200, "") or (None, 401/403, why): the one rule for
    the API routes and for /metrics."""
    scheme, _, key = header.partition(" ")
    if not header:
        return None, 401, "missing API key: send 'Authorization: Bearer <key>'"
    if scheme.lower() != "bearer" or not key.strip():
        return None, 401, "malformed Authorization header: use 'Bearer <key>'"
    name, why = store.check_key(key.strip())
    if name is None:
        return None, (403 if "revoked" in why else 401), why
    return name, 200, ""


def _holdout(metrics) -> dict:
    """The holdout metrics of the bundle's training run (names without the holdout_ prefix)."""
    if isinstance(metrics, str):  # older bundles kept them as text
        import ast

        try:
            metrics = ast.literal_eval(metrics)
        except (ValueError, SyntaxError):
            return {}
    return {
        k.removeprefix("holdout_"): v for k, v in metrics.items() if k.startswith("holdout_model_")
    }


def _envelope_bytes(data: bytes, content_type: str) -> bytes:
    """Raw XML as is; otherwise base64 text (whitespace allowed)."""
    head = data.lstrip()[:1]
    if content_type.split(";")[0].strip() in XML_TYPES or head == b"<":
        return data
    try:
        return base64.b64decode(data.translate(None, b" \t\r\n\f\v"), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(
            400, "body is neither XML nor base64: send the envelope raw (application/xml) or as "
            "base64 text"
        ) from None  # fmt: skip


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("claimradar")
    except PackageNotFoundError:
        return "0"
