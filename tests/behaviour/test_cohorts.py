"""Retention cohorts (behaviour.analytics.cohorts): every mode combination against a per-user
reference with Python dates (hypothesis), and the CDNOW purchase log against pandas. No DB."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviour.analytics.cohorts import (
    period_index,
    period_start,
    repeat_purchase_retention,
    retention,
)
from events.frame import US_PER_DAY, UserEvents

ROOT = Path(__file__).resolve().parents[2]
HOUR = US_PER_DAY // 24
T0 = int(datetime(2025, 12, 20, tzinfo=UTC).timestamp()) * 1_000_000
NAMES = ("a", "b", "c")


def make_ue(rows: list[tuple[int, int, int]], signup: list[int]) -> UserEvents:
    n = len(signup)
    user = np.array([r[0] for r in rows], dtype=np.int32)
    time = np.array([r[1] for r in rows], dtype=np.int64)
    event = np.array([r[2] for r in rows], dtype=np.int32)
    order = np.lexsort((time, user))
    return UserEvents(user_ids=np.array([f"u{i}" for i in range(n)], dtype=object),
                      user=user[order], time=time[order], event=event[order], event_names=NAMES,
                      revenue=np.zeros(len(rows)), cost=np.zeros(len(rows)),
                      signup=np.array(signup, dtype=np.int64),
                      attributes=pd.DataFrame(index=pd.RangeIndex(n)))


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def ref_period(us: int, period: str) -> tuple[int, int] | int:
    d = _dt(us)
    if period == "month":
        return d.year * 12 + d.month - 1
    monday = (d - timedelta(days=d.weekday())).date()
    return (monday - date(1970, 1, 5)).days // 7  # weeks since a Monday


def reference(ue: UserEvents, as_of: int, cohort_by: str, period: str, mode: str, on: str,
              users: np.ndarray | None, returns: set[int] | None, max_periods: int
              ) -> dict[tuple[int, int], int]:
    """{(cohort period, k): users counted}, plus (cohort, -1): size. Plain loops."""
    out: dict[tuple[int, int], int] = {}
    for u in range(ue.n_users):
        evs = [(int(ue.time[i]), int(ue.event[i])) for i in range(ue.starts[u], ue.starts[u + 1])]
        if cohort_by == "signup":
            anchor = int(ue.signup[u])
        else:
            if not evs:
                continue
            anchor = evs[0][0]
        if anchor > as_of or (users is not None and not users[u]):
            continue
        c = ref_period(anchor, period)
        out[(c, -1)] = out.get((c, -1), 0) + 1
        periods = sorted({ref_period(t, period) - c for t, e in evs
                          if anchor <= t <= as_of and (returns is None or e in returns)})
        periods = [k for k in periods if k < max_periods]
        if mode == "recurring":
            counted = periods if on == "on" else (
                list(range(max(periods) + 1)) if periods else [])
        else:
            later = [k for k in periods if k >= 1]
            f = later[0] if later else None
            counted = [0] + ([] if f is None else [f] if on == "on" else list(range(1, f + 1)))
        for k in counted:
            out[(c, k)] = out.get((c, k), 0) + 1
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), cohort_by=st.sampled_from(["signup", "first_event"]),
       period=st.sampled_from(["week", "month"]), mode=st.sampled_from(["recurring", "first_time"]),
       on=st.sampled_from(["on", "on_or_after"]), scoped=st.booleans(), only_b=st.booleans(),
       max_periods=st.sampled_from([2, 5, 12]))
def test_retention_matches_reference(data, cohort_by, period, mode, on, scoped, only_b,
                                     max_periods):
    n = data.draw(st.integers(1, 6))
    step = 20 * HOUR  # crosses week and month boundaries at odd hours
    signup = [T0 + data.draw(st.integers(0, 60)) * step for _ in range(n)]
    rows = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(-5, 120),
                                        st.integers(0, 2)), max_size=40))
    rows = [(u, T0 + h * step, e) for u, h, e in rows]
    ue = make_ue(rows, signup)
    as_of = T0 + data.draw(st.integers(20, 130)) * step
    users = np.arange(n) % 2 == 1 if scoped else None
    returns = ["b"] if only_b else None
    table = retention(ue, as_of_us=as_of, cohort_by=cohort_by, period=period, mode=mode,
                      return_on=on, users=users, return_events=returns, max_periods=max_periods)
    ref = reference(ue, as_of, cohort_by, period, mode, on, users, {1} if only_b else None,
                    max_periods)
    got: dict[tuple[int, int], int] = {}
    for start, size, row in zip(table.cohort_starts_us, table.sizes, table.counts, strict=True):
        c = ref_period(start, period)
        got[(c, -1)] = size
        for k, v in enumerate(row):
            if v:
                got[(c, k)] = int(v)
    assert got == ref
    # Average: size-weighted over complete cells.
    for k in range(table.n_periods):
        rows_k = table.complete[:, k]
        den = int(np.array(table.sizes)[rows_k].sum())
        assert table.average_users[k] == den
        if den:
            assert table.average[k] == pytest.approx(table.counts[rows_k, k].sum() / den)
    json.dumps(table.to_dict())


def test_period_helpers_round_trip():
    t = np.array([T0, T0 + 3 * US_PER_DAY + 5, T0 + 40 * US_PER_DAY], dtype=np.int64)
    for period in ("week", "month"):
        idx = period_index(t, period)
        assert (period_start(idx, period) <= t).all()
        assert (period_start(idx + 1, period) > t).all()
        for v, i in zip(t, idx, strict=True):
            assert _dt(period_start(np.array([i]), period)[0]).hour == 0
            assert ref_period(int(v), period) - ref_period(int(period_start(np.array([i]),
                                                                            period)[0]),
                                                           period) == 0
    monday = _dt(period_start(period_index(t, "week"), "week")[0])
    assert monday.weekday() == 0


def test_partial_periods_are_marked():
    signup = [T0, T0 + 10 * US_PER_DAY]
    rows = [(0, T0, 0), (0, T0 + 8 * US_PER_DAY, 0), (1, T0 + 10 * US_PER_DAY, 0)]
    ue = make_ue(rows, signup)
    as_of = T0 + 12 * US_PER_DAY
    table = retention(ue, as_of_us=as_of, period="week")
    assert table.sizes == (1, 1)
    assert not table.complete[-1, 0]  # the second user's first week is still running
    assert np.isnan(table.shares[-1, -1])
    assert table.average[0] == 1.0 and table.average_users[0] == 1


# ----------------------------------------------------------------------------- CDNOW
def _cdnow_path() -> Path:
    script = ROOT / "scripts" / "fetch_cdnow.py"
    spec = importlib.util.spec_from_file_location("fetch_cdnow", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ensure_cdnow()


def _pandas_monthly(log: pd.DataFrame) -> pd.DataFrame:
    """Repeat-purchase cohorts the obvious pandas way: distinct customers per (cohort, k)."""
    month = log["date"].dt.year * 12 + log["date"].dt.month - 1
    first = month.groupby(log["customer"]).transform("min")
    frame = pd.DataFrame({"cohort": first, "k": month - first, "customer": log["customer"]})
    return frame.groupby(["cohort", "k"])["customer"].nunique().unstack(fill_value=0)


def _check_against_pandas(log: pd.DataFrame) -> None:
    t = log["date"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    as_of = int(t.max())
    table = repeat_purchase_retention(log["customer"].to_numpy(), t, as_of_us=as_of)
    expected = _pandas_monthly(log)
    assert list(table.sizes) == expected[0].tolist()
    got = table.counts[:, :expected.shape[1]]
    assert (got == expected.to_numpy()).all()
    assert (table.counts[:, expected.shape[1]:] == 0).all()
    after = repeat_purchase_retention(log["customer"].to_numpy(), t, as_of_us=as_of,
                                      return_on="on_or_after")
    # "on or after": customers whose last purchase month is >= k.
    month = log["date"].dt.year * 12 + log["date"].dt.month - 1
    per = pd.DataFrame({"c": log["customer"], "m": month}).groupby("c")["m"].agg(["min", "max"])
    span = (per["max"] - per["min"]).to_numpy()
    first_cohort = per["min"].to_numpy()
    for i, cohort in enumerate(sorted(set(first_cohort))):
        for k in range(after.n_periods):
            assert after.counts[i, k] == int(((first_cohort == cohort) & (span >= k)).sum())


def test_cdnow_repeat_purchase_cohorts_match_pandas():
    log = pd.read_csv(_cdnow_path(), sep=r"\s+", header=None,
                      names=["customer", "id2", "date", "cds", "dollars"],
                      dtype={"customer": str, "id2": str, "date": str})
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d", utc=True)
    _check_against_pandas(log)
    table = repeat_purchase_retention(
        log["customer"].to_numpy(), log["date"].to_numpy(dtype="datetime64[us]").astype(np.int64),
        as_of_us=int(log["date"].max().value // 1000))
    assert table.cohorts == ("1997-01-01", "1997-02-01", "1997-03-01")  # acquisition Q1 1997
    assert sum(table.sizes) == 2357
    assert all(a == 1.0 for a in table.shares[:, 0])


def test_synthetic_cdnow_shaped_log_matches_pandas():
    rng = np.random.default_rng(3)
    n = 3_000
    first = np.datetime64("1997-01-01", "D") + rng.integers(0, 90, n)
    repeats = rng.poisson(1.5, n)
    cust = np.repeat(np.arange(n), repeats + 1)
    offs = np.concatenate([np.r_[0, np.sort(rng.integers(0, 540, r))] for r in repeats])
    dates = first.repeat(repeats + 1) + offs
    log = pd.DataFrame({"customer": [f"{c:05d}" for c in cust],
                        "date": pd.to_datetime(dates, utc=True)})
    _check_against_pandas(log)
