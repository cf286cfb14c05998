import pandas as pd
import pytest

from training.data import attach_targets, time_split


def frame(n_months=6):
    rows = []
    for m in range(n_months):
        for i in range(20):
            day = pd.Timestamp("2025-01-01") + pd.DateOffset(months=m) + pd.Timedelta(days=i)
            rows.append({"claim_id": f"C{m}-{i}", "discharged_at": day, "fund_claimed": 100.0})
    return pd.DataFrame(rows)


def labels(f, delay_days=20):
    lab = f.iloc[::2][["claim_id"]].copy()
    lab["label"] = [i % 2 for i in range(len(lab))]
    lab["rejected_amount"] = lab["label"] * 50.0
    lab["decided_at"] = f.set_index("claim_id").loc[lab["claim_id"], "discharged_at"].to_numpy()
    lab["decided_at"] += pd.Timedelta(days=delay_days)
    return lab


def test_split_respects_the_cutoff_and_label_delay():
    f = frame()
    t = attach_targets(f, labels(f), None)
    s = time_split(t, pd.Timestamp("2025-05-01"), val_months=1, holdout_months=2)
    assert (s.train["discharged_at"] < pd.Timestamp("2025-04-01")).all()
    assert s.val["discharged_at"].between("2025-04-01", "2025-04-30 23:59").all()
    # a label decided after the cutoff never trains or validates, however early the claim
    for part in (s.train, s.val):
        assert (part["decided_at"] < s.cutoff).all() and part["label"].notna().all()
    assert len(s.val) < 10  # late April labels are decided in May: not yet known at the cutoff
    assert (s.holdout["discharged_at"] >= s.cutoff).all()
    assert s.holdout_source == "labels" and s.holdout["label"].notna().all()


def test_truth_makes_every_holdout_claim_count():
    f = frame()
    truth = pd.DataFrame({"claim_id": ["C5-3"], "scheme": ["ghost"], "overbilled": [80.0]})
    t = attach_targets(f, labels(f), truth)
    s = time_split(t, pd.Timestamp("2025-05-01"), 1, 2)
    assert s.holdout_source == "truth" and len(s.holdout) == 40
    assert s.holdout.set_index("claim_id").loc["C5-3", "target_amount"] == 80.0


def test_no_labels_is_a_clear_error():
    f = frame()
    t = attach_targets(f, None, None)
    with pytest.raises(ValueError, match="not enough labelled claims"):
        time_split(t, pd.Timestamp("2025-05-01"), 1, 2)
