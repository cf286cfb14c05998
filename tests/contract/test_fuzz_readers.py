"""Hypothesis fuzzing of the readers (issue 13): mutated XML 130 envelopes and mutated tabular
inputs. Ingest never raises anything but the documented whole-input error (ContractError: a
tabular table without a required column); every record read is written or rejected, every
rejection carries a reason (field-level where a field is at fault), a refused file is named in
the report, and the records the mutation did not touch are kept beside the bad ones.
Fixed seed (derandomize), bounded examples: about half a minute on 2 cores."""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from factories import claim, dossier, drug, raw_envelope, service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.ingest import ContractError, Limits, ingest
from contract.schema import CLAIMS, DRUG_LINES, SERVICE_LINES

KEY = "fuzz-linkage-key"
LIMITS = Limits(workers=1, max_field_chars=2_000, max_depth=32)
FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IDS = ["G0", "G1", "G2"]  # the mutations that stay inside one dossier touch G1 only
TABLES = {"claims": CLAIMS, "drug_lines": DRUG_LINES, "service_lines": SERVICE_LINES}
ENVELOPE_FIELDS = {"NOIDUNGFILE", "LOAIHOSO", "TONG_HOP", "HOSO", ""}
GARBAGE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.-;e", max_size=20),
    st.sampled_from(
        ["", " ", "NaN", "null", "-1", "9" * 40, "1e308", "2099-13-45", "\x00", "x" * 3000]
    ),
)


def _ingest(src: Path, out: Path):
    report = ingest(src, out, limits=LIMITS, linkage_key=KEY)
    written = pd.read_parquet(out / "claims.parquet") if (out / "claims.parquet").exists() else None
    rej = out / "rejections.parquet"
    rejections = pd.read_parquet(rej) if rej.exists() else pd.DataFrame(columns=["table"])
    return report, set(written["claim_id"]) if written is not None else set(), rejections


def _accounted(report, rejections) -> None:
    """Every record read was written or rejected, each rejection with a reason."""
    for table in TABLES:
        assert report.read[table] == report.written[table] + report.rejected[table], table
        rows = rejections[rejections["table"] == table]
        if report.rejected[table]:
            assert len(rows), f"{table}: rejected records missing from the report"
    if len(rejections):
        assert rejections["error"].astype(str).str.strip().ne("").all()
        for table, rows in rejections.groupby("table"):
            if table in TABLES:
                known = {f.xml for f in TABLES[table].fields} | ENVELOPE_FIELDS
                assert set(rows["field"]) <= known, set(rows["field"]) - known
    if report.file_errors:  # a refused file is in the report, with its reason
        files = rejections[rejections["table"] == "file"]
        assert len(files) == len(report.file_errors)
        assert all(msg.strip() for _f, msg in report.file_errors)


# -- XML 130 envelopes ----------------------------------------------------------------------

BASE = raw_envelope([dossier(i) for i in IDS])
HOSO = [m.span() for m in re.finditer(rb"<HOSO>.*?</HOSO>", BASE, re.S)]
FILES = [m.span() for m in re.finditer(rb"<FILEHOSO>.*?</FILEHOSO>", BASE[slice(*HOSO[1])], re.S)]


def _in_g1(mutate):
    """Apply mutate(bytes of G1's dossier) -> bytes, the other dossiers left as they were."""
    a, b = HOSO[1]
    return BASE[:a] + mutate(BASE[a:b]) + BASE[b:]


def _table_doc(loai: str, value_over: dict) -> str:
    """G1's table LOAI as base64, with some fields set to raw (possibly bad) values."""
    rows = dossier("G1")[loai]
    rows[0].update(value_over)
    env = raw_envelope([{loai: rows}])
    return re.search(rb"<NOIDUNGFILE>(.*?)</NOIDUNGFILE>", env).group(1).decode()


@st.composite
def local_mutation(draw):
    """A mutation inside G1's dossier; returns (envelope, field that should be blamed or None)."""
    kind = draw(
        st.sampled_from(
            ["delete_file", "duplicate_file", "bad_base64", "garbage_field", "flip_inner",
             "deep", "huge_attribute", "empty_content", "unknown_table"]
        )
    )  # fmt: skip
    i = draw(st.integers(0, len(FILES) - 1))
    fa, fb = FILES[i]
    if kind == "delete_file":
        return _in_g1(lambda h: h[:fa] + h[fb:]), None
    if kind == "duplicate_file":
        return _in_g1(lambda h: h[:fb] + h[fa:fb] + h[fb:]), None
    if kind == "bad_base64":
        junk = draw(st.text(alphabet="ABCD=+/!*@ \n-_", min_size=1, max_size=60))
        return _in_g1(lambda h: re.sub(rb"<NOIDUNGFILE>[^<]*", b"<NOIDUNGFILE>" + junk.encode(),
                                       h, count=1)), None  # fmt: skip
    if kind == "garbage_field":
        loai = draw(st.sampled_from(["XML1", "XML2", "XML3"]))
        table = {"XML1": CLAIMS, "XML2": DRUG_LINES, "XML3": SERVICE_LINES}[loai]
        name = draw(st.sampled_from([f.xml for f in table.fields if f.xml and f.xml != "MA_LK"]))
        value = draw(GARBAGE)
        doc = _table_doc(loai, {name: value})
        pattern = rf"(<LOAIHOSO>{loai}</LOAIHOSO><NOIDUNGFILE>)[^<]*".encode()
        return _in_g1(lambda h: re.sub(pattern, rb"\g<1>" + doc.encode(), h, count=1)), name
    if kind == "flip_inner":  # flip bytes of a decoded table, then encode it again
        m = list(re.finditer(rb"<NOIDUNGFILE>([^<]*)", BASE[slice(*HOSO[1])]))[i]
        inner = bytearray(base64.b64decode(m.group(1)))
        for _ in range(draw(st.integers(1, 5))):
            inner[draw(st.integers(0, len(inner) - 1))] = draw(st.integers(0, 255))
        doc = base64.b64encode(bytes(inner))
        return _in_g1(lambda h: h[: m.start(1)] + doc + h[m.end(1) :]), None
    if kind == "deep":
        depth = draw(st.integers(20, 400))
        return _in_g1(lambda h: h[:fa] + b"<X>" * depth + b"</X>" * depth + h[fa:]), None
    if kind == "huge_attribute":
        size = draw(st.sampled_from([10, 70_000, 11_000_000]))
        return _in_g1(lambda h: h.replace(b"<HOSO>", b'<HOSO a="' + b"x" * size + b'">', 1)), None
    if kind == "empty_content":
        return _in_g1(lambda h: re.sub(rb"<NOIDUNGFILE>[^<]*", b"<NOIDUNGFILE>", h, count=1)), None
    return _in_g1(lambda h: h.replace(b"<LOAIHOSO>XML2<", b"<LOAIHOSO>XML99<", 1)), None


@st.composite
def global_mutation(draw):
    kind = draw(st.sampled_from(["truncate", "flip", "dtd", "entity", "delete_hoso", "dup_hoso"]))
    data = bytearray(BASE)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "dtd":
        return BASE.replace(b"<GIAMDINHHS>", b'<!DOCTYPE GIAMDINHHS [<!ENTITY e "x">]><GIAMDINHHS>')
    if kind == "entity":
        return BASE.replace(b"<MACSKCB>49001", b"<MACSKCB>&e;49001", 1)
    a, b = HOSO[draw(st.integers(0, 2))]
    if kind == "delete_hoso":
        return BASE[:a] + BASE[b:]
    return BASE[:b] + BASE[a:b] + BASE[b:]


@FUZZ
@given(local_mutation())
def test_a_mutated_dossier_is_rejected_and_the_others_are_kept(mutation):
    data, blamed = mutation
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "e.xml").write_bytes(data)
        report, written, rej = _ingest(Path(tmp) / "e.xml", Path(tmp) / "out")
    _accounted(report, rej)
    assert "G0" in written  # before the mutation: always read and kept
    if not report.file_errors:  # the file was read to its end: G2 too
        assert "G2" in written
    if "G1" not in written and not report.file_errors:
        mine = rej[rej["claim_id"] == "G1"]
        assert len(mine), "G1 is neither written nor rejected"
        if blamed is not None:  # a bad value in a field: the field is named, or the table
            # holding it could not be read at all (a control character): NOIDUNGFILE
            unread = rej[(rej["field"] == "NOIDUNGFILE") & rej["record"].str.match("HOSO 2/")]
            assert blamed in set(mine["field"]) or len(unread), rej[["record", "field", "error"]]


@FUZZ
@given(global_mutation())
def test_a_mutated_envelope_never_raises(data):
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "e.xml").write_bytes(data)
        report, written, rej = _ingest(Path(tmp) / "e.xml", Path(tmp) / "out")
    _accounted(report, rej)
    assert written <= set(IDS)
    if not report.file_errors:  # read to its end: every dossier is accounted for
        assert report.read["claims"] >= 1 or not rej.empty or data.count(b"<HOSO>") == 0


# -- tabular inputs ---------------------------------------------------------------------------

N = 4


def _frames() -> dict[str, pd.DataFrame]:
    ids = [f"T{i}" for i in range(N)]
    return {
        "xml1": pd.DataFrame([claim(i) for i in ids]),
        "xml2": pd.DataFrame([drug(i, 1) for i in ids]),
        "xml3": pd.DataFrame([service(i, 1) for i in ids]),
    }


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**63 - 1),
    st.just(10**30),
)
CELL = st.one_of(GARBAGE, NUMBERS, st.none(), st.booleans())


@st.composite
def tabular_mutation(draw):
    """(frames, format, blamed (stem, row, column) or None, dropped required column or None)."""
    frames = _frames()
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    stem = draw(st.sampled_from(list(frames)))
    df = frames[stem]
    col = draw(st.sampled_from(list(df.columns)))
    kind = draw(st.sampled_from(["cell", "cell", "column_type", "drop", "extra", "nan_rows"]))
    table = {"xml1": CLAIMS, "xml2": DRUG_LINES, "xml3": SERVICE_LINES}[stem]
    if kind == "cell":
        row = draw(st.integers(0, N - 1))
        df[col] = df[col].astype(object)
        df.at[row, col] = draw(CELL)
        return frames, fmt, (stem, row, col), None
    if kind == "column_type":
        values = draw(st.sampled_from([np.arange(N) * 10**12, np.full(N, np.nan), [True] * N,
                                       np.linspace(-1e300, 1e300, N)]))  # fmt: skip
        df[col] = values
        return frames, fmt, None, None
    if kind == "drop":
        required = col in {f.xml for f in table.required}
        frames[stem] = df.drop(columns=[col])
        return frames, fmt, None, col if required else None
    if kind == "extra":
        df[draw(st.sampled_from(["EXTRA", "ma_lk ", "x" * 300]))] = draw(GARBAGE)
        return frames, fmt, None, None
    rows = draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=N, unique=True))
    df[col] = df[col].astype(object)
    df.loc[rows, col] = np.nan
    return frames, fmt, None, None


def _write(folder: Path, frames: dict[str, pd.DataFrame], fmt: str) -> None:
    folder.mkdir()
    for stem, df in frames.items():
        if fmt == "csv":
            df.to_csv(folder / f"{stem}.csv", index=False)
            continue
        df = df.copy()
        for c in df.columns:  # parquet needs one type per column: mixed ones become text
            if df[c].dtype == object and df[c].dropna().map(type).nunique() > 1:
                df[c] = df[c].map(lambda v: v if v is None else str(v))
        df.to_parquet(folder / f"{stem}.parquet", index=False)


@FUZZ
@given(tabular_mutation())
def test_a_mutated_table_is_rejected_record_by_record(mutation):
    frames, fmt, blamed, dropped = mutation
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp) / "in", frames, fmt)
        try:
            report, written, rej = _ingest(Path(tmp) / "in", Path(tmp) / "out")
        except ContractError as e:  # the documented whole-input error: a required column missing
            assert dropped is not None and dropped in str(e), e
            return
    assert dropped is None, f"a table without its required column {dropped} was accepted"
    _accounted(report, rej)
    ids = {f"T{i}" for i in range(N)}
    assert written <= ids
    if blamed is not None:
        stem, row, col = blamed
        others = ids - {f"T{row}"}
        if stem != "xml1" or col != "MA_LK":  # the key itself: the record may join no claim
            assert others <= written, others - written
        if f"T{row}" not in written and col != "MA_LK":
            mine = rej[rej["claim_id"].astype(str) == f"T{row}"]
            assert len(mine), f"T{row} is neither written nor rejected"
            table = {"xml1": "claims", "xml2": "drug_lines", "xml3": "service_lines"}[stem]
            own = mine[mine["table"] == table]
            assert col in set(own["field"]), own[["table", "field", "error"]]
