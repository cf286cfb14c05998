"""Officers' final decisions as labels (features/schema.py LABELS, XML-style column names), the
file `claimradar train --labels FILE` learns from. Pending and returned decisions are left out, and
so is a decision on an earlier version of a claim that was resubmitted since (its case re-opened:
the decision judged content the claim no longer has)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from serving.store import Case, Decision, Store

LOCAL = timedelta(hours=7)  # the store keeps UTC; the data contract's times are local (UTC+7)
COLUMNS = ("MA_LK", "LABEL", "T_XUATTOAN", "LY_DO", "NGAY_KET_LUAN")


def label_rows(store: Store) -> pd.DataFrame:
    """One row per claim: its latest final decision. LABEL is 1 when money was rejected."""
    with store.session() as s:
        rows = s.execute(
            select(Decision, Case.claim_id)
            .join(Case, Decision.case_id == Case.id)
            .where(Decision.status == "final")
            .where(func.coalesce(Decision.claim_version, 1) == func.coalesce(Case.claim_version, 1))
            .order_by(Decision.id)
        ).all()
    out = {}
    for d, claim_id in rows:
        at = (d.approved_at or d.decided_at) + LOCAL
        rejected = float(d.amount_rejected or 0.0)
        out[claim_id] = {
            "MA_LK": claim_id,
            "LABEL": "1" if d.outcome != "accept" and rejected > 0 else "0",
            "T_XUATTOAN": f"{rejected:.2f}",
            "LY_DO": f"{d.reason_code} {d.outcome}" if d.reason_code else d.outcome,
            "NGAY_KET_LUAN": at.strftime("%Y%m%d%H%M"),
        }
    return pd.DataFrame(list(out.values()), columns=list(COLUMNS), dtype="str")


def export_labels(store: Store, out: Path) -> int:
    """Write the labels file (.csv, else Parquet) and return its rows. Values are written as text,
    as the tabular input format reads them."""
    df = label_rows(store)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        df.to_csv(out, index=False)
    else:
        df.to_parquet(out, index=False)
    return len(df)
