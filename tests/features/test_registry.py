"""The feature registry: every model input described, unit-formatted and explainable."""

from __future__ import annotations

import math

from features.registry import FEATURES, categorical_names, explain, feature_names


def test_every_feature_is_described_and_explains_itself():
    assert len(feature_names()) == len(FEATURES) > 150
    for f in FEATURES.values():
        assert f.en and f.vi and f.unit and f.group, f.name
        for lang in ("vi", "en"):
            text = f.explain(1234.5, 1000.0, lang)
            assert "{" not in text and len(text) > 5, (f.name, text)
        if f.peer:
            assert f.peer in FEATURES, (f.name, f.peer)


def test_sentences_carry_the_claim_and_peer_values():
    s = explain("claim_cost", 2_500_000, 1_000_000, "vi")
    assert "2.500.000 đ" in s and "1.000.000 đ" in s
    s = explain("claim_cost", 2_500_000, 1_000_000, "en")
    assert "2,500,000 VND" in s and "1,000,000 VND" in s
    assert "n/a" in explain("stay_days", 3, math.nan, "en")
    assert "35%" in explain("supportive_share", 0.35, None, "en")


def test_categoricals_are_listed():
    assert set(categorical_names()) == {"visit_type_code", "facility_level_code", "icd_chapter",
                                         "sex"}  # fmt: skip
