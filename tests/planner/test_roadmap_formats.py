"""Roadmap-tool export shapes on hand-built rows (no database)."""

from __future__ import annotations

import csv
import io

from planner.roadmap_formats import (
    JIRA_HEADER,
    PRODUCTBOARD_HEADER,
    external_id,
    jira_csv,
    productboard_csv,
    quarter_dates,
    roadmap_json,
)

ROW = {"external_id": "sp-acme-inv-7", "external_ref": "PLAN-12", "investment": 7,
       "title": "=HYPERLINK(\"x\")", "description": "One-page checkout", "roadmap": "core",
       "state": "approve", "start_quarter": "2027Q4", "duration_quarters": 2,
       "teams": {"web": 1.0, "growth": 2.0, "api": 2.0}, "value": 1234.5, "cost": 99.999,
       "evidence": "experiment"}


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_quarter_dates_span_the_items_quarters():
    assert quarter_dates("2027Q1") == ("2027-01-01", "2027-03-31")
    assert quarter_dates("2027Q4", 2) == ("2027-10-01", "2028-03-31")  # into the next year
    assert quarter_dates("2026Q2", 5) == ("2026-04-01", "2027-06-30")
    assert quarter_dates("", 3) == ("", "")


def test_empty_exports_keep_their_header_row():
    assert parse(jira_csv([])) == [JIRA_HEADER]
    assert parse(productboard_csv([])) == [PRODUCTBOARD_HEADER]
    assert roadmap_json({"version": None}, []) == {"version": None, "items": []}


def test_jira_row_has_every_field_and_is_formula_safe():
    [header, row] = parse(jira_csv([ROW]))
    assert header == JIRA_HEADER and header.count("Labels") == 3
    assert row == [
        "PLAN-12", "'=HYPERLINK(\"x\")",
        "One-page checkout\nExpected value 1,234 (risk-adjusted, at adoption), cost 100, "
        "evidence: experiment.\nTeams: api, growth, web.",
        "Epic", "segment-planner", "roadmap-core", "quarter-2027Q4", "api",
        "2027-10-01", "2028-03-31", "2027Q4", "1234.50", "100.00", "core", "experiment",
        "sp-acme-inv-7"]


def test_productboard_row_and_json_keep_ids_and_dates():
    [_, row] = parse(productboard_csv([{**ROW, "title": "Checkout", "external_ref": ""}]))
    assert dict(zip(PRODUCTBOARD_HEADER, row, strict=True)) == {
        "Feature name": "Checkout",
        "Feature description": "One-page checkout\nExpected value 1,234 (risk-adjusted, at "
                               "adoption), cost 100, evidence: experiment.\nTeams: api, "
                               "growth, web.",
        "Feature type": "feature", "Status": "approve", "Release": "2027Q4",
        "Start date": "2027-10-01", "End date": "2028-03-31",
        "Tags": "segment-planner, core", "Team": "api, growth, web", "Value": "1234.50",
        "Cost": "100.00", "Roadmap": "core", "Evidence": "experiment",
        "External ID": "sp-acme-inv-7", "External reference": ""}
    data = roadmap_json({"workspace": "acme", "version": 3}, [ROW])
    assert data["version"] == 3 and data["items"][0]["external_id"] == external_id("acme", 7)
    assert (data["items"][0]["start_date"], data["items"][0]["end_date"]) == ("2027-10-01",
                                                                              "2028-03-31")
