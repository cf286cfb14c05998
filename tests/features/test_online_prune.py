"""Remembered claims leave Redis when they leave the history window: `RedisStore.prune(cut)`
forgets the claims of months before `cut` from every key (patients' visits, facility day
counters, clinicians' and performers' sorted sets, entries, history rows, month indexes), so a
store pruned to June holds exactly what a store that only ever remembered June holds; a state
moving to a month HISTORY_MONTHS later prunes it (every replica may)."""

from __future__ import annotations

import pandas as pd
import pytest

from features import profiles as pf
from features.assembly import month_number
from features.online_state import OnlineState
from features.online_state.shared import RedisStore
from features.pipeline import build_snapshot

AS_OF = pd.Timestamp("2025-05-01")


@pytest.fixture(scope="module")
def snapshot(feature_tables):
    return build_snapshot(feature_tables, AS_OF)


def _request(tables: dict, lo: str, hi: str) -> dict:
    c = tables["claims"]
    claims = c[(c["admitted_at"] >= lo) & (c["admitted_at"] < hi)]
    ids = set(claims["claim_id"])
    out = {"claims": claims}
    for t in ("drug_lines", "service_lines"):
        out[t] = tables[t][tables[t]["claim_id"].isin(ids)]
    return out


def _dump(store: RedisStore) -> dict:
    """Every key under the store's prefix with its content (history rows: their claim ids)."""
    r, out = store.redis, {}
    for key in r.scan_iter(match=store.prefix + "*"):
        name = key.decode().removeprefix(store.prefix)
        kind = r.type(key).decode()
        if name == "rows":
            out[name] = sorted(k.decode() for k in r.hkeys(key))
        elif kind == "hash":
            got = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
            out[name] = {k: round(float(v), 6) if k.endswith(":s") else v for k, v in got.items()}
        elif kind == "zset":
            out[name] = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            out[name] = sorted(r.smembers(key))
        else:
            out[name] = r.get(key)
    return out


def test_prune_forgets_the_months_before_the_window(snapshot, feature_tables, redis_server):
    may, june = ("2025-05-03", "2025-05-06"), ("2025-06-01", "2025-06-03")
    a = RedisStore(redis_server.url(), prefix="t-prune-a:")
    b = RedisStore(redis_server.url(), prefix="t-prune-b:")
    a.clear(), b.clear()
    sa = OnlineState(snapshot, remember=True, store=a)
    sa.features(_request(feature_tables, *may))
    sa.features(_request(feature_tables, *june))
    n_may = len(_request(feature_tables, *may)["claims"])
    assert n_may > 0 and len(a.rows_text()) > n_may
    sb = OnlineState(snapshot, remember=True, store=b)
    sb.features(_request(feature_tables, *june))  # only June, ever
    assert a.prune(month_number(pd.Timestamp("2025-06-01")), batch=7) == n_may  # several calls
    assert _dump(a) == _dump(b)
    # a state moving HISTORY_MONTHS past June prunes June itself
    sa._roll(month_number(pd.Timestamp("2025-06-01")) + pf.HISTORY_MONTHS + 1)
    assert a.rows_text() == {} and not list(a.redis.scan_iter(match=a.prefix + "c:*"))
    left = {k for k in _dump(a) if k != "epoch"}
    assert not left, left
    a.clear(), b.clear()
