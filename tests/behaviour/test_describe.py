"""Analysis parameters by name (behaviour.describe): exact lines for each kind. No DB."""

from __future__ import annotations

from behaviour.describe import describe_params, segment_names_for


def test_funnel_with_segment_filters_and_breakdown_segments():
    params = {"segment": 4, "steps": ["signup", {"event": "feature_used", "filter": {
        "key": "feature", "op": "in", "value": ["alerts", "exports"]}}, "upgrade"],
        "window_days": 14.0, "mode": "ordered", "exclusions": ["purchase"], "breakdown": "",
        "breakdown_segments": [7, 9]}
    assert describe_params(params, {4: "Team plan", 7: "Web"}) == (
        "Segment: Team plan · Steps: signup → feature_used [feature in alerts, exports] → "
        "upgrade · Window: 14 days · Mode: in order · Excluding: purchase · "
        "Compared with: Web, #9 (deleted)")
    assert segment_names_for([params, {"segment": None}]) == {4, 7, 9}


def test_paths_retention_discovery_and_unknown_keys():
    assert describe_params({"segment": None, "start_event": None, "end_event": "upgrade",
                            "outcome_event": "upgrade", "steps": 3, "top": 20}) == (
        "All users · Path length: 3 · Before: upgrade · Outcome: upgrade (the end event: "
        "rates are 1 by construction) · Top paths: 20")
    assert describe_params({"start_event": None, "end_event": None, "outcome_event": None,
                            "steps": 1, "top": 20}) == (
        "All users · From: session start · Path length: 1 · Top paths: 20")
    assert describe_params({"cohort_by": "signup", "period": "week", "mode": "first_time",
                            "return_on": "on_or_after", "max_periods": 12,
                            "return_events": ["report_created"]}) == (
        "All users · Mode: first time · Cohort by: signup · Period: week · "
        "Return: on or after the period · Periods: 12 · Return events: report_created")
    assert describe_params({"outcome_event": "upgrade", "outcome_days": 60.0,
                            "events": list("abcdefgh"), "thresholds": [1, 2],
                            "windows": [1.0, 7.5]}) == (
        "All users · Outcome: upgrade · Outcome within: 60 days · Events: 8 events · "
        "At least: 1, 2 events · Early windows: 1, 7.5 days")


def test_trends_and_defined_retention_read_by_kind():
    trends = {"series": [{"event": "any", "measure": "count"},
                         {"event": "purchase", "measure": "sum_revenue"}],
              "interval": "month", "date_from": "", "date_to": "2026-06-30",
              "breakdown_by": "property", "breakdown_key": "source",
              "breakdown_segments": [], "top": 3, "formula": "", "compare": False}
    assert describe_params(trends) == (
        "All users · Series: A: events of any event, B: revenue of purchase · "
        "Per: month (UTC) · To: 2026-06-30 · Breakdown: property source · "
        "Top groups: 3 (+ other)")
    retention = {"segment": 4, "cohort_by": "signup", "start_event": "report_created",
                 "return_events": ["a", "b", "c", "d", "e", "f", "g"],
                 "return_set": "activity", "period": "month", "period_kind": "calendar",
                 "period_days": 0, "mode": "first_time", "return_on": "on", "within": 1,
                 "max_periods": 6}
    assert describe_params(retention, {4: "Team plan"}) == (
        "Segment: Team plan · Start: report_created · Return events: every activity event "
        "(7) · Periods: calendar months (UTC) · Return: on the period · Mode: first time · "
        "Periods shown: 6")
    retention.update(start_event=None, cohort_by="first_event", return_set="chosen",
                     return_events=["b"], period_kind="rolling", period_days=1,
                     return_on="within", within=7)
    assert describe_params(retention, {}) == (
        "Segment: #4 (deleted) · Start: first event · Return events: b · "
        "Periods: rolling 1 day from each user's start · Return: within 7 periods · "
        "Mode: first time · Periods shown: 6")
