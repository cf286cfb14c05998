"""Facility early warning: a facility whose cost per visit jumps against its own stable history is
flagged that month, with the change split into case mix, price and volume; a small facility with
ordinary noise is not; the claims that carry the shift get money as evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import features.early_warning as ew
from features.early_warning import facility_warnings, quarter_warnings, shift_evidence

MONTHS = pd.period_range("2025-01", "2025-09", freq="M")


ALL = ("J", "K", "I", "E")


def handmade(
    seed: int,
    jump: float = 1.4,
    jump_month: str = "2025-07",
    cells_move=ALL,
    who: str = "49001",
    ramp: float = 0.0,
    levels: dict | None = None,
):
    """A district hospital (430 visits a month, ~380k VND each), a 150-visit facility with
    ordinary noise, and 20 peers of other sizes; from `jump_month` the hospital's visits in the
    diagnosis chapters `cells_move` cost `jump` times as much (more units at the same prices);
    `who` names another facility to jump instead. With `ramp`, the cost climbs instead: `1 + ramp`
    times the month before, month after month. `levels` gives some facilities another level
    than H."""
    rng = np.random.default_rng(seed)
    parts = []  # per facility and month: the draws, in the order the seed fixes
    sizes = {"49001": 430, "49002": 150} | {f"49{i:03d}": int(rng.integers(40, 900)) for i in
                                             range(3, 23)}  # fmt: skip
    for fid, size in sizes.items():
        for month in MONTHS:
            k = int(rng.poisson(size))
            icd = rng.choice(["J", "K", "I", "E"], k, p=[0.4, 0.3, 0.2, 0.1])
            vt = rng.choice(["01", "03"], k, p=[0.85, 0.15])
            cost = rng.lognormal(np.log(330_000), 0.55, k) * np.where(vt == "03", 4.0, 1.0)
            hit = (fid == who) & (str(month) >= jump_month) & np.isin(icd, cells_move)
            if ramp:
                jump = (1 + ramp) ** ((month - pd.Period(jump_month, "M")).n + 1)
            cost = np.where(hit, cost * jump, cost)
            day = rng.integers(0, month.days_in_month, k)
            at = month.start_time + pd.to_timedelta(day, unit="D")
            parts.append((np.full(k, fid), at, cost, icd, vt))
    fid, at, cost, icd, vt = (np.concatenate(x) for x in zip(*parts, strict=True))
    cid = [f"C{n:07d}" for n in range(len(cost))]
    claims = pd.DataFrame({
        "claim_id": cid, "facility_id": fid, "admitted_at": at, "total_cost": cost,
        "fund_claimed": cost * 0.8, "primary_icd": np.char.add(icd, "06"), "visit_type": vt,
    })  # fmt: skip
    drugs = pd.DataFrame(
        {"claim_id": cid, "drug_code": "DRUG1", "quantity": 10.0 * cost / 330_000,
         "unit_price": 33_000.0}
    )  # fmt: skip
    facilities = pd.DataFrame(
        {
            "facility_id": list(sizes),
            "level": [(levels or {}).get(f, "H") for f in sizes],
            "facility_name": [f"BV {f}" for f in sizes],
        }
    )
    return {"claims": claims, "drug_lines": drugs, "facilities": facilities}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_40_percent_jump_is_flagged_that_month_and_noise_is_not(seed):
    tables = handmade(seed)
    hosp_table = facility_warnings(tables, "2025-07").set_index("facility_id")
    hosp = hosp_table.loc["49001"]
    assert bool(hosp["warning"]), hosp
    # the jump is within cells (volume at the same prices), not case mix or price
    assert hosp["volume_effect"] > 0.8 * hosp["change"] > 0
    assert abs(hosp["price_effect"]) < 0.05 * hosp["change"]
    assert abs(hosp["mix_effect"]) < 0.25 * hosp["change"]
    assert "/01" in hosp["evidence"]
    # nothing else, in any month: the 150-visit facility's noise never raises a warning (the
    # months from one pass: each month's table is the one facility_warnings gives for it)
    by_month = ew.warnings_by_month(tables, ["2025-05", "2025-06", "2025-07", "2025-08"])
    pd.testing.assert_frame_equal(by_month["2025-07"].set_index("facility_id"), hosp_table)
    for w in by_month.values():
        others = w[w["facility_id"] != "49001"]
        assert not others["warning"].any(), others[others["warning"]]


def test_small_facilities_need_a_larger_change_than_large_ones():
    """Volume-aware: the same +15% is a stronger signal at 430 visits than at 150 (larger z), and
    the small facility's change is shrunk more toward its peers."""
    big = facility_warnings(handmade(4, jump=1.15), "2025-07").set_index("facility_id")
    small = facility_warnings(handmade(4, jump=1.15, who="49002"), "2025-07")
    small = small.set_index("facility_id")
    assert big.loc["49001", "z"] > small.loc["49002", "z"] > 0
    assert big.loc["49001", "z"] > 2.0

    def kept(w, f):  # the share of its own change the shrinkage keeps
        return w.loc[f, "growth_shrunk"] / w.loc[f, "growth_vs_trend"]

    assert kept(big, "49001") > kept(small, "49002")


def test_the_shift_money_goes_to_the_claims_of_the_cells_that_moved():
    tables = handmade(5, jump=1.8, cells_move=("J",))
    ev = shift_evidence(tables, months=[2025 * 12 + 6])
    c = tables["claims"].set_index("claim_id")
    got = c.loc[ev.loc[ev["facility_shift"] > 0, "claim_id"]]
    assert (got["facility_id"] == "49001").all()
    assert got["primary_icd"].str.startswith("J").mean() > 0.8
    assert (ev["facility_shift"] <= c.loc[ev["claim_id"], "fund_claimed"].to_numpy() + 1e-6).all()


def test_the_quarterly_letter_and_bad_arguments():
    tables = handmade(6)
    q = quarter_warnings(tables, "2025-Q3")
    assert list(q["facility_id"]) == ["49001"]
    with pytest.raises(ValueError, match="YYYY-MM"):
        facility_warnings(tables, "May 2025")
    with pytest.raises(ValueError, match="no claims"):
        facility_warnings(tables, "2030-01")
    with pytest.raises(ValueError, match="YYYY-Qn"):
        quarter_warnings(tables, "2025-3")


def test_an_honest_simulated_month(feature_tables):
    w = facility_warnings(feature_tables, "2025-05")
    assert len(w) == feature_tables["claims"]["facility_id"].nunique()
    assert not w["warning"].any()


def _warned(got: dict[str, pd.DataFrame]) -> dict[str, list[str]]:
    return {m: sorted(w.loc[w["warning"], "facility_id"]) for m, w in got.items()}


def _warned_months(tables, months) -> dict[str, list[str]]:
    return _warned(ew.warnings_by_month(tables, months))


MONTHS_ON = [str(m) for m in MONTHS[3:]]


@pytest.mark.parametrize("seed", [7, 8])
def test_a_gradual_climb_is_caught_by_the_drift_test(seed, monkeypatch):
    """+5% a month from March: each month against the three before it moves too little (the
    baseline climbs with it), but against the months before the climb the hospital is far out:
    the drift test warns it by September (+41% then), and nobody else in any month."""
    tables = handmade(seed, jump_month="2025-03", ramp=0.05)
    got = ew.warnings_by_month(tables, MONTHS_ON)
    warned = _warned(got)
    assert all(set(f) <= {"49001"} for f in warned.values()), warned
    hits = [m for m, f in warned.items() if f]
    assert hits and hits[0] <= "2025-09", warned
    w = got[hits[0]].set_index("facility_id")
    assert w.loc["49001", "test"] == "drift"
    # the shift money follows the drift test's baseline: the hospital's claims carry it
    ev = shift_evidence(tables)
    c = tables["claims"].set_index("claim_id")
    assert (c.loc[ev.loc[ev["facility_shift"] > 0, "claim_id"], "facility_id"] == "49001").all()
    assert (ev["facility_shift"] > 0).sum() > 100
    # without the drift test the same climb is never warned before September ends
    monkeypatch.setattr(ew, "DRIFT_GAP", 0)
    early = _warned_months(tables, MONTHS_ON[: MONTHS_ON.index("2025-09") + 1])
    assert not any(early.values()), early


def test_a_facility_is_never_its_own_peer():
    """In a level of two, the peers' median change is the other facility's alone: a +25% jump
    does not move the yardstick it is measured against (a median over the level including
    itself would be half its own change) and is warned."""
    levels = {"49001": "T", "49003": "T"}
    still = facility_warnings(handmade(9, jump=1.0, levels=levels), "2025-07")
    jumped = facility_warnings(handmade(9, jump=1.25, levels=levels), "2025-07")
    still, jumped = still.set_index("facility_id"), jumped.set_index("facility_id")
    # a level of two has one peer: too few; the yardstick is every other facility
    assert jumped.loc["49001", "peer_growth_median"] == pytest.approx(
        still.loc["49001", "peer_growth_median"], abs=1e-9
    )
    assert bool(jumped.loc["49001", "warning"])
    assert not bool(still.loc["49001", "warning"])


def test_the_leave_one_out_median_is_exact_at_any_level_size():
    """Each facility's peers' median is of the others only, in a level of 5 or of 51 (one
    climbing facility among steady ones is measured against 0, not its own change)."""
    rng = np.random.default_rng(0)
    for n in (3, 5, 51, 400):
        v = rng.normal(size=n)
        v[rng.random(n) < 0.1] = np.nan
        got = ew._leave_one_out(v)
        for i in range(n):
            others = np.delete(v, i)
            others = others[~np.isnan(others)]
            if len(others) < ew.MIN_PEERS:
                assert np.isnan(got[i])
            else:
                assert got[i] == pytest.approx(np.median(others), abs=1e-12)
    level = np.r_[0.5, np.zeros(50)]
    assert ew._leave_one_out(level)[0] == 0.0


def test_the_warning_reads_cell_sums_as_it_reads_claims(feature_tables):
    """The statistics read sums per facility, month and cell (so the Spark engine can send only
    those to the driver): one row per claim (a sum of one) and one per cell give the same
    warnings, figures and shift money."""
    months = ["2025-03", "2025-04", "2025-05"]
    cells = ew.claim_cells(feature_tables)
    lines = ew._line_prices(feature_tables, cells)
    per_claim = ew.warnings_from_sums(cells, lines.assign(w=1), months)
    summed = ew.warnings_from_sums(ew.cell_sums(cells), ew.price_sums(lines), months)
    assert len(ew.cell_sums(cells)) < len(cells) / 3
    for m in months:
        assert per_claim[m]["price_effect"].ne(0).any()  # lines read: the medians are tested
        pd.testing.assert_frame_equal(
            summed[m], per_claim[m], check_exact=False, rtol=1e-9, atol=1e-6
        )


def test_a_cell_whose_claims_cost_the_same_has_no_spread():
    """A variance from sums leaves rounding where the claims do not differ: it is 0, as the
    two-pass variance says (a spread of rounding made a z of billions)."""
    cost = np.full(7, 1_234_567.89)
    rows = pd.DataFrame(
        {"facility_id": "F", "cell": "J|01", "n": 1, "s": cost, "ls": np.log(cost)}
    ).assign(ls2=lambda d: d["ls"] ** 2)
    stats = ew._cell_stats(rows)
    assert stats["lvar"].iloc[0] == 0.0
    noisy = rows.assign(ls=np.log(cost * np.linspace(0.9, 1.1, 7)))
    noisy["ls2"] = noisy["ls"] ** 2
    assert ew._cell_stats(noisy)["lvar"].iloc[0] == pytest.approx(noisy["ls"].var(), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_the_weighted_median_is_the_median_of_the_repeated_rows(seed):
    rng = np.random.default_rng(seed)
    n = 300
    rows = pd.DataFrame(
        {
            "facility_id": rng.choice(["A", "B", "C"], n),
            "item": rng.choice(["x", "y", "z", "w"], n),
            "price": rng.choice([10.0, 12.5, 13.0, 20.0, 7.0], n),
            "w": rng.integers(1, 5, n),
        }
    )
    got = ew._weighted_median(rows, ["facility_id", "item"], "price", "w")
    repeated = rows.loc[rows.index.repeat(rows["w"])]
    want = repeated.groupby(["facility_id", "item"])["price"].median()
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
