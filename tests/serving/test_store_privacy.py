"""Personal data stays out of database error messages (issue 13): the store's engines hide the
bound parameters of a failing statement."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from serving.store import Store, make_engine


def test_a_failing_statement_does_not_show_its_values(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'cases.db'}")
    secret = "NGUYEN VAN A 0123456789"
    with store.engine.begin() as c:
        c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)"))
        c.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": secret})
    with pytest.raises(IntegrityError) as failed, store.engine.begin() as c:
        c.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": secret})
    message = str(failed.value)
    assert "UNIQUE" in message and "hidden due to hide_parameters" in message
    assert secret not in message and secret not in repr(failed.value)
    store.engine.dispose()


def test_every_engine_hides_parameters(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'x.db'}", "postgresql+psycopg://u:p@localhost:1/x"):
        engine = make_engine(url)
        assert engine.hide_parameters, url
        engine.dispose()
