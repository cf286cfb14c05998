"""A simulated world passes the contract's ingest without a single rejection."""

from __future__ import annotations

import pandas as pd

from claimradar.settings import DEV_LINKAGE_KEY
from contract.ingest import ingest
from simulator import simulate


def test_small_world_ingests_with_zero_rejections(tmp_path):
    r = simulate(tmp_path / "world", 5_000, months=3, seed=4)
    report = ingest(tmp_path / "world", tmp_path / "canonical", linkage_key=DEV_LINKAGE_KEY)
    assert report.rejected_total == 0, report.summary()
    claims = pd.read_parquet(tmp_path / "canonical" / "claims.parquet")
    assert len(claims) == r.claims
    rej = tmp_path / "canonical" / "rejections.parquet"
    assert not rej.exists() or len(pd.read_parquet(rej)) == 0


def test_abusive_world_is_kept_whole_by_ingest(abusive, tmp_path):
    """Schemes break semantics (bed-days, prices, overlaps), never the contract's structure."""
    report = ingest(abusive.path, tmp_path / "canonical", linkage_key=DEV_LINKAGE_KEY)
    assert report.rejected_total == 0, report.summary()
    assert report.written["claims"] == len(abusive.xml1)
