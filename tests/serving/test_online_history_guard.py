"""The online history cannot be emptied by one claim (issue 13). The history forgets months older
than its window below the newest month it has seen (features/online.py: DELETE ... WHERE month <
cut), so a claim dated far in the future would once have wiped every remembered month. Today the
scoring path refuses admission and discharge times later than now plus the clock skew as field
errors before anything reaches the plan that remembers claims: the cut can never pass the
current month (+1 at a month's edge) minus the window. These tests hold that line for both
request kinds (JSON claims and XML envelopes) with a plan that records what it is given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import claim, dossier, raw_envelope

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import Limits
from serving.limits import RequestLimits
from serving.online import ScoringState, Served


class Remembering:
    """The plan's side of the contract: every claim it is asked for would be remembered."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def features(self, tables):
        self.seen += list(tables["claims"]["claim_id"])
        raise _Stop  # what happens after (the model) is not under test here

    feature_rows = features  # the hot path's entry (ids + a float matrix): the same contract


class _Stop(Exception):
    pass


def _state() -> tuple[ScoringState, Remembering]:
    plan = Remembering()
    s = ScoringState("sqlite:///unused.db", ".", DEV_LINKAGE_KEY, limits=Limits(workers=1),
                     request_limits=RequestLimits(clock_skew=timedelta(hours=24)))  # fmt: skip
    s.served = Served(bundle=None, snapshot=None, version="1", alias="test", plan=plan)
    return s, plan


def _local(days: float) -> str:
    t = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=7) + timedelta(days=days)
    return t.strftime("%Y%m%d%H%M")


FUTURE = [
    ("far", "209901010800", "209901050800"),
    ("next-month", _local(31), _local(33)),
    ("discharged-in-3-days", _local(-1), _local(3)),
]


@pytest.mark.parametrize(("name", "admitted", "discharged"), FUTURE, ids=[f[0] for f in FUTURE])
def test_a_future_claim_never_reaches_the_remembering_plan(name, admitted, discharged):
    state, plan = _state()
    c = {**claim("FUT", NGAY_VAO=admitted, NGAY_RA=discharged), "xml2": [], "xml3": []}
    out = state.score_records([c], actor="t")
    assert out["scored"] == [] and plan.seen == []
    fields = {e["field"] for e in out["errors"][0]["errors"]}
    assert fields & {"NGAY_VAO", "NGAY_RA"}
    env = raw_envelope([dossier("FUT", NGAY_VAO=admitted, NGAY_RA=discharged)])
    out = state.score_envelope(env, actor="t")
    assert out["scored"] == [] and plan.seen == []


def test_a_claim_of_today_does_reach_it():
    """The guard is not simply refusing everything: a claim dated now is remembered."""
    state, plan = _state()
    c = {**claim("NOW", NGAY_VAO=_local(-0.5), NGAY_RA=_local(-0.1)), "xml2": [], "xml3": []}
    with pytest.raises(_Stop):
        state.score_records([c], actor="t")
    assert plan.seen == ["NOW"]
