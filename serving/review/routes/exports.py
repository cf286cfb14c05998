"""Exports (supervisors): the filtered queue as CSV or Excel, the labels. Each export writes an
audit event. No cell can run as a spreadsheet formula: text starting with `=`, `+`, `-`, `@`, a
tab or a carriage return gets a leading `'` (OWASP, CSV injection)."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import Response

from serving.review.deps import Config, Supervisor, lang_of
from serving.review.queue import QueueFilter, queue_all
from serving.review.users import Account
from serving.store import Store

router = APIRouter()
HEAD = ["case_id", "MA_LK", "MA_CSKCB", "facility_name", "level", "month", "band", "risk_score",
        "priority", "expected_overbilled", "fund_claimed", "rule_codes", "rule_amount",
        "top_reason", "status", "assignee", "model_version"]  # fmt: skip
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(v):
    """Text a spreadsheet would run as a formula, made inert with a leading `'`; else `v`."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v


@router.get("/export/queue.csv")
def export_csv(request: Request, user: Supervisor, cfg: Config):
    body = _export_rows(request, cfg.store, user, cfg.export_rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEAD)
    w.writerows(body)
    return Response(
        "\ufeff" + buf.getvalue(),  # a BOM so Excel reads the Vietnamese text as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="queue.csv"'},
    )


@router.get("/export/queue.xlsx")
def export_xlsx(request: Request, user: Supervisor, cfg: Config):
    body = _export_rows(request, cfg.store, user, cfg.export_rows)
    return Response(
        xlsx(HEAD, body),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="queue.xlsx"'},
    )


@router.get("/export/labels.csv")
def export_labels_csv(user: Supervisor, cfg: Config):
    from serving.labels import label_rows

    df = label_rows(cfg.store)
    with cfg.store.session.begin() as s:
        cfg.store.audit(s, user.username, "export", "labels", "labels", after={"rows": len(df)})
    return Response(
        df.map(safe_cell).to_csv(index=False),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="labels.csv"'},
    )


def _export_rows(request: Request, store: Store, user: Account, most: int) -> list[list]:
    """The queue's rows under the request's filters (audited), in the page's language; at most
    `most` rows (the review_export_rows setting)."""
    f = QueueFilter.from_params(dict(request.query_params))
    rows = queue_all(store, f, user, limit=most)
    with store.session.begin() as s:
        store.audit(s, user.username, "export", "queue", "queue", after=f.params())
    lang = lang_of(request)
    return [[safe_cell(v) for v in export_row(r, lang)] for r in rows]


def export_row(r: dict, lang: str) -> list:
    keys = ("case_id", "claim_id", "facility_id", "facility_name", "facility_level", "month",
            "band", "risk_score", "priority", "expected_overbilled", "fund_claimed")  # fmt: skip
    out = [round(r[k], 4) if isinstance(r[k], float) else r[k] for k in keys]
    return [
        *out,
        " ".join(r["rules"]),
        round(r["rule_amount"], 2),
        r[f"top_reason_{lang}"] or "",
        r["status"],
        r["assignee"] or "",
        r["model_version"],
    ]


def xlsx(head: list[str], body: list[list]) -> bytes:
    """An Excel workbook of one sheet: a coloured header, money columns formatted, filters."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "queue"
    ws.append(head)
    for row in body:
        ws.append(row)
    fill = PatternFill("solid", fgColor="1E3A5F")
    for cell in ws[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = fill
    money = ("priority", "expected_overbilled", "fund_claimed", "rule_amount")
    money_cols = {head.index(c) + 1 for c in money}
    for col in range(1, len(head) + 1):
        width = max(len(str(head[col - 1])), *(len(str(r[col - 1])) for r in body[:200]), 8)
        ws.column_dimensions[get_column_letter(col)].width = min(width + 2, 60)
        if col in money_cols:
            for cell in ws.iter_cols(min_col=col, max_col=col, min_row=2):
                for c in cell:
                    c.number_format = "#,##0"
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
