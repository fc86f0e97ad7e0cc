"""The live size estimate of a rule: a seeded sample, a Wilson interval scaled to the
population, exact on small data."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from django.core.management import call_command

from events.frame import build_user_events
from events.models import Dataset
from segments import estimate_services
from segments.analytics.estimate import (
    sample_codes,
    size_estimate,
    subset_users,
    wilson,
)
from segments.analytics.rules import evaluate_rule

EARLY2 = {"event": "report_created", "min_count": 2, "window": {"from_signup_days": [0, 7]}}


def quadratic_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval as the roots of (p_hat - p)^2 = z^2 p (1 - p) / n in p."""
    ph = k / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize(("k", "n"), [(15, 50), (0, 20), (20, 20), (4_987, 20_000)])
def test_wilson_is_the_root_pair_of_the_score_equation(k, n):
    low, high = wilson(k, n)
    exp_low, exp_high = quadratic_wilson(k, n)
    assert low == pytest.approx(max(0.0, exp_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, exp_high), abs=1e-12)


def test_a_population_no_larger_than_the_sample_is_counted_exactly():
    est = size_estimate(matched=7, sample=30, population=30)
    assert (est.estimate, est.low, est.high, est.exact) == (7.0, 7.0, 7.0, True)
    scaled = size_estimate(matched=5_000, sample=20_000, population=100_000)
    lo, hi = quadratic_wilson(5_000, 20_000)
    assert scaled.exact is False and scaled.estimate == 25_000.0
    assert (scaled.low, scaled.high) == (pytest.approx(lo * 100_000), pytest.approx(hi * 100_000))


def planted(n_users: int) -> tuple[object, int]:
    """Users u00000..: every 4th did report_created twice in its first week (planted members),
    the others once; returns the frame and the true member count."""
    ids = np.array([f"u{i:05d}" for i in range(n_users)])
    members = np.arange(n_users) % 4 == 0
    signup = pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(np.arange(n_users) % 50,
                                                                      unit="D")
    rows_user = np.concatenate([ids, ids, ids[members]])
    rows_time = np.concatenate([signup, signup + pd.Timedelta(days=1),
                                signup[members] + pd.Timedelta(days=2)])
    rows_event = ["signup"] * n_users + ["report_created"] * (n_users + int(members.sum()))
    frame = pd.DataFrame({"user_id": rows_user, "event": rows_event,
                          "timestamp": pd.DatetimeIndex(rows_time),
                          "revenue": 0.0}).sort_values(["user_id", "timestamp"],
                                                       kind="stable")
    users = pd.DataFrame({"user_id": ids, "signup_time": signup,
                          "plan": np.where(np.arange(n_users) % 5 == 0, "pro", "free")})
    return build_user_events([frame], users), int(members.sum())


def test_the_interval_covers_the_planted_truth_and_the_sample_count_is_exact():
    data, truth = planted(60_000)
    as_of = int(data.time.max()) + 1
    assert int(evaluate_rule(EARLY2, data, as_of).sum()) == truth == 15_000
    codes = sample_codes(data.n_users)
    assert len(codes) == 20_000 and np.array_equal(codes, sample_codes(data.n_users))  # seeded
    sub = subset_users(data, codes)
    for rule, is_member in ((EARLY2, codes % 4 == 0),
                            ({"attribute": "plan", "op": "eq", "value": "pro"}, codes % 5 == 0)):
        matched = int(evaluate_rule(rule, sub, as_of).sum())
        assert matched == int(is_member.sum())  # user code i is u{i:05d}: counted by hand
        est = size_estimate(matched=matched, sample=len(codes), population=data.n_users)
        true_total = 15_000 if rule is EARLY2 else 12_000
        assert est.low <= true_total <= est.high
        assert est.estimate == matched / 20_000 * 60_000


def test_a_subset_keeps_each_users_events_and_attributes():
    data, _ = planted(40)
    codes = np.array([0, 3, 4, 39])
    sub = subset_users(data, codes)
    assert list(sub.user_ids) == ["u00000", "u00003", "u00004", "u00039"]
    assert list(np.bincount(sub.user)) == [3, 2, 3, 2]
    assert list(sub.attributes["plan"]) == ["pro", "free", "free", "free"]
    full = evaluate_rule(EARLY2, data, int(data.time.max()) + 1)
    assert list(evaluate_rule(EARLY2, sub, int(data.time.max()) + 1)) == list(full[codes])


# ----- through the API ---------------------------------------------------------------------------
EVENTS = """user_id,event,timestamp,revenue
a,signup,2025-01-01T00:00:00Z,
a,report_created,2025-01-02T00:00:00Z,
a,report_created,2025-01-03T00:00:00Z,
b,signup,2025-01-01T00:00:00Z,
b,report_created,2025-01-20T00:00:00Z,
c,signup,2025-01-02T00:00:00Z,
c,report_created,2025-01-03T00:00:00Z,
c,report_created,2025-01-04T00:00:00Z,
d,signup,2025-01-03T00:00:00Z,
"""


@pytest.fixture
def dataset(team, tmp_path, db):
    (tmp_path / "e.csv").write_text(EVENTS)
    call_command("import_events", workspace="acme", events=tmp_path / "e.csv", dataset="app")
    estimate_services.forget_samples()
    yield Dataset.objects.get(workspace=team["acme"], name="app")
    estimate_services.forget_samples()


URL = "/api/v1/segments/estimate/"


def test_the_estimate_is_the_exact_count_on_a_small_dataset(api, team, dataset):
    client = api(team["analyst"])
    res = client.post(URL, {"dataset": dataset.pk, "definition": {"all": [EARLY2]}},
                      format="json")
    assert res.status_code == 200, res.json()
    body = res.json()
    # a (days 1 and 2) and c (days 1 and 2) did two reports in their first week; b one, d none.
    assert (body["estimate"], body["low"], body["high"]) == (2.0, 2.0, 2.0)
    assert (body["exact"], body["sample"], body["population"]) == (True, 4, 4)
    assert body["dataset_version"] == 1
    started = time.perf_counter()
    again = client.post(URL, {"dataset": dataset.pk, "definition": {"any": []}}, format="json")
    assert time.perf_counter() - started < 1.0
    assert again.json()["estimate"] == 0.0


def test_a_sample_smaller_than_the_population_is_scaled_with_its_interval(
        api, team, dataset, monkeypatch):
    monkeypatch.setattr(estimate_services, "SAMPLE_USERS", 3)
    body = api(team["analyst"]).post(URL, {"dataset": dataset.pk, "definition": EARLY2},
                                     format="json").json()
    codes = sample_codes(4, 3)  # users sorted a, b, c, d: codes 0..3; members a (0) and c (2)
    matched = int(np.isin(codes, [0, 2]).sum())
    low, high = quadratic_wilson(matched, 3)
    assert (body["exact"], body["sample"], body["population"], body["matched"]) == (
        False, 3, 4, matched)
    assert body["estimate"] == pytest.approx(matched / 3 * 4)
    assert (body["low"], body["high"]) == (pytest.approx(low * 4), pytest.approx(high * 4))


def test_a_refused_rule_names_the_part_and_viewers_cannot_ask(api, team, dataset):
    client = api(team["analyst"])
    bad = client.post(URL, {"dataset": dataset.pk,
                            "definition": {"all": [EARLY2, {"event": "nope_never_seen"}]}},
                      format="json")
    assert bad.status_code == 400
    assert bad.json()["path"] == "all[1].event"
    assert "all[1].event" in bad.json()["definition"][0] and "nope_never_seen" in bad.json()[
        "definition"][0]
    missing = client.post(URL, {"definition": EARLY2}, format="json")
    assert missing.status_code == 400 and "dataset" in missing.json()
    assert api(team["viewer"]).post(URL, {"dataset": dataset.pk, "definition": EARLY2},
                                    format="json").status_code == 403
    assert api(team["outsider"]).post(URL, {"dataset": dataset.pk, "definition": EARLY2},
                                      format="json").status_code == 404
