"""Randomized worlds to choose by: the shape of a simulated province drawn from a seed.

A choice tuned on one simulated world does not carry to another, so design choices (the ranking's
terms, the early warning's thresholds) are made on many worlds by their worst case and reported on
other seeds. A world's draw: claims and people per facility (so the number and mix of
facilities), which schemes run and at what rates, when some of them start, how the agency reviews
(rates, detection, decision lag), and one facility-level scheme held out: it starts in the first
holdout month, after every label, at a few facilities broadly (the case of a district hospital
whose cost per visit jumps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from simulator.schemes import SCHEMES

HELD_OUT = "cost_climb"  # the facility-level scheme no label ever contains
START = "2025-01"
MONTHS = 12
CUTOFF = "2025-10"  # the first holdout month: the held-out scheme starts here
# Seeds the design is chosen on, and seeds it is reported on (never chosen with). 201-206 and
# 301-306 were earlier report sets, seen while the selection rule was settled (docs/training.md);
# 401-406 were the next report set: seen twice, and world 403's unflagged gradual climb was
# looked at while the early warning's drift test was designed, so they are retired too; 501-506
# were run once and showed a known scheme pushed out (duplicates, world 503), which led to the risk
# head; 601-606 were run with it, on a selection whose worlds' facility-shift money had not been
# recomputed with the drift test (a bench bug, fixed); 701-706 were run once with that selection.
# 2026-12-03: the item-evidence terms chosen on 101-112 were reported on 801-806 (a known scheme
# pushed out in one world, the model's order ahead by 0.005 in another); the selection then grew to
# 24 worlds (101-124) and the figures are on 901-906, run once; they showed unbundling and
# duplicates pushed out (three worlds), which led to rule R19 and the rules' head, chosen on
# 101-124 and reported on 1001-1006; a variant (proven claims first in the high band) was then run
# on 1101-1106 and dropped on the selection worlds' top 1% (docs/training.md): the configuration
# is reported on both sets. The proven floor (the money a head rule proves as the least expected
# amount) was designed looking at worlds 1005 and 1103 (why the queue dropped their schemes), so
# it is chosen on 101-124 and reported on 1201-1206. The item and facility-shift weights were then
# chosen again on 101-124 with the floor, a held-out recall of 0.5 in the selection rule and the
# gap as a tie (run after 1201-1206 were seen), so they are reported on 1301-1306.
SELECTION_SEEDS = tuple(range(101, 125))
REPORT_SEEDS = (1301, 1302, 1303, 1304, 1305, 1306)


@dataclass
class WorldDraw:
    seed: int
    claims: int
    months: int = MONTHS
    start: str = START
    schemes: dict[str, float] = field(default_factory=dict)
    scheme_start: dict[str, str] = field(default_factory=dict)
    review_params: dict[str, float] = field(default_factory=dict)
    visits_per_person: float = 1.86
    held_out: str = HELD_OUT

    def simulate_kwargs(self) -> dict:
        d = asdict(self)
        d.pop("held_out")
        return d


def draw_world(seed: int, claims: int | None = None) -> WorldDraw:
    """The world of `seed` (deterministic); `claims` fixes the size (default drawn 30k-50k)."""
    rng = np.random.default_rng([int(seed), 130])
    n = int(claims) if claims else int(rng.integers(30_000, 50_001))
    rates: dict[str, float] = {}
    for name, s in SCHEMES.items():
        if name == HELD_OUT:
            continue
        on = rng.random() >= 0.2  # about one scheme in five does not run in this world
        rates[name] = float(np.clip(s.rate * np.exp(rng.normal(0.0, 0.6)), 0.0, 0.05)) * on
    # the held-out scheme covers most of one or two facilities' claims for three months
    rates[HELD_OUT] = float(rng.uniform(0.02, 0.06))
    starts = {HELD_OUT: CUTOFF}
    running = sorted(k for k, v in rates.items() if v > 0 and k != HELD_OUT)
    for name in rng.choice(running, size=min(3, len(running)), replace=False):
        starts[str(name)] = f"2025-{int(rng.integers(3, 9)):02d}"  # late, but before the cutoff
    review = {
        "base": float(rng.uniform(0.01, 0.04)),
        "cost": float(rng.uniform(0.15, 0.5)),
        "rule": float(rng.uniform(0.3, 0.7)),
        "detection": float(rng.uniform(0.6, 1.3)),
        "lag_floor": int(rng.integers(7, 30)),
        "lag_scale": float(rng.uniform(8.0, 25.0)),
    }
    return WorldDraw(
        seed=int(seed),
        claims=n,
        schemes=rates,
        scheme_start=starts,
        review_params=review,
        visits_per_person=float(rng.uniform(1.3, 2.6)),
    )
