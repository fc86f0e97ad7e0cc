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
