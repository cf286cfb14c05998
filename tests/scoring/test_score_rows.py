"""The online hot path without a DataFrame: `score_rows` over feature rows (ids + a float matrix,
features.online_state.rows.FeatureRows) gives exactly `score`'s answer over the frame those rows
stand for, reasons included (their values keep the frame's types)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.assembly import ID_COLUMNS
from features.online_state.rows import FeatureRows
from scoring.bundle import anomaly_percentile as sklearn_percentile
from scoring.columns import FloatColumns
from scoring.forest import anomaly_percentile
from scoring.scorer import score, score_rows


@pytest.fixture(scope="module")
def bundle_frame(scored_world, mlflow_store):
    from serving.batch import resolve_bundle

    bundle, _ = resolve_bundle(scored_world["version"], **mlflow_store)
    return bundle, scored_world["frame"].tail(600).reset_index(drop=True)


def _rows(frame: pd.DataFrame) -> FeatureRows:
    """Rows as the online state gives them: no frame kept, integer columns missing as NaN
    (frame() and matrix() give 0, as finish_frame's casts do)."""
    values = frame[list(FeatureRows.names)].to_numpy(dtype="float64").copy()
    ints = [j for j, c in enumerate(FeatureRows.names) if frame[c].dtype.kind in "iub"]
    values[:, ints] = np.where(values[:, ints] == 0, np.nan, values[:, ints])
    return FeatureRows(frame[list(ID_COLUMNS)].to_dict("records"), values)


def test_score_rows_is_score(bundle_frame):
    bundle, frame = bundle_frame
    explained = 0
    for part in (frame, frame.head(1), frame.iloc[100:103], frame.head(300)):
        part = part.reset_index(drop=True)
        want = score(bundle, part, model_version="7")
        got = score_rows(bundle, _rows(part), model_version="7")
        assert list(got) == list(want.columns)
        for c in want.columns:
            if c in ("scored_at", "model_version"):  # one stamp for the request
                assert isinstance(got[c], str) and (got[c] == "7" or c == "scored_at")
                continue
            w = want[c].to_numpy()
            if w.dtype.kind == "f":
                np.testing.assert_array_equal(np.asarray(got[c], dtype="float64"), w, err_msg=c)
            else:
                assert list(got[c]) == list(w), c
        # as the API sends them: 3 and 3.0 are different JSON (ints stay ints, missing is null)
        assert json.dumps(list(got["reasons"])) == json.dumps(list(want["reasons"]))
        explained += sum(bool(r) for r in got["reasons"])
    assert explained > 0  # reasons compared, not only empty lists


def test_the_rows_matrix_is_the_frames(bundle_frame):
    _, frame = bundle_frame
    rows = _rows(frame)
    names = list(FeatureRows.names)
    np.testing.assert_array_equal(rows.matrix(), frame[names].to_numpy(dtype="float64"))
    pd.testing.assert_frame_equal(rows.frame()[names], frame[names])
    sub = rows.take([5, 2])
    pd.testing.assert_frame_equal(
        sub.frame()[names], frame[names].iloc[[5, 2]].reset_index(drop=True)
    )


def test_the_anomaly_percentile_from_a_matrix_is_sklearns(bundle_frame):
    bundle, frame = bundle_frame
    rows = _rows(frame)  # 600 rows: sklearn's walk on the same matrix
    cols = FloatColumns.from_matrix(rows.names, rows.matrix())
    np.testing.assert_array_equal(
        anomaly_percentile(bundle, None, cols), sklearn_percentile(bundle, frame)
    )


def test_a_rows_value_is_its_frames(bundle_frame):
    """The reasons read a row's values one by one (FeatureRows.value): each as its frame holds
    it, type included (an int column's 3 is not 3.0 in the API's JSON; missing floats NaN)."""
    _, frame = bundle_frame
    for make in (_rows, FeatureRows.from_frame):
        rows, want = make(frame.head(60)), make(frame.head(60)).frame()  # frame() keeps its frame
        for name in FeatureRows.names:
            got = [rows.value(i, name) for i in range(len(rows))]
            assert json.dumps(got) == json.dumps(want[name].tolist()), name


def test_a_claims_scores_are_its_own_whatever_is_scored_beside_it(bundle_frame):
    """serving.combine scores concurrent requests together and hands each its rows' part: that
    part (take_scored) must be what score_rows gives those rows alone, reasons included."""
    from scoring.scorer import take_scored

    bundle, frame = bundle_frame
    rows = _rows(frame.head(300))
    together = score_rows(bundle, rows, model_version="7")
    assert len(set(together["band"])) > 1  # bands and so reasons and ranks differ among them
    for idx in ([0], [5, 17, 299], list(range(0, 300, 7)), [250, 3, 120]):
        want = score_rows(bundle, rows.take(idx), model_version="7")
        got = take_scored(together, idx)
        assert list(got) == list(want)
        for c in want:
            if c == "scored_at":
                continue
            if isinstance(want[c], np.ndarray) and want[c].dtype.kind != "O":
                np.testing.assert_array_equal(got[c], want[c], err_msg=c)
            elif isinstance(want[c], str):
                assert got[c] == want[c], c
            else:  # reasons and rule hits, as the API sends them
                assert json.dumps(list(got[c])) == json.dumps(list(want[c])), c
