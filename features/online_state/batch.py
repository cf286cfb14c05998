"""The line aggregates of a batch of claims, column-wise: `claim.line_aggregates` (with
`claim.findings` and `items.into`) computed with numpy over the batch's line frames at once,
for the requests large enough that the per-line Python of claim.py is the cost (a 1,000-claim
request has ~5,000 lines: ~60 sums per line, ~0.3 s in Python, a few ms here).

The same definitions, the same results: every sum runs over a claim's lines in the order
claim.py takes them (its drug lines, then its service lines, each line once per reference price
found for it), summed one after another (`np.bincount` adds in input order, as `claim._s`
does), so the sums are the same floats, not merely close; SQL's nulls as claim.py has them (a
sum is None when every term was None, a comparison with a null is false, a null condition
counts as false). tests/features/test_online_batch_lines.py holds the two to equality on whole
simulated months and on scrambled claims.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from contract.schema import COST_GROUPS
from features import claim_features as cf
from features import lines as ln
from features.engine import NEEDED
from features.online_state import claim as oc
from features.online_state import items as it
from features.online_state.sql import clean, records

MIN_CLAIMS = 16  # fewer claims: claim.py's per-line Python costs less than setting this up

# what the per-key state reads of a claim's lines (keys.procedures, items.row_points,
# shared._row_json): the `_lines` a row keeps; a surgery line with a performer (the lines
# keys.procedures reads further) keeps its times as well
LINE_KEYS = ("line_key", "is_drug", "cost_group", "item_key", "quantity", "fund_unit_price",
             "line_fund", "performer_id")  # fmt: skip
TIME_KEYS = ("ordered_at", "performed_at", "result_at")


def _num(df: pd.DataFrame, c: str) -> np.ndarray:
    if c not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[c]).to_numpy(dtype="float64", na_value=np.nan)


def _obj(df: pd.DataFrame, c: str) -> np.ndarray:
    """Python values (None for missing), as records() gives them."""
    if c not in df.columns:
        return np.full(len(df), None, dtype=object)
    s = df[c]
    if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
        out = s.to_numpy(dtype=object, na_value=None)
        if s.dtype == object:
            out = np.array([clean(v) for v in out], dtype=object)
        return out
    return np.array([clean(v) for v in s.tolist()], dtype=object)


def _times(df: pd.DataFrame, c: str) -> pd.Series:
    if c not in df.columns:
        return pd.Series(pd.NaT, index=range(len(df)), dtype="datetime64[us]")
    return pd.to_datetime(df[c]).reset_index(drop=True)


def _line_table(drugs: pd.DataFrame | None, services: pd.DataFrame | None) -> dict:
    """claim.drug_line and claim.service_line for every line, as columns (drugs first)."""
    parts = []
    if drugs is not None and len(drugs):
        d = drugs
        code, strength = _obj(d, "drug_code"), _obj(d, "strength")
        doses = {text: oc.daily_dose(text) for text in set(_obj(d, "dosage"))}
        supportive = {n: oc.supportive(n) for n in set(_obj(d, "drug_name"))}
        up = _num(d, "unit_price")
        parts.append(
            {
                "claim_id": _obj(d, "claim_id"),
                "line_key": [f"D{v}" for v in _obj(d, "line_no")],
                "is_drug": np.ones(len(d)),
                "cost_group": _obj(d, "cost_group"),
                "item_key": [
                    None if c is None else f"{c}|{s or ''}"
                    for c, s in zip(code, strength, strict=True)
                ],
                "scope": _num(d, "scope"),
                "quantity": _num(d, "quantity"),
                "unit_price": up,
                "fund_unit_price": up,
                "service_ratio": np.full(len(d), 100.0),
                "insurance_ratio": _num(d, "insurance_ratio"),
                "amount": _num(d, "amount"),
                "insured_amount": _num(d, "insured_amount"),
                "benefit_pct": _num(d, "benefit_pct"),
                "line_fund": _num(d, "fund_claimed"),
                "other_sources": _num(d, "other_sources"),
                "clinician_id": _obj(d, "clinician_id"),
                "performer_id": np.full(len(d), None, dtype=object),
                "ordered_at": _times(d, "ordered_at"),
                "performed_at": pd.Series(pd.NaT, index=range(len(d)), dtype="datetime64[us]"),
                "result_at": pd.Series(pd.NaT, index=range(len(d)), dtype="datetime64[us]"),
                "daily_dose": np.array(
                    [np.nan if (x := doses[t]) is None else x for t in _obj(d, "dosage")],
                    dtype="float64",
                ),
                "supportive": np.array(
                    [supportive[n] for n in _obj(d, "drug_name")], dtype="float64"
                ),
            }
        )
    if services is not None and len(services):
        s = services
        up, fup = _num(s, "unit_price"), _num(s, "insured_unit_price")
        ratio = _num(s, "service_ratio")
        parts.append({
            "claim_id": _obj(s, "claim_id"),
            "line_key": [f"S{v}" for v in _obj(s, "line_no")],
            "is_drug": np.zeros(len(s)),
            "cost_group": _obj(s, "cost_group"),
            "item_key": [sup if sup is not None else svc for sup, svc
                         in zip(_obj(s, "supply_code"), _obj(s, "service_code"), strict=True)],
            "scope": _num(s, "scope"),
            "quantity": _num(s, "quantity"),
            "unit_price": up,
            "fund_unit_price": np.where(np.isnan(fup), up, fup),
            "service_ratio": np.where(np.isnan(ratio), 100.0, ratio),
            "insurance_ratio": _num(s, "insurance_ratio"),
            "amount": _num(s, "amount"),
            "insured_amount": _num(s, "insured_amount"),
            "benefit_pct": _num(s, "benefit_pct"),
            "line_fund": _num(s, "fund_claimed"),
            "other_sources": _num(s, "other_sources"),
            "clinician_id": _obj(s, "clinician_id"),
            "performer_id": _obj(s, "performer_id"),
            "ordered_at": _times(s, "ordered_at"),
            "performed_at": _times(s, "performed_at"),
            "result_at": _times(s, "result_at"),
            "daily_dose": np.full(len(s), np.nan),
            "supportive": np.zeros(len(s)),
        })  # fmt: skip
    if not parts:
        return {}
    out = {}
    for k in parts[0]:
        vals = [p[k] for p in parts]
        if isinstance(vals[0], pd.Series):
            out[k] = pd.concat(vals, ignore_index=True)
        elif isinstance(vals[0], list) or vals[0].dtype == object:
            out[k] = np.concatenate([np.asarray(v, dtype=object) for v in vals])
        else:
            out[k] = np.concatenate(vals)
    return out


class _Acc:
    """Per-claim accumulators over the (ordered) lines: claim._s, _max, _min column-wise."""

    def __init__(self, pos: np.ndarray, n: int):
        self.pos, self.n = pos, n
        self.out: dict[str, np.ndarray | list] = {}

    def s(self, key: str, cond, value) -> None:
        v = np.where(cond, value, 0.0)
        known = ~np.isnan(v)
        total = np.bincount(self.pos, weights=np.where(known, v, 0.0), minlength=self.n)
        count = np.bincount(self.pos, weights=known, minlength=self.n)
        self.out[key] = np.where(count > 0, total, np.nan)

    def max(self, key: str, v) -> None:
        out = np.full(self.n, np.nan)
        np.fmax.at(out, self.pos, v)
        self.out[key] = out

    def min_text(self, key: str, values, where) -> None:
        out: list = [None] * self.n
        for p, v, w in zip(self.pos.tolist(), values, where.tolist(), strict=True):
            if w and v is not None and (out[p] is None or v < out[p]):
                out[p] = v
        self.out[key] = out


def _isin(g: np.ndarray, codes) -> np.ndarray:
    return np.isin(g, np.asarray(codes, dtype="float64"))


def batch_aggregates(
    batch: dict, bases: list[dict], refs, listed: bool, items: it.ItemLookup = it.no_items
) -> tuple[list[dict | None], list[list[dict]]]:
    """claim.line_aggregates for every claim of `bases` (claim.claim_base rows, the batch's
    claims in order) over the batch's `drug_lines` and `service_lines` frames, and each claim's
    lines (the LINE_KEYS of claim.drug_line / service_line rows, in claim.py's order)."""
    n = len(bases)
    lines = _line_table(batch.get("drug_lines"), batch.get("service_lines"))
    if not lines:
        return [None] * n, [[] for _ in range(n)]
    # each line under each claim of its claim_id (a claim id twice in the claims: both get
    # its lines, as claim.py's by_claim does), claim by claim, lines in their order
    where: dict = {}
    for i, b in enumerate(bases):
        where.setdefault(b["claim_id"], []).append(i)
    pairs = [(p, j) for j, c in enumerate(lines["claim_id"]) for p in where.get(c, ())]
    if not pairs:
        return [None] * n, [[] for _ in range(n)]
    pairs.sort(key=lambda x: x[0])  # stable: lines keep their order within a claim
    pos_l = np.fromiter((p for p, _ in pairs), dtype=np.intp, count=len(pairs))
    take = np.fromiter((j for _, j in pairs), dtype=np.intp, count=len(pairs))
    x = {k: (v.iloc[take].reset_index(drop=True) if isinstance(v, pd.Series) else v[take])
         for k, v in lines.items()}  # fmt: skip
    level = [b["facility_level"] for b in bases]
    month = [b["month"] for b in bases]
    claim_lines = _claim_lines(x, pos_l, n)
    # each line once per reference price (claim.line_aggregates' `for ref in refs(...)`)
    found: dict = {}
    ref_lists = []
    for item, p in zip(x["item_key"], pos_l.tolist(), strict=True):
        key = (item, level[p], month[p])
        got = found.get(key)
        if got is None:
            got = found[key] = refs(*key)
        ref_lists.append(got)
    k = np.fromiter((len(r) for r in ref_lists), dtype=np.intp, count=len(ref_lists))
    ref = np.array([np.nan if v is None else v for r in ref_lists for v in r], dtype="float64")
    rep = np.repeat(np.arange(len(pos_l)), k)
    pos = pos_l[rep]
    acc = _Acc(pos, n)
    _line_sums(acc, x, rep, ref, bases, pos, listed, _bundled(x, pos_l)[rep])
    _item_sums(acc, x, rep, pos_l, bases, items)
    clin = x["clinician_id"]
    n_clin: list[set] = [set() for _ in range(n)]
    for p, c in zip(pos_l.tolist(), clin, strict=True):
        if c is not None:
            n_clin[p].add(c)
    has = np.bincount(pos_l, minlength=n) > 0
    cols = {key: (v if isinstance(v, list) else [None if f != f else f for f in v.tolist()])
            for key, v in acc.out.items()}  # fmt: skip
    names = list(cols)
    aggs: list[dict | None] = []
    for i, row in enumerate(zip(*cols.values(), strict=True)):
        if not has[i]:
            aggs.append(None)
            continue
        a = dict(zip(names, row, strict=True))
        a["n_clinicians"] = float(len(n_clin[i]))
        aggs.append(a)
    return aggs, claim_lines


def _claim_lines(x: dict, pos: np.ndarray, n: int) -> list[list[dict]]:
    out: list[list[dict]] = [[] for _ in range(n)]
    cols = []
    for k in LINE_KEYS:
        v = x[k]
        if v.dtype == object:
            v = v.tolist()
        elif k == "is_drug":  # 1 / 0, as claim.drug_line / service_line
            v = v.astype("int64").tolist()
        else:
            v = [None if f != f else f for f in v.tolist()]
        cols.append(v)
    rows = [dict(zip(LINE_KEYS, row, strict=True)) for row in zip(*cols, strict=True)]
    surgery = [j for j, (g, p) in enumerate(zip(x["cost_group"], x["performer_id"], strict=True))
               if g == 8 and p is not None]  # fmt: skip
    for k in TIME_KEYS:  # Timestamps, None for NaT, as records() gives them
        v = x[k].iloc[surgery]
        for j, t in zip(surgery, v.astype(object).where(v.notna(), None), strict=True):
            rows[j][k] = t
    for p, row in zip(pos.tolist(), rows, strict=True):
        out[p].append(row)
    return out


def _bundled(x: dict, pos_l: np.ndarray) -> np.ndarray:
    """claim.bundled_lines per line of the batch: a component ordered at the same time as one of
    its parents on the same claim (the claim's position: a claim id twice has its lines twice)."""
    items = x["item_key"]
    comp = np.fromiter((k in ln.BUNDLED_IN for k in items), dtype=bool, count=len(items))
    if not comp.any():
        return comp
    oa = x["ordered_at"]
    known = oa.notna().to_numpy()
    at = oa.to_numpy(dtype="datetime64[us]").astype("int64")
    parents = {(p, t, kind)
               for p, t, k, g, ok in zip(pos_l.tolist(), at.tolist(), items, x["cost_group"],
                                         known.tolist(), strict=True) if ok
               for kind in ln.parent_kinds(k, g)}  # fmt: skip
    out = np.zeros(len(items), dtype=bool)
    for j in np.flatnonzero(comp & known).tolist():
        p, t = int(pos_l[j]), int(at[j])
        out[j] = any((p, t, kind) in parents for kind in ln.BUNDLED_IN[items[j]])
    return out


def _line_sums(acc: _Acc, x: dict, rep, ref, bases, pos, listed: bool, bundled) -> None:
    """claim._line_into and claim.findings over every (line, reference price); `bundled`: each
    (line, reference price)'s claim.bundled_lines."""
    e = {k: (v.to_numpy()[rep] if isinstance(v, pd.Series) else v[rep]) for k, v in x.items()
         if k not in ("claim_id", "line_key")}  # fmt: skip
    g = np.array([np.nan if v is None else float(v) for v in e["cost_group"]], dtype="float64")
    fund_raw = e["line_fund"]
    fund = np.nan_to_num(fund_raw, nan=0.0)
    amt, q, is_drug = e["amount"], e["quantity"], e["is_drug"]
    for name, codes in COST_GROUPS.items():
        acc.s(f"cost_{name}", _isin(g, codes), amt)
    is_bed, is_exam = _isin(g, COST_GROUPS["bed"]), _isin(g, COST_GROUPS["exam"])
    true = np.ones(len(g), dtype=bool)
    acc.s("n_drug_lines", true, is_drug)
    acc.s("n_service_lines", true, 1.0 - is_drug)
    acc.s("n_lab", _isin(g, COST_GROUPS["lab"]), 1.0)
    acc.s("n_imaging", _isin(g, COST_GROUPS["imaging"]), 1.0)
    acc.s("n_functional", _isin(g, COST_GROUPS["functional"]), 1.0)
    acc.s("n_procedures", _isin(g, (8, 18)), 1.0)
    acc.s("n_exams", is_exam, q)
    acc.s("bed_days", is_bed, q)
    acc.s("bed_fund", is_bed, fund)
    acc.s("exam_fund", is_exam, fund)
    drug = is_drug == 1
    acc.s("drug_fund", drug, fund)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc.max("drug_days", np.where(drug, q / e["daily_dose"], np.nan))
    acc.s("supportive_cost", e["supportive"] == 1, amt)
    acc.s("costly_cost", e["unit_price"] >= cf.COSTLY_UNIT_PRICE, amt)
    acc.max("top_line_amount", amt)
    acc.s("out_of_scope_cost", e["scope"] == 2, amt)
    oa = pd.DatetimeIndex(e["ordered_at"])
    off = ~oa.isna() & ((oa.day_of_week >= 5) | (oa.hour < 7) | (oa.hour >= 17))
    acc.s("offhours_lines", np.asarray(off), 1.0)
    acc.min_text("main_clinician", e["clinician_id"], g == 13)
    acc.min_text("any_clinician", e["clinician_id"], true)
    acc.s("lines_drug_amount", drug, amt)
    acc.s("lines_supply_amount", _isin(g, COST_GROUPS["supply"]), amt)
    acc.s("lines_amount", true, amt)
    acc.s("lines_fund", true, fund)
    # claim.findings
    up, fup, ins = e["unit_price"], e["fund_unit_price"], e["insured_amount"]
    ratio = e["service_ratio"] / 100.0
    ins_ratio = np.where(np.isnan(e["insurance_ratio"]), 100.0, e["insurance_ratio"]) / 100.0
    bp = e["benefit_pct"]
    benefit = np.where(np.isnan(bp), 100.0, bp) / 100.0
    exp_amount = q * up
    exp_insured = q * fup * ratio * ins_ratio
    other = np.nan_to_num(e["other_sources"], nan=0.0)
    exp_fund = ins * benefit - other
    amount_bad = (np.abs(amt - exp_amount) > 1.0) & (np.abs(amt - exp_amount * ratio) > 1.0)
    arith_bad = amount_bad | (np.abs(ins - exp_insured) > 1.0) | (fund_raw - exp_fund > 1.0)
    fair = np.fmin(np.where(np.isnan(ins), exp_insured, ins), exp_insured) * benefit
    arith_stake = np.maximum(fund - np.where(np.isnan(fair), fund, fair), 0.0)
    price_bad = fup > ref * ln.PRICE_TOLERANCE
    price_stake = (fup - ref) * q * ratio * ins_ratio * benefit
    has_item = np.array([v is not None for v in e["item_key"]], dtype=bool)
    unlisted = listed & np.isnan(ref) & has_item
    adm = np.array([b["admitted_at"] for b in bases], dtype="datetime64[us]")[pos]
    dis = np.array([b["discharged_at"] for b in bases], dtype="datetime64[us]")[pos]
    oa64 = e["ordered_at"].astype("datetime64[us]")
    res64 = e["result_at"].astype("datetime64[us]")
    outside = (oa64 < adm) | (oa64 > dis) | (res64 < oa64)
    cp = np.array([np.nan if b["card_pct"] is None else b["card_pct"] for b in bases])[pos]
    exempt = np.array([oc.benefit_exempt(b) for b in bases])[pos]
    benefit_bad = (bp > cp) & (exempt == 0)
    benefit_stake = np.nan_to_num(ins, nan=0.0) * (bp - cp) / 100.0
    vt = [b["visit_type"] for b in bases]
    no_inpatient = np.array([v in cf.NO_INPATIENT_BED for v in vt])[pos]
    no_day = np.array([v in cf.NO_DAY_BED for v in vt])[pos]
    bed_out = (_isin(g, (15, 16)) & no_inpatient) | ((g == 14) & no_day)
    for name, bad, stake in (
        ("arith", arith_bad, arith_stake),
        ("price", price_bad, price_stake),
        ("unlisted", unlisted, fund),
        ("outside", outside, fund),
        ("benefit", benefit_bad, benefit_stake),
        ("bed_out", bed_out, fund),
        ("bundled", bundled, fund),
    ):
        acc.s(f"{name}_lines", bad, 1.0)
        acc.s(f"{name}_stake", bad, stake)


def _item_sums(acc: _Acc, x: dict, rep, pos_l, bases, items) -> None:
    """items.pieces and items.into over every line (repeated as the reference prices are)."""
    q, fup, is_drug = x["quantity"], x["fund_unit_price"], x["is_drug"]
    item_keys = x["item_key"]
    has_item = np.array([v is not None for v in item_keys], dtype=bool)
    stay = np.array([max(b["stay_days"], 1.0) for b in bases])[pos_l]
    with np.errstate(invalid="ignore"):
        upd = np.where((is_drug == 1) & (q > 0) & has_item, q / stay, np.nan)
    m = len(pos_l)
    dose_ref, sib_ref = np.full(m, np.nan), np.full(m, np.nan)
    dx_claims, dx_n = np.full(m, np.nan), np.full(m, np.nan)
    seen: dict = {}

    def look(key, level, month):
        k = (key, level, month)
        if k not in seen:
            seen[k] = items(key, level, month)
        v = seen[k]
        return np.nan if v is None else v

    for j, (item, p, f) in enumerate(zip(item_keys, pos_l.tolist(), fup.tolist(), strict=True)):
        b = bases[p]
        level, month, vt, icd3 = b["facility_level"], b["month"], b["visit_type"], b["icd3"]
        if item is not None and vt is not None:
            dose_ref[j] = look(f"dose:{item}|{vt}", level, month)
        sib = it.sibling_key(item)
        if sib is not None and f == f:
            sib_ref[j] = look(f"sib:{sib}", level, month)
        if icd3 is not None:
            dx_claims[j] = look(f"dx:{icd3}|", level, month)
            if item is not None:
                dx_n[j] = look(f"dx:{icd3}|{item}", level, month)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where((dose_ref > 0) & ~np.isnan(upd), upd / dose_ref, np.nan)
        pricier = np.where(np.isnan(sib_ref), np.nan, fup > sib_ref * ln.PRICE_TOLERANCE)
        known = dx_claims >= ln.ITEM_MIN
        rare = np.where(known, np.nan_to_num(dx_n, nan=0.0) < dx_claims * ln.RARE_RATE, np.nan)
    ratio, pricier, rare, amt = ratio[rep], pricier[rep], rare[rep], x["amount"][rep]
    has = ~np.isnan(ratio)
    acc.max("dose_ratio_max", ratio)
    acc.s("dose_amount", has, amt)
    acc.s("dose_ratio_amount", has, amt * ratio)
    over = has & (ratio > 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc.s("dose_excess_amount", over, amt * (1.0 - 1.0 / ratio))
    acc.s("n_sibling_lines", ~np.isnan(pricier), 1.0)
    acc.s("n_pricier_lines", pricier == 1.0, 1.0)
    acc.s("dx_known_amount", ~np.isnan(rare), amt)
    acc.s("rare_lines", rare == 1.0, 1.0)
    acc.s("rare_amount", rare == 1.0, amt)


def enriched_rows(
    batch: dict, facilities: dict, refs, listed: bool, items: it.ItemLookup = it.no_items
) -> list[dict]:
    """claim.enriched_rows, the line aggregates column-wise (batch_aggregates) when the claims
    are a frame of MIN_CLAIMS or more; each row's `_lines` holds the LINE_KEYS of its lines."""
    claims = batch["claims"]
    if not isinstance(claims, pd.DataFrame) or len(claims) < MIN_CLAIMS:
        return oc.enriched_rows(batch, facilities, refs, listed, items)
    bases = [oc.claim_base(c, facilities.get(c["facility_id"]))
             for c in records(claims, NEEDED["claims"])]  # fmt: skip
    aggs, lines = batch_aggregates(batch, bases, refs, listed, items)
    out = []
    for b, agg, own in zip(bases, aggs, lines, strict=True):
        row = oc.enrich(b, agg)
        row["_lines"] = own
        out.append(row)
    return out
