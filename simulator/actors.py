"""The actors of the world: one province's facilities, its insured people and their clinicians.

Sizes follow Quang Nam (reference/published-figures.md): about 82,000 insured people per district,
a commune station per ~6,000, a provincial general hospital, a central hospital, private clinics
and hospitals; the world is scaled down to the number of claims asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import catalogue as cat
from simulator.frame import Cols

PROVINCE = "49"
PROVINCE_NAME = "Quảng Nam"
DISTRICT_NAMES = (
    "Tam Kỳ",
    "Hội An",
    "Điện Bàn",
    "Duy Xuyên",
    "Đại Lộc",
    "Quế Sơn",
    "Thăng Bình",
    "Núi Thành",
    "Phú Ninh",
    "Tiên Phước",
    "Hiệp Đức",
    "Nông Sơn",
    "Bắc Trà My",
    "Nam Trà My",
    "Phước Sơn",
    "Nam Giang",
    "Đông Giang",
    "Tây Giang",
)
_COMMUNE_A = (
    "Tam",
    "Duy",
    "Điện",
    "Đại",
    "Quế",
    "Bình",
    "Tam",
    "Phú",
    "Tiên",
    "Hòa",
    "Sông",
    "Trà",
    "Phước",
    "Thăng",
    "Cẩm",
    "Xuân",
)
_COMMUNE_B = (
    "Hòa",
    "An",
    "Phước",
    "Thành",
    "Hiệp",
    "Lộc",
    "Minh",
    "Trung",
    "Thạnh",
    "Nghĩa",
    "Hải",
    "Sơn",
    "Tân",
    "Quang",
    "Phong",
    "Mỹ",
    "Long",
    "Xuân",
)
_PRIVATE = (
    "Thiện Nhân",
    "Bình An",
    "Hòa Bình",
    "Minh Thiện",
    "Phúc Khang",
    "Vĩnh Đức",
    "Thái Bình Dương",
    "Hoàn Mỹ",
    "Quảng Đà",
    "Tâm Trí",
    "An Phước",
    "Hưng Thịnh",
)

# Beneficiary groups (letters, benefit digit); benefit %: 1, 2, 5 -> 100; 3 -> 95; 4 -> 80.
GROUPS = (
    ("TE", 1),
    ("HS", 4),
    ("DN", 4),
    ("HC", 4),
    ("GD", 4),
    ("HN", 2),
    ("CN", 3),
    ("DT", 2),
    ("HT", 3),
    ("CC", 1),
    ("BT", 2),
)
GROUP_LETTERS = np.array([g for g, _ in GROUPS])
GROUP_DIGIT = np.array([d for _, d in GROUPS], dtype=np.int8)
BENEFIT_PCT = {1: 100, 2: 100, 3: 95, 4: 80, 5: 100}
# Group mix per age band (0-5, 6-15, 16-39, 40-59, 60+), columns in GROUPS order.
_GROUP_MIX = np.array(
    [
        [1.00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0.70, 0, 0, 0.12, 0.08, 0.03, 0.07, 0, 0, 0],
        [0, 0.12, 0.40, 0.08, 0.24, 0.06, 0.03, 0.06, 0, 0.01, 0],
        [0, 0, 0.38, 0.10, 0.30, 0.07, 0.04, 0.07, 0.02, 0.02, 0],
        [0, 0, 0.02, 0.01, 0.30, 0.08, 0.03, 0.07, 0.32, 0.05, 0.12],
    ]
)
# Age pyramid: (lower age, upper age, share).
PYRAMID = (
    (0, 5, 0.075),
    (5, 15, 0.15),
    (15, 25, 0.14),
    (25, 35, 0.16),
    (35, 45, 0.15),
    (45, 55, 0.12),
    (55, 65, 0.10),
    (65, 75, 0.065),
    (75, 95, 0.04),
)

PEOPLE_PER_DISTRICT = 82_000
PEOPLE_PER_COMMUNE = 6_000


@dataclass
class World:
    facilities: Cols  # level, district, commune, beds, weight, private
    facility_code: np.ndarray  # str
    facility_name: np.ndarray  # str
    district_hospital: np.ndarray  # district -> facility index
    commune_station: np.ndarray  # commune -> facility index
    commune_district: np.ndarray
    district_names: tuple[str, ...]
    commune_names: np.ndarray
    people: Cols
    n_people: int

    def facilities_of(self, level: int) -> np.ndarray:
        return np.flatnonzero(self.facilities["level"] == level)


def facility_code(seq: np.ndarray) -> np.ndarray:
    """5-character MA_CSKCB: province + 3 digits (base 36 once the digits run out)."""
    out = []
    for s in seq.tolist():
        if s < 1000:
            out.append(f"{PROVINCE}{s:03d}")
        else:
            s -= 1000
            digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            out.append(
                PROVINCE
                + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[s // 1296 % 26]
                + digits[s // 36 % 36]
                + digits[s % 36]
            )
    return np.array(out)


def build_world(n_people: int, ref_day: int, rng: np.random.Generator) -> World:
    """Facilities and insured people; ages are as of ref_day (the first simulated day)."""
    n_people = max(int(n_people), 500)
    n_districts = int(np.clip(round(n_people / PEOPLE_PER_DISTRICT), 2, len(DISTRICT_NAMES)))
    district_pop = rng.dirichlet(np.full(n_districts, 6.0)) * n_people
    per_district = np.maximum(2, np.round(district_pop / PEOPLE_PER_COMMUNE)).astype(int)
    commune_district = np.repeat(np.arange(n_districts), per_district)
    n_communes = len(commune_district)
    a = rng.integers(0, len(_COMMUNE_A), n_communes)
    b = rng.integers(0, len(_COMMUNE_B), n_communes)
    commune_names = np.array(
        [f"{_COMMUNE_A[i]} {_COMMUNE_B[j]}" for i, j in zip(a, b, strict=True)]
    )

    # --- facilities, in code order: central, provincial, district, commune, private
    n_prov = 1 if n_people < 200_000 else 3
    n_pk = max(1, round(n_people / 50_000))
    n_ph = max(1, round(n_people / 250_000))
    level = np.concatenate(
        [
            [cat.TW],
            np.full(n_prov, cat.T),
            np.full(n_districts, cat.H),
            np.full(n_communes, cat.X),
            np.full(n_pk, cat.PK),
            np.full(n_ph, cat.PH),
        ]
    )
    nf = len(level)
    district = np.full(nf, -1)
    commune = np.full(nf, -1)
    h0 = 1 + n_prov
    district[h0 : h0 + n_districts] = np.arange(n_districts)
    x0 = h0 + n_districts
    commune[x0 : x0 + n_communes] = np.arange(n_communes)
    district[x0 : x0 + n_communes] = commune_district
    p0 = x0 + n_communes
    district[p0:] = rng.integers(0, n_districts, nf - p0)
    beds = np.zeros(nf, dtype=np.int64)
    beds[0] = 700
    beds[1 : 1 + n_prov] = [1000, 500, 300][:n_prov]
    beds[h0 : h0 + n_districts] = np.maximum(60, np.round(district_pop * 1.5 / 1000)).astype(int)
    beds[x0 : x0 + n_communes] = 5
    beds[p0 : p0 + n_pk] = rng.integers(3, 10, n_pk)
    beds[p0 + n_pk :] = rng.integers(50, 200, n_ph)
    weight = beds.astype(float)
    weight[p0 : p0 + n_pk] = rng.lognormal(0, 0.6, n_pk)
    private = level >= cat.PK
    names = ["Bệnh viện Trung ương Quảng Nam"]
    names += [
        "Bệnh viện Đa khoa tỉnh Quảng Nam",
        "Bệnh viện Sản - Nhi tỉnh Quảng Nam",
        "Bệnh viện Đa khoa khu vực miền núi phía Bắc Quảng Nam",
    ][:n_prov]
    dn = [DISTRICT_NAMES[i] for i in range(n_districts)]
    names += [
        f"Trung tâm Y tế {'thành phố' if i < 2 else 'huyện'} {dn[i]}" for i in range(n_districts)
    ]
    names += [f"Trạm Y tế xã {commune_names[i]}" for i in range(n_communes)]
    names += [
        f"Phòng khám đa khoa {_PRIVATE[i % len(_PRIVATE)]}"
        + (f" {i // len(_PRIVATE) + 1}" if i >= len(_PRIVATE) else "")
        for i in range(n_pk)
    ]
    names += [
        f"Bệnh viện đa khoa tư nhân {_PRIVATE[-1 - i % len(_PRIVATE)]}"
        + (f" {i // len(_PRIVATE) + 1}" if i >= len(_PRIVATE) else "")
        for i in range(n_ph)
    ]
    facilities = Cols(
        level=level.astype(np.int8),
        district=district,
        commune=commune,
        beds=beds,
        weight=weight,
        private=private,
    )

    # --- people
    P = n_people
    commune_size = rng.lognormal(0, 0.35, n_communes)
    # communes share their district's population
    share = commune_size / np.bincount(commune_district, commune_size)[commune_district]
    share = share * district_pop[commune_district] / n_people
    person_commune = rng.choice(n_communes, P, p=share / share.sum())
    pyr = np.array(PYRAMID, dtype=float)
    band = rng.choice(len(pyr), P, p=pyr[:, 2] / pyr[:, 2].sum())
    age_years = pyr[band, 0] + rng.random(P) * (pyr[band, 1] - pyr[band, 0])
    sex = np.where(rng.random(P) < 0.495, 1, 2).astype(np.int8)
    age_band = np.searchsorted(cat.AGE_BANDS, age_years, side="right") - 1
    group = np.empty(P, dtype=np.int8)
    for b in range(5):
        idx = np.flatnonzero(age_band == b)
        group[idx] = rng.choice(len(GROUPS), len(idx), p=_GROUP_MIX[b] / _GROUP_MIX[b].sum())
    # 10-digit social-insurance number: province + an affine permutation (unique, looks random)
    offset = int(rng.integers(0, 10**8))
    si = (np.arange(P, dtype=np.int64) * 48_271 + offset) % 10**8 + int(PROVINCE) * 10**8

    # registered primary-care facility
    u = rng.random(P)
    station = np.full(n_communes, -1)
    station[commune[x0 : x0 + n_communes]] = np.arange(x0, x0 + n_communes)
    dh = np.arange(h0, h0 + n_districts)
    reg = station[person_commune].copy()
    pd_ = commune_district[person_commune]
    to_h = (u >= 0.55) & (u < 0.85)
    reg[to_h] = dh[pd_[to_h]]
    to_pk = (u >= 0.85) & (u < 0.95)
    pk_ids = np.arange(p0, p0 + n_pk)
    reg[to_pk] = rng.choice(pk_ids, to_pk.sum(), p=weight[pk_ids] / weight[pk_ids].sum())
    to_t = u >= 0.95
    reg[to_t] = rng.integers(1, 1 + n_prov, to_t.sum())

    # chronic programmes: at most one per person, plus one comorbid code for some
    chronic = np.full(P, -1, dtype=np.int16)
    for icd, (rate, _vt, _s) in cat.CHRONIC.items():
        d = cat.DISEASE[icd]
        ages = cat.DISEASE_ARRAYS["ages"][d]
        norm = ages[3:5].mean() if ages[3:5].mean() > 0 else 1.0
        p = rate * ages[age_band] / norm
        mb = cat.DISEASE_ARRAYS["male_bias"][d]
        p = p * np.where(sex == 1, 2 * mb / (1 + mb), 2 / (1 + mb))
        take = (chronic < 0) & (rng.random(P) < p)
        chronic[take] = d
    comorbid = np.full(P, -1, dtype=np.int16)
    i10, e11 = cat.DISEASE["I10"], cat.DISEASE["E11.9"]
    both = rng.random(P) < 0.25
    comorbid[(chronic == i10) & both] = e11
    comorbid[(chronic == e11) & (rng.random(P) < 0.45)] = i10
    comorbid[(chronic == cat.DISEASE["N18.5"])] = i10

    birth_day = ref_day - np.round(age_years * 365.25).astype(np.int64)
    people = Cols(
        age_years=age_years,
        age_band=age_band.astype(np.int8),
        sex=sex,
        birth_day=birth_day,
        commune=person_commune,
        district=pd_,
        group=group,
        si=si,
        registered=reg,
        chronic=chronic,
        comorbid=comorbid,
        card_anchor=rng.integers(0, 365, P),
        ethnic=np.where(rng.random(P) < 0.92, 1, rng.choice([2, 3, 4, 5, 21, 25, 32], P)),
        area=np.where(GROUP_LETTERS[group] == "DT", rng.integers(1, 4, P), 0),
        death_day=np.full(P, np.iinfo(np.int64).max),
    )
    return World(
        facilities=facilities,
        facility_code=facility_code(np.arange(1, nf + 1)),
        facility_name=np.array(names),
        district_hospital=dh,
        commune_station=station,
        commune_district=commune_district,
        district_names=tuple(dn),
        commune_names=commune_names,
        people=people,
        n_people=P,
    )


def card_percent(people: Cols) -> np.ndarray:
    digit = GROUP_DIGIT[people["group"]]
    return np.select([digit == 3, digit == 4], [95, 80], 100).astype(np.int16)
