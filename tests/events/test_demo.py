"""Demo-data generator: schema, determinism, and recovery of every planted truth from the data.

Plain functions, no database. Each truth is recomputed here from the events and users frames
with pandas, independently of the generator's own bookkeeping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from events.demo import (
    DEFAULT_END,
    EVENT_COLUMNS,
    FEATURES,
    USER_COLUMNS,
    DemoData,
    generate_demo,
    write_demo,
)

USERS = 50_000
SEED = 7
ISO_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
Z = 4.0  # tolerance in standard errors: a false alarm is ~1 in 16,000 per check


# The shared conftest's autouse fixtures need Django; these tests need none of it.
@pytest.fixture(autouse=True)
def _event_store() -> None:
    return None


@pytest.fixture(autouse=True)
def _eager_tasks() -> Iterator[None]:
    yield


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo(users=USERS, seed=SEED)


@pytest.fixture(scope="module")
def frames(demo: DemoData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events with parsed times and seconds since signup, and users with parsed signup."""
    users = demo.users.copy()
    users["signup"] = pd.to_datetime(users["signup_time"], format="ISO8601", utc=True)
    events = demo.events.copy()
    events["ts"] = pd.to_datetime(events["timestamp"], format="ISO8601", utc=True)
    events = events.merge(users[["user_id", "signup", "plan", "device", "acquisition_channel"]],
                          on="user_id", how="left", validate="many_to_one")
    events["since"] = (events["ts"] - events["signup"]).dt.total_seconds()
    return events, users


def _first(events: pd.DataFrame, name: str, upto_days: float) -> pd.Series:
    """Per user, the first `name` event at 0 <= seconds since signup < upto_days."""
    rows = events[(events["event"] == name) & (events["since"] >= 0)
                  & (events["since"] < upto_days * 86_400)]
    return rows.groupby("user_id")["ts"].min()


def _binomial_ok(hits: int, total: int, p: float) -> bool:
    se = math.sqrt(p * (1 - p) / total)
    return abs(hits / total - p) <= Z * se


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# ----- determinism and schema ------------------------------------------------------------------
def test_same_seed_same_data_other_seed_other_data() -> None:
    one, two = generate_demo(users=3_000, seed=11), generate_demo(users=3_000, seed=11)
    pd.testing.assert_frame_equal(one.events, two.events)
    pd.testing.assert_frame_equal(one.users, two.users)
    assert json.dumps(one.truth, sort_keys=True) == json.dumps(two.truth, sort_keys=True)
    other = generate_demo(users=3_000, seed=12)
    assert not one.users["signup_time"].equals(other.users["signup_time"])


def test_columns_and_values(demo: DemoData) -> None:
    users, events = demo.users, demo.events
    assert list(users.columns) == USER_COLUMNS
    assert list(events.columns) == EVENT_COLUMNS
    assert len(users) == USERS and users["user_id"].is_unique
    assert users["user_id"].str.fullmatch(r"u\d{6}").all()
    assert set(users["plan"]) == {"free", "pro", "team"}
    assert set(users["device"]) == {"web", "ios", "android"}
    assert set(users["acquisition_channel"]) == {"organic", "paid", "referral", "partner"}
    assert {"US", "DE", "GB", "FR", "IN", "BR"} <= set(users["country"])
    assert pd.api.types.is_integer_dtype(users["company_size"])
    assert (users["company_size"] >= 1).all()
    assert pd.api.types.is_float_dtype(events["revenue"])
    assert events["user_id"].isin(users["user_id"]).all()
    assert set(events["event"].unique()) == {
        "signup", "session_start", "experiment_assigned", "onboarding_completed",
        "feature_used", "report_created", "invite_sent", "upgrade", "purchase"}
    assert 8 <= len(events) / len(users) <= 15
    paying = events["event"].isin(["upgrade", "purchase"])
    assert events.loc[paying, "revenue"].gt(0).all()
    assert events.loc[~paying, "revenue"].isna().all()


def test_properties_are_json_objects(demo: DemoData) -> None:
    events = demo.events
    present = events[events["properties"].notna() & (events["properties"] != "")]
    # Few distinct property texts: parse each once, per event name.
    distinct = present[["event", "properties"]].drop_duplicates()
    distinct["parsed"] = distinct["properties"].map(json.loads)
    assert distinct["parsed"].map(lambda p: isinstance(p, dict) and len(p) > 0).all()
    by_event = distinct.groupby("event")["parsed"].agg(list)
    assert {p["feature"] for p in by_event["feature_used"]} == set(FEATURES)
    assert {p["experiment"] for p in by_event["experiment_assigned"]} == {
        "onboarding_checklist_v2"}
    assert {p["arm"] for p in by_event["experiment_assigned"]} == {"control", "treatment"}
    assert set(by_event.index) == {"feature_used", "experiment_assigned", "upgrade", "purchase"}
    assert events.loc[events["event"] == "feature_used", "properties"].notna().all()


def test_timestamps_are_utc_iso_and_in_range(demo: DemoData) -> None:
    for column in (demo.events["timestamp"], demo.users["signup_time"]):
        assert column.str.fullmatch(ISO_Z).all()
        parsed = pd.to_datetime(column, format="ISO8601", utc=True)
        assert parsed.max() < pd.Timestamp(DEFAULT_END)
        assert parsed.min() > pd.Timestamp("2000-01-01", tz="UTC")
    signup = pd.to_datetime(demo.users["signup_time"], utc=True)
    assert signup.min() >= pd.Timestamp(DEFAULT_END - timedelta(days=365))
    assert demo.truth["meta"]["end"] == _iso(DEFAULT_END)


def test_custom_end_and_naive_end() -> None:
    end = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
    data = generate_demo(users=500, seed=1, end=end)
    ts = pd.to_datetime(data.events["timestamp"], utc=True)
    assert ts.max() < pd.Timestamp(end)
    assert ts.min() >= pd.Timestamp(end - timedelta(days=365))
    with pytest.raises(ValueError):
        generate_demo(users=10, end=datetime(2024, 3, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValueError):
        generate_demo(users=0)


def test_every_user_has_one_signup_event_at_signup_time(demo: DemoData) -> None:
    signups = demo.events[demo.events["event"] == "signup"]
    assert signups["user_id"].is_unique and len(signups) == len(demo.users)
    merged = signups.merge(demo.users, on="user_id")
    assert (merged["timestamp"] == merged["signup_time"]).all()


def test_no_exact_duplicate_events(demo: DemoData) -> None:
    key = ["user_id", "event", "timestamp", "properties"]
    assert not demo.events.duplicated(subset=key).any()


def test_funnel_steps_first_occurrences_are_strictly_increasing(frames: tuple) -> None:
    events, _ = frames
    steps = ["signup", "onboarding_completed", "report_created", "invite_sent", "upgrade"]
    firsts = pd.concat({s: _first(events, s, 14) for s in steps}, axis=1)
    checked = 0
    for depth in range(2, len(steps) + 1):
        reached = firsts[steps[:depth]].dropna()
        checked += len(reached)
        times = reached.to_numpy(dtype="datetime64[s]").astype(np.int64)
        assert (np.diff(times, axis=1) > 0).all(), f"out of order up to {steps[depth - 1]}"
    assert checked > 1_000


# ----- planted truths, recovered ---------------------------------------------------------------
def test_truth_is_json_serializable(demo: DemoData) -> None:
    text = json.dumps(demo.truth, allow_nan=False)
    assert set(json.loads(text)) >= {"segments", "early_behaviour", "funnel", "experiment"}


def test_early_reports_multiply_upgrade_odds(demo: DemoData, frames: tuple) -> None:
    events, users = frames
    truth = demo.truth["early_behaviour"]
    cutoff = pd.Timestamp(truth["cohort"]["signup_before"])
    cohort = users[(users["plan"] == "free") & (users["signup"] < cutoff)]["user_id"]
    early = events[(events["event"] == "report_created") & (events["since"] >= 0)
                   & (events["since"] < 7 * 86_400)]
    exposed = early.groupby("user_id").size().reindex(cohort, fill_value=0) >= 2
    upgraded = cohort.isin(_first(events, "upgrade", 60).index).to_numpy()
    exposed = exposed.to_numpy()
    a, b = int((exposed & upgraded).sum()), int((exposed & ~upgraded).sum())
    c, d = int((~exposed & upgraded).sum()), int((~exposed & ~upgraded).sum())
    realized = truth["realized"]
    assert (a, b, c, d) == (realized["exposed_upgraded"], realized["exposed_not_upgraded"],
                            realized["unexposed_upgraded"], realized["unexposed_not_upgraded"])
    log_or, se = math.log(a * d / (b * c)), math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert truth["planted_odds_ratio"] == 3.0
    assert abs(log_or - math.log(3.0)) <= Z * se
    assert se < 0.06  # the sample is big enough for the check to mean something
    assert _binomial_ok(c, c + d, truth["baseline_upgrade_probability"])
    assert _binomial_ok(a, a + b, truth["exposed_upgrade_probability"])


def test_funnel_conversions_match_planted(demo: DemoData, frames: tuple) -> None:
    events, users = frames
    truth = demo.truth["funnel"]
    cutoff = pd.Timestamp(truth["cohort"]["signup_before"])
    cohort = users[(users["plan"] == "free") & (users["signup"] < cutoff)]
    previous = cohort.set_index("user_id")["signup"]
    reached = [len(previous)]
    for step in truth["steps"][1:]:
        rows = events[(events["event"] == step) & events["user_id"].isin(previous.index)]
        rows = rows[rows["since"] < truth["window_days"] * 86_400]
        rows = rows[rows["ts"] > rows["user_id"].map(previous)]
        previous = rows.groupby("user_id")["ts"].min()
        reached.append(len(previous))
    assert reached == truth["realized"]["users_reaching"]
    planted = truth["planted"]["step_conversion"]
    for i in range(1, len(reached)):
        assert _binomial_ok(reached[i], reached[i - 1], planted[i]), truth["steps"][i]
    assert planted[1:] == pytest.approx([0.5735, 0.60, 0.35, 0.10])


def test_experiment_lifts_web_onboarding_only(demo: DemoData, frames: tuple) -> None:
    events, users = frames
    truth = demo.truth["experiment"]
    assigned = events[events["event"] == "experiment_assigned"].copy()
    props = assigned["properties"].map(json.loads)
    assert (props.map(lambda p: p["experiment"]) == truth["experiment_id"]).all()
    assigned["arm"] = props.map(lambda p: p["arm"])
    assert assigned["user_id"].is_unique
    start, stop = pd.Timestamp(truth["start"]), pd.Timestamp(truth["stop"])
    eligible = users[(users["signup"] >= start) & (users["signup"] < stop)]
    assert set(assigned["user_id"]) == set(eligible["user_id"])
    assert _binomial_ok(int((assigned["arm"] == "treatment").sum()), len(assigned), 0.5)

    onboarded = events[events["event"] == "onboarding_completed"].groupby("user_id")["ts"].min()
    done = assigned["user_id"].map(onboarded)
    window = pd.Timedelta(days=7)
    assigned["converted"] = (done >= assigned["ts"]) & (done < assigned["ts"] + window)
    assigned["segment"] = np.where(assigned["device"] == "web", "web", "mobile")
    effects = {"web": 0.08, "mobile": 0.0}
    for segment, effect in effects.items():
        rows = assigned[assigned["segment"] == segment]
        rates = rows.groupby("arm")["converted"].agg(["mean", "size", "sum"])
        control, treatment = rates.loc["control"], rates.loc["treatment"]
        diff = treatment["mean"] - control["mean"]
        se = math.sqrt(control["mean"] * (1 - control["mean"]) / control["size"]
                       + treatment["mean"] * (1 - treatment["mean"]) / treatment["size"])
        planted = truth["segments"][segment]
        assert planted["planted_effect"] == pytest.approx(effect)
        assert abs(diff - effect) <= Z * se, segment
        assert se < 0.02
        assert _binomial_ok(int(control["sum"]), int(control["size"]),
                            planted["planted_control_rate"])
        assert planted["realized"]["control"]["converted"] == int(control["sum"])
        assert planted["realized"]["treatment"]["users"] == int(treatment["size"])
        assert planted["realized"]["effect"] == pytest.approx(diff)


def test_segment_revenue_matches_planted(demo: DemoData, frames: tuple) -> None:
    events, users = frames
    truth = demo.truth["segments"]
    cutoff = pd.Timestamp(truth["cohort"]["signup_before"])
    cohort = users[users["signup"] < cutoff].set_index("user_id")
    paid = events[events["revenue"].notna() & (events["since"] >= 0)
                  & (events["since"] < 90 * 86_400)]
    cohort["revenue_90d"] = paid.groupby("user_id")["revenue"].sum().reindex(cohort.index,
                                                                             fill_value=0.0)
    for column, key in (("plan", "by_plan"), ("acquisition_channel", "by_channel")):
        stats = cohort.groupby(column)["revenue_90d"].agg(["mean", "std", "size"])
        assert set(stats.index) == set(truth[key])
        for segment, row in stats.iterrows():
            planted = truth[key][segment]
            assert row["mean"] == pytest.approx(planted["realized_mean"], rel=1e-9)
            assert int(row["size"]) == planted["users"]
            assert abs(row["mean"] - planted["planted_mean"]) <= Z * row["std"] / math.sqrt(
                row["size"]), f"{column}={segment}"
    plans = truth["by_plan"]
    assert plans["team"]["planted_mean"] > plans["pro"]["planted_mean"] > plans["free"][
        "planted_mean"]
    channels = truth["by_channel"]
    for name, multiplier in truth["channel_multipliers"].items():
        assert channels[name]["planted_mean"] == pytest.approx(
            multiplier * channels["organic"]["planted_mean"])


# ----- writing ---------------------------------------------------------------------------------
def test_write_csv_and_parquet(tmp_path: Path) -> None:
    data = generate_demo(users=400, seed=5)
    paths = write_demo(data, tmp_path / "csv")
    assert set(paths) == {"events", "users", "truth"}
    assert paths["events"].name == "events.csv"
    with paths["events"].open() as handle:
        assert handle.readline().strip() == "user_id,event,timestamp,revenue,properties"
    with paths["users"].open() as handle:
        assert handle.readline().strip() == (
            "user_id,signup_time,plan,device,country,company_size,acquisition_channel")
    events = pd.read_csv(paths["events"], keep_default_na=False, dtype=str)
    assert len(events) == len(data.events)
    assert (events["revenue"] == "").sum() == data.events["revenue"].isna().sum()
    assert (events["properties"] == "").sum() == data.events["properties"].isna().sum()
    revenue = pd.to_numeric(events["revenue"].replace("", np.nan))
    np.testing.assert_allclose(revenue, data.events["revenue"])
    with_props = events["properties"] != ""
    assert events.loc[with_props, "properties"].map(json.loads).map(bool).all()
    assert (events["timestamp"] == data.events["timestamp"].to_numpy()).all()
    users = pd.read_csv(paths["users"], dtype={"user_id": str})
    assert list(users["user_id"]) == list(data.users["user_id"])
    assert json.loads(paths["truth"].read_text()) == json.loads(json.dumps(data.truth))

    paths = write_demo(data, tmp_path / "pq", fmt="parquet")
    table = pq.read_table(paths["events"])
    assert table.column_names == EVENT_COLUMNS and table.num_rows == len(data.events)
    assert table.column("revenue").null_count == data.events["revenue"].isna().sum()
    with pytest.raises(ValueError):
        write_demo(data, tmp_path / "x", fmt="xlsx")
