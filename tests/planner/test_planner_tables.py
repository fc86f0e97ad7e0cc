"""Effort, shares, capacity and quarters as tables in the forms (row-level errors), the same
rules over the API (JSON), and what binds on the run page, through the database."""

from __future__ import annotations

import pytest

from planner import services
from planner.models import Investment, OptimizationRun, Scenario

pytestmark = pytest.mark.django_db


def _rows(name: str, rows: list[dict[str, str]]) -> dict[str, str]:
    return {f"{name}-{k}-{col}": value for k, row in enumerate(rows) for col, value in row.items()}


INVESTMENT = {"title": "Checkout v2", "roadmap": "core", "cost": "100", "duration_quarters": "2",
              "adoption": "0.2", "value_basis": "ltv_90", "horizon_months": "12",
              "impact": "1", "confidence": "0.5", "ease": "5"}


def test_effort_table_saves_a_profile_and_a_total(client, team):
    client.force_login(team["analyst"])
    data = {**INVESTMENT, **_rows("effort", [
        {"team": "design", "quarter": "1", "units": "2"},
        {"team": "platform", "quarter": "2", "units": "3"},
        {"team": "web", "quarter": "", "units": "4"},
        {"team": "", "quarter": "", "units": ""},  # the blank row
    ])}
    r = client.post("/w/acme/investments/new/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    inv = Investment.objects.get(title="Checkout v2")
    assert inv.effort == {"web": 4.0, "design": [2.0], "platform": [0.0, 3.0]}
    assert inv.effort_total == 9.0
    # The edit form shows the same rows back.
    page = client.get(f"/w/acme/investments/{inv.pk}/edit/").content.decode()
    assert 'name="effort-0-team" value="web"' in page
    assert 'name="effort-2-quarter" value="2"' in page and 'name="effort-3-team" value=""' in page


@pytest.mark.parametrize(("rows", "error"), [
    ([{"team": "design", "quarter": "1", "units": "-2"}],
     "row 1: effort units must be 0 or more, got -2"),
    ([{"team": "design", "quarter": "1", "units": "2"}, {"team": "design", "quarter": "",
                                                         "units": "1"}],
     "row 2: team 'design' has rows by quarter: give a quarter here too"),
    ([{"team": "design", "quarter": "3", "units": "2"}],
     "row 1: team 'design': quarter 3 is after the item's last quarter (it takes 2)"),
    ([{"team": "", "quarter": "", "units": "2"}], "row 1: give the team"),
])
def test_effort_table_errors_name_the_row(client, team, rows, error):
    client.force_login(team["analyst"])
    r = client.post("/w/acme/investments/new/", {**INVESTMENT, **_rows("effort", rows)})
    assert r.status_code == 200
    page = r.content.decode()
    assert error.replace("'", "&#x27;") in page
    assert 'class="row-error"' in page  # the row itself is marked
    assert not Investment.objects.filter(title="Checkout v2").exists()


def test_scenario_tables_save_shares_capacity_and_quarters(client, team):
    client.force_login(team["analyst"])
    Investment.objects.create(workspace=team["acme"], title="a", cost=10,
                              effort={"design": [1, 2]}, duration_quarters=2)
    data = {"name": "tables", "budget": "1000", "robust_draws": "0", "frontier_points": "0",
            "time_limit": "10", "schedule": "on",
            **_rows("shares", [{"roadmap": "core", "min": "0.5", "max": "0.9"}]),
            **_rows("capacity", [{"team": "design", "quarter": "2027Q1", "units": "2"},
                                 {"team": "design", "quarter": "2027Q2", "units": "3"}]),
            **_rows("quarters", [{"quarter": "2027Q1"}, {"quarter": "2027Q2"}])}
    r = client.post("/w/acme/scenarios/", data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    sc = Scenario.objects.get(name="tables")
    assert sc.shares == {"core": [0.5, 0.9]}
    assert sc.capacity == {"design|2027Q1": 2.0, "design|2027Q2": 3.0}
    assert sc.quarters == ["2027Q1", "2027Q2"]


def test_scenario_capacity_missing_a_team_is_a_form_error_naming_the_item(client, team):
    client.force_login(team["analyst"])
    inv = Investment.objects.create(workspace=team["acme"], title="Needs data", cost=10,
                                    effort={"data": 2})
    data = {"name": "no data team", "budget": "1000", "robust_draws": "0",
            "frontier_points": "0", "time_limit": "10",
            **_rows("capacity", [{"team": "design", "quarter": "2027Q1", "units": "2"}]),
            **_rows("quarters", [{"quarter": "2027Q1"}])}
    r = client.post("/w/acme/scenarios/", data)
    assert r.status_code == 200
    assert (f"#{inv.pk} &#x27;Needs data&#x27; needs team &#x27;data&#x27; (its effort), which "
            "has no row in the capacity table") in r.content.decode()
    assert not Scenario.objects.filter(name="no data team").exists()


def test_scenario_row_errors(client, team):
    client.force_login(team["analyst"])
    data = {"name": "bad rows", "budget": "1000", "robust_draws": "0", "frontier_points": "0",
            "time_limit": "10",
            **_rows("shares", [{"roadmap": "core", "min": "0.9", "max": "0.5"}]),
            **_rows("capacity", [{"team": "design", "quarter": "2027Q5", "units": "2"}])}
    page = client.post("/w/acme/scenarios/", data).content.decode()
    assert "row 1: give 0 &lt;= min &lt;= max &lt;= 1 (got 0.9 and 0.5)" in page
    assert "row 1: quarter: &#x27;2027Q5&#x27; is not a quarter like 2027Q1" in page
    assert not Scenario.objects.filter(name="bad rows").exists()


def test_api_takes_effort_profiles_as_json_and_refuses_bad_ones(api, team):
    client = api(team["analyst"])
    body = {"workspace": "acme", "title": "p", "roadmap": "core", "cost": 10,
            "duration_quarters": 2, "effort": {"design": [2, 0], "platform": [0, 3]}}
    r = client.post("/api/v1/investments/", body, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["effort"] == {"design": [2, 0], "platform": [0, 3]}
    assert r.json()["effort_total"] == 5
    r = client.post("/api/v1/investments/", {**body, "effort": {"design": [1, 1, 1]}},
                    format="json")
    assert r.status_code == 400
    assert r.json() == {"effort": ['"design": effort is given for 3 quarters but the item '
                                   'takes 2 (its duration)']}
    r = client.post("/api/v1/investments/", {**body, "effort": {"design": [1, -1]}},
                    format="json")
    assert r.status_code == 400
    assert r.json() == {"effort": ['"design": give a number of effort units from 0 to 1000000 '
                                   'in each quarter']}


def test_api_run_refuses_a_capacity_table_missing_a_team(api, team):
    client = api(team["analyst"])
    inv = Investment.objects.create(workspace=team["acme"], title="Needs data", cost=10,
                                    effort={"data": 2})
    sc = Scenario.objects.create(workspace=team["acme"], name="s", budget=100,
                                 capacity={"design|2027Q1": 2}, quarters=["2027Q1"])
    r = client.post(f"/api/v1/scenarios/{sc.pk}/run/")
    assert r.status_code == 400
    assert r.json() == {"capacity": [f"#{inv.pk} 'Needs data' needs team 'data' (its effort), "
                                     "which has no row in the capacity table: give it a capacity "
                                     "(0 if it has none)"]}
    assert not OptimizationRun.objects.exists()


def test_run_page_says_what_binds_with_the_table(client, team):
    ws = team["acme"]
    # Two items each need 2 design units; design has 2 in the one quarter: only the better one
    # fits. The budget has room. Values are assumptions (reach x value per user x lift x 0.2).
    a = Investment.objects.create(workspace=ws, title="Alpha", cost=10, effort={"design": 2},
                                  assumed_reach=1000, assumed_value_per_user=10, assumed_lift=0.5,
                                  adoption=1.0)
    b = Investment.objects.create(workspace=ws, title="Beta", cost=10, effort={"design": 2},
                                  assumed_reach=1000, assumed_value_per_user=10, assumed_lift=0.2,
                                  adoption=1.0)
    for inv in (a, b):
        services.investment_revalue(investment=inv)
    sc = Scenario.objects.create(workspace=ws, name="s", budget=100, shares={"core": [0, 1]},
                                 capacity={"design|2027Q1": 2}, quarters=["2027Q1"],
                                 frontier_points=0, robust_draws=0)
    run = services.run_start(scenario=sc)
    from jobs.services import job_run

    job_run(job_id=run.job_id)
    run.refresh_from_db()
    assert run.status == "optimal"
    assert run.plan["chosen"] == [str(a.pk)], (run.plan["chosen"], run.inputs["items"])
    rows = {r["group"]: r for r in run.plan["binding"]}
    design = rows["capacity|design"]
    assert (design["used"], design["limit"], design["at_limit"], design["binds"]) == \
        (2.0, 2.0, True, True)
    # One more unit of design does not fit Beta's 2: the re-solved gain is 0.
    assert design["gain"] == 0 and design["gain_exact"]
    assert rows["budget"]["binds"] is False
    assert run.plan["reasons"][str(b.pk)]["kept_out_by"] == ["capacity|design"]
    client.force_login(team["viewer"])
    page = client.get(f"/w/acme/runs/{run.pk}/").content.decode()
    assert "These constraints limit the plan:" in page
    assert "team design has 2 effort units over all quarters: at its limit (2 of 2)" in page
    assert "team design&#x27;s capacity: it needs 2 and 0 is left" in page
    assert "No team capacity binds" not in page
    assert "exact optimum of the model" in page


def test_api_run_refuses_an_effort_profile_longer_than_the_plan(api, team):
    client = api(team["analyst"])
    inv = Investment.objects.create(workspace=team["acme"], title="Long", cost=10,
                                    duration_quarters=3, effort={"design": [1, 1, 1]})
    sc = Scenario.objects.create(workspace=team["acme"], name="two quarters", budget=100,
                                 capacity={"design|2027Q1": 2, "design|2027Q2": 2},
                                 quarters=["2027Q1", "2027Q2"], schedule=True)
    r = client.post(f"/api/v1/scenarios/{sc.pk}/run/")
    assert r.status_code == 400
    assert r.json() == {"quarters": [f"#{inv.pk} 'Long': effort of team 'design' is given for "
                                     "3 quarters but the plan has 2"]}
    assert not OptimizationRun.objects.exists()
