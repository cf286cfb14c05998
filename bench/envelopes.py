"""Synthetic XML 130 envelopes of typical claims (about 15 lines each), for ingest benchmarks."""

from __future__ import annotations

import base64
import gzip
import multiprocessing
import re
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from contract.export import envelope
from contract.schema import CLAIMS


def _claim(i: int, rng: np.random.Generator) -> dict:
    start = datetime(2025, 1, 1) + timedelta(minutes=int(rng.integers(0, 525_600)))
    stay = int(rng.integers(0, 8))
    row = {f.name: None for f in CLAIMS.fields}
    row.update(
        claim_id=f"B{i:09d}",
        seq=1,
        patient_id=f"BN{rng.integers(1e8):08d}",
        patient_name="Nguyễn Văn An",
        national_id=f"0490{rng.integers(1e8):08d}",
        birth_date="198501010000",
        sex=int(rng.integers(1, 3)),
        nationality_code="000",
        ethnicity_code="01",
        address="12 Trần Phú, Hội An",
        residence_province="49",
        card_number=f"DN449{rng.integers(1e10):010d}",
        registered_facility="49001",
        card_valid_from="20250101",
        card_valid_to="20251231",
        visit_reason="sốt, ho",
        primary_icd="J18.9",
        secondary_icd="I10",
        route_code="1.1",
        admitted_at=start,
        discharged_at=start + timedelta(days=stay, hours=2),
        treatment_days=stay + 1,
        outcome=1,
        discharge_type=1,
        total_drugs=210000.0,
        total_supplies=0.0,
        total_cost=1_250_000.0,
        total_insured_cost=1_250_000.0,
        patient_self_pay=0.0,
        patient_copay=250_000.0,
        fund_claimed=1_000_000.0,
        other_sources=0.0,
        fund_claimed_ffs=1_000_000.0,
        settlement_year=2025,
        settlement_month=start.month,
        visit_type="03",
        department_codes="K01",
        facility_id="49001",
        record_number=f"HS{i}",
        signer_id="4901234567",
    )
    return row


def _drug(claim_id: str, j: int, at: datetime) -> dict:
    return dict(
        claim_id=claim_id,
        line_no=j,
        drug_code="40.17",
        cost_group=4,
        drug_name="Amoxicilin",
        unit="viên",
        strength="500mg",
        route="1.01",
        dosage="1 viên x 2 lần [2]",
        registration_number="VD-12345-20",
        tender_info="123/QD;G1;N1;2024",
        scope=1,
        insurance_ratio=100,
        quantity=14.0,
        unit_price=1500.0,
        amount=21000.0,
        insured_amount=21000.0,
        other_sources=0.0,
        benefit_pct=80,
        patient_self_pay=0.0,
        patient_copay=4200.0,
        fund_claimed=16800.0,
        department_code="K01",
        clinician_id="000123/QNA-CCHN",
        ordered_at=at,
        payment_method=1,
        supply_source=1,
        war_wound=0,
    )


def _service(claim_id: str, j: int, at: datetime) -> dict:
    return dict(
        claim_id=claim_id,
        line_no=j,
        service_code="18.0001.0001",
        cost_group=1,
        service_name="Tổng phân tích tế bào máu",
        unit="lần",
        scope=1,
        quantity=1.0,
        unit_price=46_200.0,
        insured_unit_price=46_200.0,
        service_ratio=100,
        insurance_ratio=100,
        amount=46_200.0,
        insured_amount=46_200.0,
        benefit_pct=80,
        other_sources=0.0,
        patient_self_pay=0.0,
        patient_copay=9240.0,
        fund_claimed=36960.0,
        department_code="K01",
        clinician_id="000123/QNA-CCHN",
        performer_id="000456/QNA-CCHN",
        ordered_at=at,
        performed_at=at,
        result_at=at + timedelta(hours=1),
        payment_method=1,
        machine_id="XN.1.49001.SN01",
    )


def write_envelopes(folder: Path, n_claims: int, per_file: int = 1000, seed: int = 0) -> int:
    """Write n_claims dossiers (10 drug + 5 service lines each); returns total bytes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for f, start in enumerate(range(0, n_claims, per_file)):
        dossiers = []
        for i in range(start, min(n_claims, start + per_file)):
            c = _claim(i, rng)
            at = c["admitted_at"] + timedelta(minutes=30)
            dossiers.append(
                {
                    "XML1": [c],
                    "XML2": [_drug(c["claim_id"], j, at) for j in range(1, 11)],
                    "XML3": [_service(c["claim_id"], j, at) for j in range(1, 6)],
                }
            )
        data = envelope("49001", dossiers, datetime(2025, 12, 31))
        (folder / f"batch_{f:05d}.xml").write_bytes(data)
        total += len(data)
    return total


def write_big_envelope(path: Path, target_bytes: int, seed: int = 0) -> int:
    """One GIAMDINHHS file of about target_bytes, written in pieces; returns the claims in it."""
    rng = np.random.default_rng(seed)
    head = (
        b'<?xml version="1.0" encoding="utf-8"?><GIAMDINHHS><THONGTINDONVI><MACSKCB>49001'
        b"</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>20251231</NGAYLAP>"
        b"<SOLUONGHOSO>0</SOLUONGHOSO><DANHSACHHOSO>"
    )
    tail = b"</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>"
    n = 0
    with path.open("wb") as fh:
        fh.write(head)
        written = len(head)
        while written < target_bytes:
            dossiers = []
            for i in range(n, n + 500):
                c = _claim(i, rng)
                at = c["admitted_at"] + timedelta(minutes=30)
                dossiers.append({
                    "XML1": [c],
                    "XML2": [_drug(c["claim_id"], j, at) for j in range(1, 11)],
                    "XML3": [_service(c["claim_id"], j, at) for j in range(1, 6)],
                })  # fmt: skip
            n += 500
            doc = envelope("49001", dossiers, datetime(2025, 12, 31))
            body = doc[doc.index(b"<DANHSACHHOSO>") + 14 : doc.rindex(b"</DANHSACHHOSO>")]
            fh.write(body)
            written += len(body)
        fh.write(tail)
    return n


_CONTENT = re.compile(rb"<NOIDUNGFILE>([^<]*)</NOIDUNGFILE>")
_KEY = b"<MA_LK>B0000"  # write_envelopes' keys: B%09d, so below 100,000 claims B0000 + 5 digits


def tile_envelopes(src: Path, dst: Path, copies: int, gz: bool = False, workers: int = 2) -> int:
    """COPIES renamed copies of SRC's envelopes (write_envelopes, < 100,000 claims) in DST: the
    claim keys of copy c are B{c:04d}xxxxx (every table's MA_LK re-encoded), so the copies are
    distinct claims; much quicker than writing as many claims anew (~170 claims/s). gz: each
    file written gzip-compressed (level 1) as NAME.xml.gz. Returns the bytes written."""
    files = sorted(src.glob("batch_*.xml"))
    dst.mkdir(parents=True, exist_ok=True)
    jobs = [(f, dst, c, gz) for c in range(copies) for f in files]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return sum(pool.imap_unordered(_tile_one, jobs, chunksize=4))


def _tile_one(job: tuple[Path, Path, int, bool]) -> int:
    f, dst, c, gz = job
    new = b"<MA_LK>B%04d" % c

    def renamed(m: re.Match) -> bytes:
        table = base64.b64decode(m.group(1)).replace(_KEY, new)
        return b"<NOIDUNGFILE>" + base64.b64encode(table) + b"</NOIDUNGFILE>"

    data = _CONTENT.sub(renamed, f.read_bytes())
    name = f"c{c:04d}_{f.name}"
    if gz:
        data = gzip.compress(data, compresslevel=1, mtime=0)
        name += ".gz"
    (dst / name).write_bytes(data)
    return len(data)
