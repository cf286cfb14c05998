"""The item-level peer features (features.lines.item_reference / item_pieces): each line against
the statistics of the months before its claim's month: units per day against the drug's usual,
lines priced above their sibling group's usual price, items rarely billed for the diagnosis at
that level. Point in time, and they move the way the schemes they are for move them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.pipeline import build_features

# June 16: claims from it on are altered; June's statistics read January..May only
CUTOFF = pd.Timestamp("2025-06-16")
ITEM = ["dose_ratio_max", "dose_ratio_weighted", "dose_excess_amount", "pricier_share",
        "rare_service_share", "rare_lines"]  # fmt: skip


@pytest.fixture(scope="module")
def both(feature_tables, feature_frame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The features of the world, and of the world whose claims admitted from CUTOFF on bill
    three times the drug quantities, five times the imaging prices (claims with imaging), and lab
    tests under a code nobody billed before (claims without imaging), and five copies of each
    (new MA_LK) diagnosed as a common cold."""
    c = feature_tables["claims"]
    ids = set(c.loc[c["admitted_at"] >= CUTOFF, "claim_id"])
    altered = dict(feature_tables)
    d = feature_tables["drug_lines"].copy()
    d.loc[d["claim_id"].isin(ids), "quantity"] *= 3
    s = feature_tables["service_lines"].copy()
    later = s["claim_id"].isin(ids)
    img = later & (s["cost_group"] == 2)
    for col in ("unit_price", "insured_unit_price"):
        s.loc[img, col] *= 5
    no_img = later & ~s["claim_id"].isin(set(s.loc[img, "claim_id"]))
    s.loc[no_img & (s["cost_group"] == 1), "service_code"] = "99.0001.0001"
    altered["claims"], altered["drug_lines"], altered["service_lines"] = c, d, s
    for k in range(1, 6):
        cp = c[c["claim_id"].isin(ids)].assign(primary_icd="J06.9")
        cp["claim_id"] = cp["claim_id"] + f"c{k}"
        altered["claims"] = pd.concat([altered["claims"], cp], ignore_index=True)
        for t, lines in (("drug_lines", d), ("service_lines", s)):
            lc = lines[lines["claim_id"].isin(ids)].copy()
            lc["claim_id"] = lc["claim_id"] + f"c{k}"
            altered[t] = pd.concat([altered[t], lc], ignore_index=True)
    full = feature_frame.set_index("claim_id").sort_index()  # build_features(feature_tables)
    return full, build_features(altered).set_index("claim_id").sort_index()


def test_claims_before_the_change_keep_every_feature(both):
    """Point in time: what claims admitted after a day bill changes no feature of a claim
    admitted before it (the same month's statistics would leak: June 1-15 would see June 16+;
    fails when the dose statistic or the diagnosis counts read their own month)."""
    full, got = both
    early = full.index[full["admitted_at"] < CUTOFF]
    assert full.loc[early, ITEM].notna().sum().min() > 50  # the features are there to compare
    pd.testing.assert_frame_equal(full.loc[early], got.loc[early], check_exact=False, rtol=1e-9)


def test_tripled_quantities_triple_the_dose_ratio(both):
    full, got = both
    late = full.index[(full["admitted_at"] >= CUTOFF) & full["dose_ratio_max"].notna()]
    assert len(late) > 20
    np.testing.assert_allclose(
        got.loc[late, "dose_ratio_max"], 3 * full.loc[late, "dose_ratio_max"]
    )
    np.testing.assert_allclose(
        got.loc[late, "dose_ratio_weighted"], 3 * full.loc[late, "dose_ratio_weighted"]
    )
    # the cost beyond the usual units per day grows (a line at a third of the usual stays 0)
    more, was = got.loc[late, "dose_excess_amount"], full.loc[late, "dose_excess_amount"]
    assert (more >= was).all() and (more > was).mean() > 0.8


def test_pricier_imaging_and_unknown_lab_codes(both):
    full, got = both
    late = full["admitted_at"] >= CUTOFF
    # imaging at five times the price: the pricier codes of their sibling group (chapter 18)
    img = late & (full["n_imaging"] > 0) & full["pricier_share"].notna()
    assert img.sum() > 20
    img = full.index[img]
    assert (got.loc[img, "pricier_share"] >= full.loc[img, "pricier_share"]).all()
    assert got.loc[img, "pricier_share"].mean() > full.loc[img, "pricier_share"].mean() + 0.1
    # a lab code no claim of the diagnosis billed before is rare for it
    lab = late & (full["n_lab"] > 0) & (full["n_imaging"] == 0)
    lab &= full["rare_service_share"].notna()
    assert lab.sum() > 5
    lab = full.index[lab]
    assert (got.loc[lab, "rare_lines"] >= full.loc[lab, "n_lab"]).all()
    assert (got.loc[lab, "rare_service_share"] > full.loc[lab, "rare_service_share"]).mean() > 0.9
