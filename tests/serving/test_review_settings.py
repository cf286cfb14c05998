"""The review UI's bounds are typed settings (issue 13): page size, export rows and form bounds
come from CLAIMRADAR_REVIEW_* through claimradar.settings.review_options, are validated, and
bound what the UI shows and reads."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from claimradar.settings import Settings, review_options
from serving.records import document_hash
from serving.review import create_review_app
from serving.review.users import create_user
from serving.store import Store


def _site(tmp_path, settings: Settings):
    store = Store(f"sqlite:///{tmp_path / 'cases.db'}")
    rows = [
        {"claim_id": f"C{i}", "facility_id": "01001", "model_version": "1",
         "content_hash": document_hash(i), "risk_score": 0.5, "expected_overbilled": 1.0,
         "priority": 100.0 - i, "band": "review", "claim": {"summary": {}}}
        for i in range(7)
    ]  # fmt: skip
    store.record_scores(rows, "test", ("review",))
    create_user(store, "sup", "supervisor", "sup-password-123")
    outer = FastAPI()
    outer.mount(
        "/review", create_review_app(store, secret_key="s" * 32, **review_options(settings))
    )
    c = TestClient(outer, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/review/login").text).group(1)
    r = c.post("/review/login", data={"username": "sup", "password": "sup-password-123",
                                      "csrf": token})  # fmt: skip
    assert r.status_code == 303
    return store, c


def test_review_bounds_come_from_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAIMRADAR_REVIEW_PAGE_SIZE", "3")
    monkeypatch.setenv("CLAIMRADAR_REVIEW_EXPORT_ROWS", "5")
    monkeypatch.setenv("CLAIMRADAR_REVIEW_MAX_FORM_BYTES", "4096")
    monkeypatch.setenv("CLAIMRADAR_SECURE_COOKIES", "false")
    settings = Settings()
    opts = review_options(settings)
    assert (opts["per_page"], opts["export_rows"], opts["max_form_bytes"]) == (3, 5, 4096)
    store, c = _site(tmp_path, settings)
    page = c.get("/review/queue").text
    assert len(set(re.findall(r'href="/review/cases/(\d+)"', page))) == 3  # one page of 3
    rows = list(csv.reader(io.StringIO(c.get("/review/export/queue.csv").text)))
    assert len(rows) == 1 + 5  # the header and five rows of the seven cases
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/review/take-next", data={"csrf": token, "pad": "x" * 5000})
    assert r.status_code == 413  # above the form bound of 4,096 bytes
    store.engine.dispose()


@pytest.mark.parametrize(
    ("name", "value"),
    [("REVIEW_PAGE_SIZE", "0"), ("REVIEW_PAGE_SIZE", "100000"), ("REVIEW_EXPORT_ROWS", "-1"),
     ("REVIEW_MAX_FORM_FIELDS", "many")],
)  # fmt: skip
def test_review_bounds_are_validated(monkeypatch, name, value):
    monkeypatch.setenv(f"CLAIMRADAR_{name}", value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()
