"""Recording scored claims in the case store (issue 13, resubmissions).

A claim is identified by its facility and MA_LK (`claim_key`). A content never seen for that claim
(`content_hash`) is a new version of it: recorded, and when the claim has a case the case moves to
the new version with an audit event; a case that was decided or waiting for approval re-opens
(its decisions stay, a pending one is superseded). The same content sent again by the same model
changes nothing. A claim that is not a case keeps only its summary: full documents, and the
identity sealed with the data key, are kept for cases alone.

Concurrency: two copies of one claim recorded at once (threads, processes, API replicas) meet in
the unique constraints; the loser's transaction is rolled back and run again, and then finds the
claim recorded. A case changed by an officer between the read and the write is caught by its
version column the same way. Rows are written in one order (by claim key) so PostgreSQL writers
never deadlock on each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from serving.models import AuditEvent, Case, Decision, ScoredClaim, StoreBusy, audit_row, now

log = logging.getLogger("claimradar.records")
ATTEMPTS = 8
REOPEN = ("pending_approval", "decided")
# PostgreSQL: deadlock detected, serialization failure: the transaction can simply run again
RETRY_SQLSTATES = {"40P01", "40001"}

SCORED_FIELDS = (
    "claim_id", "risk_score", "expected_overbilled", "priority", "band", "facility_id",
    "facility_level", "month", "fund_claimed", "reasons", "rule_hits", "person_key", "shift_added",
)  # fmt: skip


class _Raced(Exception):
    """A case changed between reading and writing it: run the transaction again."""


def claim_key(facility_id: Any, claim_id: Any) -> str:
    """A claim's identity: the facility (MA_CSKCB) and its MA_LK."""
    return f"{facility_id or ''}/{claim_id}"


def document_hash(doc: Any) -> str:
    """The content hash of a row that carries no `content_hash` (its claim document)."""
    text = json.dumps(doc or {}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def record_scores(
    store,
    rows: list[dict],
    actor: str,
    open_bands: tuple[str, ...],
    documents: Callable[[list[dict], set[str]], list[dict]] | None = None,
) -> int:
    """Record scored rows (see the module docstring); returns the new scored rows.
    documents: (rows, the claim keys among them that have a case) -> the rows with their claim
    documents (`claim`), called in the recording transaction once it has read the cases, so a
    caller builds full documents for the claims that are cases without reading them first."""
    rows = sorted(rows, key=lambda r: claim_key(r.get("facility_id"), r["claim_id"]))
    for attempt in range(ATTEMPTS):
        try:
            # a Core connection, not an ORM session: every statement here is Core (the session's
            # bookkeeping cost ~0.4 ms a one-claim request)
            with store.engine.begin() as s:
                return _record(store, s, rows, actor, open_bands, documents)
        except (IntegrityError, _Raced) as e:
            why = type(e).__name__
        except OperationalError as e:
            if getattr(e.orig, "sqlstate", None) not in RETRY_SQLSTATES:
                raise
            why = "deadlock"
        if attempt == ATTEMPTS - 1:
            raise StoreBusy("claims could not be recorded: concurrent writers kept winning")
        log.info("recording scores met a concurrent writer (%s); again", why)
        time.sleep(random.uniform(0.005, 0.03) * (attempt + 1))
    return 0  # not reached


def _known(s, keys: list[str]) -> tuple[dict, dict, dict]:
    """What is recorded of these claims: key -> {content hash: version}, (key, version) ->
    model versions scored, and key -> its case (id, status, version, claim_version)."""
    versions: dict[str, dict] = {}
    models: dict[tuple, set] = {}
    cases: dict[str, dict] = {}
    for i in range(0, len(keys), 500):
        part = {"keys": keys[i : i + 500]}
        for k, h, v, m in s.execute(_SCORES_OF, part):
            versions.setdefault(k, {})[h] = v or 1
            models.setdefault((k, v or 1), set()).add(m)
        for c in s.execute(_CASES_OF, part):
            cases[c.claim_key] = c._asdict()
    return versions, models, cases


# The look-ups of every write, built once (an expanding IN: compiled once, not per request)
_SCORES_OF = select(
    ScoredClaim.claim_key,
    ScoredClaim.content_hash,
    ScoredClaim.claim_version,
    ScoredClaim.model_version,
).where(ScoredClaim.claim_key.in_(bindparam("keys", expanding=True)))
_CASES_OF = select(Case.id, Case.claim_key, Case.status, Case.version, Case.claim_version).where(
    Case.claim_key.in_(bindparam("keys", expanding=True))
)


def _record(store, s, rows: list[dict], actor: str, open_bands: tuple[str, ...],
            documents=None) -> int:  # fmt: skip
    keys = sorted({claim_key(r.get("facility_id"), r["claim_id"]) for r in rows})
    versions, models, cases = _known(s, keys)
    if documents is not None:
        rows = documents(rows, set(cases))
    added: list[tuple[dict, dict, bool]] = []
    for r in rows:
        key = claim_key(r.get("facility_id"), r["claim_id"])
        h = r.get("content_hash") or document_hash(r.get("claim"))
        model = str(r["model_version"])
        seen = versions.setdefault(key, {})
        fresh = False
        if h not in seen:
            if set(seen) == {None}:  # recorded before 0005: the first content after is theirs
                s.execute(
                    update(ScoredClaim)
                    .where(ScoredClaim.claim_key == key, ScoredClaim.content_hash.is_(None))
                    .values(content_hash=h)
                )
                seen[h] = seen.pop(None)
            else:
                seen[h] = max(seen.values(), default=0) + 1
                fresh = True
        version = seen[h]
        if model in models.setdefault((key, version), set()):
            continue  # this content, scored by this model, is recorded
        models[(key, version)].add(model)
        sc = {**_SCORED_DEFAULTS, **{k: r[k] for k in SCORED_FIELDS if k in r}}
        sc["claim_id"], sc["model_version"] = str(r["claim_id"]), model
        sc["claim_key"], sc["content_hash"], sc["claim_version"] = key, h, version
        _derive(sc, r.get("claim"))
        added.append((sc, dict(r.get("claim") or {}), fresh))
    opened: dict[str, dict] = {}  # claim key -> the scored row its new case is on
    for sc, doc, fresh in added:
        case = cases.get(sc["claim_key"])
        _keep_document(store, sc, doc, case is not None or sc["band"] in open_bands)
        if case is None and sc["band"] in open_bands:
            version = sc["claim_version"]
            cases[sc["claim_key"]] = {"id": None, "version": 1, "claim_version": version}
            opened[sc["claim_key"]] = sc
        elif sc["claim_key"] in opened and fresh:  # a newer content in the same batch
            opened[sc["claim_key"]] = sc
    # one multi-row INSERT per table (ids back in the rows' order), not one statement a row
    ids = _insert(s, ScoredClaim, [sc for sc, _doc, _fresh in added],
                  key=("claim_key", "claim_version", "model_version"))  # fmt: skip
    for (sc, _doc, _fresh), i in zip(added, ids, strict=True):
        sc["id"] = i
    case_ids = _insert(s, Case, [
        {"claim_id": sc["claim_id"], "claim_key": sc["claim_key"], "scored_claim_id": sc["id"],
         "priority": sc["priority"], "claim_version": sc["claim_version"]}
        for sc in opened.values()
    ], key=("claim_key",))  # fmt: skip
    events = [
        audit_row(actor, "open", "case", i, after=_opening(sc))
        for sc, i in zip(opened.values(), case_ids, strict=True)
    ]
    _insert(s, AuditEvent, events, returning=False)
    for sc, _doc, fresh in added:
        case = cases.get(sc["claim_key"])
        if fresh and case and case["id"] and sc["claim_version"] > (case["claim_version"] or 1):
            _move_case(s, case, sc, actor)
    return len(added)


# A scored row's columns as the ORM model would leave them when a row does not give them: the
# JSON lists and document of their defaults, NULL for the rest (scored_at: its own default).
_SCORED_DEFAULTS: dict[str, Any] = {
    **{c.key: None for c in ScoredClaim.__table__.columns if c.key not in ("id", "scored_at")},
    "reasons": [],
    "rule_hits": [],
    "claim": {},
}


def _insert(s, model, rows: list[dict], returning: bool = True, key: tuple = ()) -> list[int]:
    """INSERT the rows (dicts with the same keys) as few multi-row statements; their ids in the
    rows' order. Column defaults (times, status) apply as the ORM applies them.
    key: columns unique among the rows (a unique constraint of the table): the ids are read
    back with them. Without a key the ids come back in parameter order, which SQLAlchemy can
    only promise on SQLite one statement per row (1,000 statements for a batch of 1,000)."""
    if not rows:
        return []
    table = model.__table__
    if not returning:
        s.execute(table.insert(), rows)
        return []
    if not key:
        stmt = table.insert().returning(table.c.id, sort_by_parameter_order=True)
        return [r[0] for r in s.execute(stmt, rows)]
    stmt = table.insert().returning(table.c.id, *(table.c[k] for k in key))
    got = {tuple(r[1:]): r[0] for r in s.execute(stmt, rows)}
    return [got[tuple(row[k] for k in key)] for row in rows]


def _opening(sc: dict) -> dict:
    """What the audit trail says of a case opened on a scored row."""
    return {
        "claim": sc["claim_key"],
        "claim_version": sc["claim_version"],
        "priority": sc["priority"],
        "expected_overbilled": sc["expected_overbilled"],
        "band": sc["band"],
    }


def _move_case(s, case: dict, sc: dict, actor: str) -> None:
    """A new version of a case's claim: the case moves to it; decided or pending, it re-opens."""
    reopen = case["status"] in REOPEN
    values: dict[str, Any] = {
        "scored_claim_id": sc["id"],
        "claim_version": sc["claim_version"],
        "priority": sc["priority"],
        "version": case["version"] + 1,
        "updated_at": now(),
    }
    if reopen:
        values.update(status="open", assignee_id=None)
    res = s.execute(
        update(Case).where(Case.id == case["id"], Case.version == case["version"]).values(**values)
    )
    if res.rowcount != 1:
        raise _Raced()
    superseded = []
    if reopen:
        superseded = list(
            s.scalars(
                select(Decision.id).where(
                    Decision.case_id == case["id"], Decision.status == "pending_approval"
                )
            )
        )
        if superseded:
            s.execute(
                update(Decision).where(Decision.id.in_(superseded)).values(status="superseded")
            )
    _insert(s, AuditEvent, [audit_row(
        actor,
        "reopen" if reopen else "resubmit",
        "case",
        case["id"],
        before={
            "status": case["status"],
            "version": case["version"],
            "claim_version": case["claim_version"],
        },
        after={
            "status": "open" if reopen else case["status"],
            "version": case["version"] + 1,
            "claim_version": sc["claim_version"],
            "priority": sc["priority"],
            "band": sc["band"],
            "superseded_decisions": superseded,
        },
    )], returning=False)  # fmt: skip
    case.update(version=case["version"] + 1, claim_version=sc["claim_version"])
    case["status"] = "open" if reopen else case["status"]


def _keep_document(store, sc: dict, doc: dict, is_case: bool) -> None:
    """A case keeps its full document, the identity sealed (none without a data key); any other
    claim keeps its summary alone (the patient history reads it)."""
    identity = doc.pop("identity", None)
    if not is_case:
        sc["claim"] = {"summary": doc["summary"]} if "summary" in doc else {}
        return
    sc["claim"] = doc
    if identity and store.sealer is not None:
        sc["identity"] = store.sealer.seal(identity, sc["claim_key"])


def _derive(sc: dict, doc: Any) -> None:
    """The filterable text of rule codes and reason features, and the person key from the claim
    document when the row does not carry it."""
    codes = sorted({str(h.get("code")) for h in sc["rule_hits"] or [] if h.get("code")})
    sc["rule_codes"] = "," + ",".join(codes) + "," if codes else None
    feats = [str(r.get("feature")) for r in sc["reasons"] or [] if r.get("feature")]
    sc["reason_features"] = "," + ",".join(feats) + "," if feats else None
    if sc["person_key"] is None and isinstance(doc, dict):
        sc["person_key"] = (doc.get("summary") or {}).get("person_key")


def cases_of(store, keys: list[str]) -> set[str]:
    """Which of these claims (claim keys) have a case."""
    out: set[str] = set()
    with store.session() as s:
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            out.update(s.scalars(_CASE_KEYS, {"keys": part}))
    return out


_CASE_KEYS = select(Case.claim_key).where(Case.claim_key.in_(bindparam("keys", expanding=True)))
