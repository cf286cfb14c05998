"""Online scoring: claims as the API receives them (XML 130 names, JSON or an envelope) ->
validation with field-level errors -> the same features and the same scorer as batch scoring.

`ScoringState` holds the served model (bundle + profile snapshot) and swaps it atomically when the
registry's champion changes, so requests in flight finish on the model they started with.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from contract.ingest import EnvelopeBatch, Limits, read_envelope, validate_batch
from contract.schema import CLAIMS, DRUG_LINES, REJECTIONS_COLUMNS, SERVICE_LINES
from contract.validate import GROUP, INTERNAL, RECORD, SOURCE
from contract.validate_rows import ROW_WISE_MAX, envelope_records, validate_rows
from scoring import registry
from scoring.bundle import ModelBundle
from scoring.scorer import OPEN_BANDS, score_rows, take_scored
from serving.casefile import OTHER_FEATURES, PEER_FEATURES
from serving.combine import Combiner
from serving.limits import RequestLimits, TooManyDossiers

log = logging.getLogger("claimradar.serving")
MAX_BATCH = 1000  # claims per request; larger months go through `claimradar score`

# the features a case document shows (serving.casefile)
CASE_COLUMNS = (*(c for p in PEER_FEATURES for c in p[:2]), *OTHER_FEATURES)


@dataclass(frozen=True)
class Served:
    bundle: ModelBundle
    snapshot: Any  # features.profiles.Snapshot
    version: str
    alias: str
    plan: Any = None  # features.online_state.OnlineState: per-key state (features, remember)
    loaded_at: str = ""


class ScoringState:
    def __init__(
        self,
        tracking_uri: str,
        artifact_root: Path,
        linkage_key: str,
        store=None,
        limits: Limits | None = None,
        reload_seconds: float = 10.0,
        model_store: bool = False,
        request_limits: RequestLimits | None = None,
        online_store: str = "memory",
    ):
        """model_store: keep each served version in BentoML's model store (BENTOML_HOME) and
        load it from there; the service does, in-process users need not. request_limits:
        dossiers per envelope, lines per claim, dates in the future (serving.limits).
        online_store: where scored claims are remembered for later claims' features, `memory`
        or redis://... (shared by replicas, kept across restarts and model swaps)."""
        self.tracking_uri, self.artifact_root = tracking_uri, Path(artifact_root)
        self.linkage_key = linkage_key
        self.store = store
        self.limits = limits or Limits(workers=1)
        self.request_limits = request_limits or RequestLimits()
        self.reload_seconds = reload_seconds
        self.model_store = model_store
        self.online_store = _online_store(online_store)
        self.served: Served | None = None
        self._retired: list[Served] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.counters = {"scored": 0, "errors": 0}
        # the case-store writes: one writer thread, durable before the response (serving.writer)
        self.writer = None
        if store is not None:
            from serving.writer import CaseWriter

            self.writer = CaseWriter(store, open_bands=OPEN_BANDS)
        self.stage_times: dict[str, list[float]] | None = None  # a dict: seconds per stage
        self.combiner = Combiner(self._features_and_scores)

    # -- the model -------------------------------------------------------------------------
    def load(self) -> Served | None:
        """Load the champion (else the newest challenger) if it is not the one served."""
        from features.profiles import Snapshot

        client = registry.connect(self.tracking_uri, self.artifact_root)
        version, alias = self._wanted(client)
        if version is None:
            return None
        if self.served is not None and self.served.version == str(version):
            return self.served
        with self._lock:
            if self.model_store:
                folder = _from_model_store(client, version)
            else:
                tmp = Path(tempfile.mkdtemp(prefix="served-"))
                folder = registry.bundle_dir(client, version, tmp)
            bundle = ModelBundle.load(folder)
            snap = Snapshot.load(folder / "snapshot")
            self.swap(bundle, snap, str(version), alias)
            log.info("serving claimradar-abuse v%s (%s)", version, alias)
        return self.served

    def swap(self, bundle: ModelBundle, snapshot, version: str, alias: str) -> Served:
        """Serve (bundle, snapshot): the per-key state is built before the swap; the remembered
        claims stay (in Redis they outlive it anyway; in memory the old state hands them over,
        and the claims its requests in flight remember after it)."""
        from features.online_state import OnlineState

        old = self.served
        kept = old.plan.remembered_rows() if old is not None and self.online_store is None else ()
        gc.unfreeze()  # the last swap's frozen objects may be garbage after this one
        plan = OnlineState(snapshot, remember=True, store=self.online_store, remembered=kept)
        if old is not None and self.online_store is None:
            old.plan.hand_over(plan)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        served = Served(bundle, plan.snapshot, version, alias, plan, stamp)
        self.served = served
        if old is not None:  # requests in flight keep the old one; close it a swap later
            for gone in self._retired:
                gone.plan.close()
            self._retired = [old]
        # The state is millions of long-lived objects: a full collection walks them all (~1 s
        # on a province, measured mid-batch), every few requests' allocations. Frozen, the
        # collector skips them (gc.freeze); what requests allocate is collected as before.
        gc.collect()
        gc.freeze()
        return served

    def _wanted(self, client) -> tuple[int | None, str]:
        """The version to load and its alias: the champion, else the newest challenger
        (serving.shadow loads the challenger beside it instead)."""
        alias = "champion" if registry.version_by_alias(client, "champion") else "challenger"
        return registry.default_version(client), alias

    def watch(self) -> None:
        """Poll the registry in the background; a promotion is served without a restart."""

        def loop() -> None:
            while not self._stop.wait(self.reload_seconds):
                try:
                    self.load()
                except Exception:  # the served model stays; the next poll tries again
                    log.exception("model reload failed")

        threading.Thread(target=loop, name="model-reload", daemon=True).start()

    def stop(self) -> None:
        """Stop polling the registry; record every accepted case-store write (a clean drain)."""
        self._stop.set()
        if self.writer is not None:
            self.writer.close()

    # -- scoring -----------------------------------------------------------------------------
    def score_records(self, claims: list[dict], actor: str, served: Served | None = None) -> dict:
        """claims: XML1 fields with `xml2` / `xml3` lists of lines (XML 130 names)."""
        served = served or self.served
        if served is None:
            raise RuntimeError("no model is registered yet")
        claims, prior = _lines_over(claims, self.request_limits.max_lines_per_claim)
        # small requests: records for the row-wise validator; larger ones: frames
        raw = raw_records(claims) if len(claims) <= ROW_WISE_MAX else _raw_tables(claims)
        return self._score(raw, prior, served, actor, [c.get("MA_LK") for c in claims])

    def score_envelope(self, data: bytes, actor: str, served: Served | None = None) -> dict:
        served = served or self.served
        if served is None:
            raise RuntimeError("no model is registered yet")
        batch = EnvelopeBatch()
        keys = []
        most, lines = self.request_limits.max_dossiers, self.request_limits.max_lines_per_claim
        for d in read_envelope(data, self.limits):  # HostileInput / XMLSyntaxError -> 4xx
            if d.number > most:  # counted while reading: stop here
                raise TooManyDossiers(
                    f"envelope has more than {most:,} dossiers (HOSO); send at most {most:,} "
                    "per request"
                )
            for loai in ("XML2", "XML3"):
                n = len(d.records.get(loai, ()))
                if n > lines:  # not validated: the dossier is refused for it
                    d.records[loai] = []
                    d.errors.append((loai, loai, str(n), _too_many_lines(n, lines)))
            batch.add("request", d)
            first = (d.records.get("XML1") or [((), ())])[0]
            keys.append(dict(zip(*first, strict=True)).get("MA_LK"))
        raw, prior = envelope_records(batch) if len(keys) <= ROW_WISE_MAX else batch.take()
        return self._score(
            raw, prior, served, actor, keys, groups=[f"request#{i + 1}" for i in range(len(keys))]
        )

    def _features_and_scores(self, served: Served, batches: list[dict]) -> list[tuple]:
        """(feature rows, score_rows' answer, seconds per stage) for each request's good tables,
        computed once for all of them (serving.combine): the rows and scores a request gets are
        the ones of its claims, in the order it alone would get them. Requests the per-key
        state cannot answer together (claims of different months) are answered one by one."""
        merged = batches[0] if len(batches) == 1 else _merged(batches)
        if len(batches) > 1 and served.plan.why_not(merged["claims"]) is not None:
            return [self._features_and_scores(served, [b])[0] for b in batches]
        took: dict[str, float] = {}
        t1 = time.perf_counter()
        rows = served.plan.feature_rows(merged)  # ids + a float matrix, no DataFrame
        took["features"] = time.perf_counter() - t1
        out = score_rows(served.bundle, rows, model_version=served.version, timings=took)
        if len(batches) == 1:
            return [(rows, out, took)]
        at = {c: i for i, c in enumerate(rows.column("claim_id"))}
        answers = []
        for b in batches:
            idx = sorted(at[c] for c in _column(b["claims"], "claim_id"))
            share = len(idx) / max(len(rows), 1)
            answers.append(
                (rows.take(idx), take_scored(out, idx), {k: v * share for k, v in took.items()})
            )
        return answers

    def _score(self, raw, prior, served: Served, actor: str, keys: list, groups=None) -> dict:
        groups = groups or [str(i) for i in range(len(keys))]
        # Local time (UTC+7) as the claims carry it, plus the allowed clock skew: a claim dated
        # later is a field error, so it never reaches the online history.
        local_now = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=7)
        max_time = pd.Timestamp(local_now + self.request_limits.clock_skew)
        t0 = time.perf_counter()
        rowwise = isinstance(raw["claims"], list)  # records: no frame for the case store
        # and none for the features either when the per-key state takes records
        lean = rowwise and getattr(served.plan, "takes_records", False)
        if rowwise:
            result = validate_rows(raw, self.limits, self.linkage_key, prior, max_time=max_time,
                                   internal=False, frames=not lean)  # fmt: skip
        else:
            result = validate_batch(raw, self.limits, self.linkage_key, prior, max_time=max_time)
        rejections = [r for r in result.rejections if len(r)]
        errors: dict[str, list[dict]] = {}
        for r in pd.concat(rejections).itertuples() if rejections else ():
            if r.field or r.table == "file":
                errors.setdefault(_group_of(str(r.record)), []).append(
                    {
                        "table": r.table,
                        "field": r.field,
                        "value": _shown(r.field, r.value),
                        "error": r.error,
                    }
                )
        good = result.records if lean else {
            k: v.drop(columns=[c for c in INTERNAL if c in v.columns]) if not rowwise else v
            for k, v in result.good.items()
        }  # fmt: skip
        scored_rows: list[dict] = []
        stages = {"validation": time.perf_counter() - t0}
        if len(good["claims"]):
            if lean:  # beside the other small requests waiting now (serving.combine)
                ids = [r["claim_id"] for r in good["claims"]]
                rows, out, took = self.combiner.run(served, ids, good)
            else:
                rows, out, took = self._features_and_scores(served, [good])[0]
            stages.update(took)
            risk, expected = out["risk_score"], out["expected_overbilled"]
            priority = out["priority"]
            for i, cid in enumerate(out["claim_id"]):
                scored_rows.append(
                    {
                        "MA_LK": cid,
                        "risk_score": round(float(risk[i]), 6),
                        "band": out["band"][i],
                        "expected_overbilled": float(expected[i]),
                        "priority": float(priority[i]),
                        "reasons": out["reasons"][i][:5],
                        "rule_hits": out["rule_hits"][i],
                        "model_version": served.version,
                        "scored_at": out["scored_at"],
                    }
                )
            if self.writer is not None:  # with the claim documents the case page shows
                t2 = time.perf_counter()
                if rowwise:  # records, recorded value by value (serving.caserows)
                    self.writer.write(scored_records(out), result.records, case_records(rows),
                                      actor)  # fmt: skip
                else:
                    scored = pd.DataFrame(out, index=pd.RangeIndex(len(rows)))
                    # the feature columns the case documents show, not the whole frame
                    self.writer.write(scored, good, rows.frame(CASE_COLUMNS), actor)
                stages["store"] = time.perf_counter() - t2  # once committed
        if self.stage_times is not None:
            for k, v in stages.items():
                self.stage_times.setdefault(k, []).append(v)
        self.counters["scored"] += len(scored_rows)
        if rowwise:
            accepted = {str(r[GROUP]) for r in result.records["claims"]}
        else:
            accepted = set(result.good["claims"][GROUP].astype(str))
        failed = [
            {"index": i, "MA_LK": keys[i], "errors": errors.get(groups[i], [])}
            for i in range(len(keys))
            if groups[i] not in accepted
        ]
        self.counters["errors"] += len(failed)
        return {
            "scored": scored_rows,
            "errors": failed,
            "model_version": served.version,
        }


SCORED_KEYS = ("claim_id", "model_version", "risk_score", "expected_overbilled", "priority",
               "band", "reasons", "rule_hits")  # fmt: skip


def _column(table, name: str) -> list:
    return table[name].tolist() if isinstance(table, pd.DataFrame) else [r[name] for r in table]


def _merged(batches: list[dict]) -> dict:
    """Several requests' good records (contract.validate_rows' RowsResult.records) as one
    request's."""
    names = {n for b in batches for n, t in b.items() if t is not None}
    return {n: [r for b in batches for r in b.get(n) or ()] for n in names}


def scored_records(out: dict) -> list[dict]:
    """scoring.scorer.score_rows' answer as the case store's scored records (the fields
    serving.casefile records: the frame of `out` would give the same rows)."""
    n = len(out["claim_id"])
    cols = {k: out[k] if not isinstance(out[k], str) else [out[k]] * n for k in SCORED_KEYS}
    return [{k: cols[k][i] for k in SCORED_KEYS} for i in range(n)]


def case_records(rows) -> list[dict]:
    """The feature values a case document shows (CASE_COLUMNS) for each of the rows
    (features.online_state.rows.FeatureRows), with the claim and its facility level: the
    records of `rows.frame(CASE_COLUMNS)` (every one of those features a float column) without
    building it."""
    names = list(rows.names)
    at = [(c, names.index(c)) for c in CASE_COLUMNS if c in names]
    values = rows.values
    out = []
    for i, ids in enumerate(rows.ids):
        rec = {"claim_id": ids["claim_id"], "facility_level": ids.get("facility_level")}
        v = values[i]
        for c, j in at:
            rec[c] = float(v[j])
        out.append(rec)
    return out


def _online_store(setting: str):
    """None (remembered in this process) for `memory`, else the shared Redis store."""
    if setting in ("", "memory"):
        return None
    if not setting.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"online store must be `memory` or redis://...; got {setting!r}")
    from features.online_state.shared import RedisStore

    return RedisStore(setting)


def _from_model_store(client, version: int) -> Path:
    """The version's bundle folder in BentoML's model store, imported from MLflow once.
    The tag carries the MLflow run, so two stores that both have a "version 1" never mix."""
    import shutil

    import bentoml
    from bentoml.exceptions import BentoMLException, NotFound

    mv = client.get_model_version(registry.MODEL_NAME, str(version))
    tag = f"{registry.MODEL_NAME}:v{version}-{mv.run_id[:12]}"
    # The workers of one host import a version one at a time: BentoML copies a new model into
    # its store file by file, so a worker that looked while another was saving found the model
    # without its bundle.json (a promotion under load, bench/load.py) and failed its reload.
    with _import_lock(tag):
        try:
            return Path(bentoml.models.get(tag).path) / "bundle"
        except NotFound:
            pass
        tmp = Path(tempfile.mkdtemp(prefix="claimradar-import-"))
        src = registry.bundle_dir(client, version, tmp)
        try:
            with bentoml.models.create(
                tag,
                labels={"registry": "mlflow", "mlflow_version": str(version)},
                metadata={"mlflow_run_id": mv.run_id, "mlflow_model": registry.MODEL_NAME},
            ) as m:
                shutil.copytree(src, Path(m.path) / "bundle")
        except BentoMLException:  # imported by a worker of another host at the same moment
            pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Path(bentoml.models.get(tag).path) / "bundle"


@contextlib.contextmanager
def _import_lock(tag: str):
    """An exclusive lock of this host's processes for importing `tag` (a file lock in the temp
    folder, released when the file closes, also when a worker dies holding it)."""
    import fcntl
    import hashlib

    name = hashlib.sha256(tag.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"claimradar-import-{name}.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


PERSONAL = {
    name
    for table in (CLAIMS, DRUG_LINES, SERVICE_LINES)
    for f in table.fields
    if f.personal
    for name in (f.xml, *f.aliases)
}


def _shown(field, value):
    """A rejected value as the error shows it: personal fields (names, ID and card numbers,
    addresses) masked but for their last 3 characters, so responses and logs never carry them.
    Always text or None, as the response schema says (a missing value of a line is NaN here)."""
    if value is None or value is pd.NA or value != value:
        return None
    text = str(value)
    if field not in PERSONAL:
        return text
    return "•" * max(len(text) - 3, 0) + text[-3:] if len(text) > 3 else "•" * len(text)


def _group_of(record: str) -> str:
    """Request position of a rejection row: "3/xml2/0" -> "3", "HOSO 2/XML1 1" -> "request#2"."""
    if record.startswith("HOSO "):
        return "request#" + record.split()[1].split("/")[0]
    return record.split("/")[0]


def _too_many_lines(n: int, most: int) -> str:
    return f"{n} lines; at most {most} per claim"


def _lines_over(claims: list[dict], max_lines: int) -> tuple[list[dict], pd.DataFrame | None]:
    """Claims with more than `max_lines` drug (or service) lines: refused with a field error for
    that claim, their lines dropped unvalidated. Returns the claims to read and those errors."""
    kept, errors = [], []
    for i, c in enumerate(claims):
        over = False
        for name, table in (("xml2", DRUG_LINES), ("xml3", SERVICE_LINES)):
            n = len(c.get(name) or [])
            if n > max_lines:
                over = True
                errors.append(
                    {
                        "source_file": "request",
                        "claim_id": str(c.get("MA_LK") or ""),
                        "table": table.name,
                        "record": str(i),
                        "field": name,
                        "value": str(n),
                        "error": _too_many_lines(n, max_lines),
                        "record_json": "{}",
                        GROUP: str(i),
                    }
                )
        kept.append({**c, "xml2": [], "xml3": []} if over else c)
    prior = pd.DataFrame(errors, columns=[*REJECTIONS_COLUMNS, GROUP]) if errors else None
    return kept, prior


def raw_records(claims: list[dict]) -> dict[str, list[dict]]:
    """JSON claims -> raw XML-named records, every value as text as the XML carries it (numbers
    keep their digits, None stays missing); each claim is its own group (accepted or rejected
    whole), its position in the request is the group key."""
    heads, drugs, services = [], [], []
    for i, c in enumerate(claims):
        g = str(i)
        head = {k: _text(v) for k, v in c.items() if k not in ("xml2", "xml3")}
        heads.append({**head, GROUP: g, SOURCE: "request", RECORD: g})
        for j, line in enumerate(c.get("xml2") or []):
            texts = {k: _text(v) for k, v in line.items()}
            drugs.append({**texts, GROUP: g, SOURCE: "request", RECORD: f"{g}/xml2/{j}"})
        for j, line in enumerate(c.get("xml3") or []):
            texts = {k: _text(v) for k, v in line.items()}
            services.append({**texts, GROUP: g, SOURCE: "request", RECORD: f"{g}/xml3/{j}"})
    return {"claims": heads, "drug_lines": drugs, "service_lines": services}


def _raw_tables(claims: list[dict]) -> dict[str, pd.DataFrame]:
    """raw_records as frames, for the column-wise validator: built column by column (a column
    of text or nulls as it came, any other made text value by value), the frames
    `pd.DataFrame(raw_records(claims)[name])` gives."""
    drugs, services, dpos, spos = [], [], [], []
    for i, c in enumerate(claims):
        for line in c.get("xml2") or ():
            drugs.append(line)
            dpos.append(i)
        for line in c.get("xml3") or ():
            services.append(line)
            spos.append(i)
    heads = [{k: v for k, v in c.items() if k not in ("xml2", "xml3")} for c in claims]
    groups = [str(i) for i in range(len(claims))]
    out = {"claims": _columns(heads, {GROUP: groups, SOURCE: ["request"] * len(claims),
                                      RECORD: groups})}  # fmt: skip
    for name, rows, pos, tag in (("drug_lines", drugs, dpos, "xml2"),
                                 ("service_lines", services, spos, "xml3")):  # fmt: skip
        g = [groups[i] for i in pos]
        record, last, j = [], None, 0
        for i in pos:  # the line's place in its claim
            j = j + 1 if i == last else 0
            last = i
            record.append(f"{i}/{tag}/{j}")
        out[name] = _columns(rows, {GROUP: g, SOURCE: ["request"] * len(rows), RECORD: record})
    return out


_PLAIN = frozenset((str, type(None)))


def _columns(rows: list[dict], internal: dict[str, list]) -> pd.DataFrame:
    """pd.DataFrame(rows with _text values, each followed by the `internal` columns) built
    column-wise: the same columns in the same order (first seen first), the same values (a key
    a row lacks is NaN, as that constructor makes it)."""
    if not rows:
        return _frame([])
    order: dict[str, None] = {}
    shapes: set[tuple] = set()
    for r in rows:
        shape = tuple(r)
        if shape not in shapes:
            shapes.add(shape)
            order.update(dict.fromkeys(shape))
            order.update(dict.fromkeys(internal))
    missing = object()
    cols: dict[str, list] = {}
    for k in order:
        if k in internal:
            cols[k] = internal[k]
            continue
        col = [r.get(k, missing) for r in rows] if len(shapes) > 1 else [r[k] for r in rows]
        kinds = set(map(type, col))
        if not kinds <= _PLAIN:
            col = _texts(col, kinds, missing)
        cols[k] = [np.nan if v is missing else v for v in col] if type(missing) in kinds else col
    return pd.DataFrame(cols)


def _texts(col: list, kinds: set, missing) -> list:
    """[_text(v) for v in col] (`missing` kept), numbers made text column-wise: an int's digits
    (str), a whole float's as an int's (what format(v, "f") less its zeros gives)."""
    if kinds <= {int, type(None), type(missing)}:
        return [v if v is None or v is missing else str(v) for v in col]
    if kinds <= {float, int, type(None), type(missing)}:
        x = np.array([np.nan if v is None or v is missing else v for v in col], dtype="float64")
        whole = (x == np.trunc(x)) & (np.abs(x) < 2.0**53) & ~((x == 0) & np.signbit(x))
        digits = np.where(whole, x, 0).astype("int64").tolist()
        return [v if v is None or v is missing else (str(d) if w else _text(v))
                for v, d, w in zip(col, digits, whole.tolist(), strict=True)]  # fmt: skip
    return [v if v is missing else _text(v) for v in col]


def _frame(rows: list[dict]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype="str") for c in INTERNAL})
    return pd.DataFrame(rows)


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return None if v != v else format(v, "f").rstrip("0").rstrip(".")
    return str(v)
