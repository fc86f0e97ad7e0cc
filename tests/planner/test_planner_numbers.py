"""Issue 16, items 1-5 and 12 (planner part): every number of an investment or a scenario has a
range that the API, the pages and the database enforce; runs follow their jobs; work that would
exceed the job memory budget is refused before it starts.

Works on SQLite and PostgreSQL: the extreme-values test is the overflow case on PostgreSQL
(RICE / ICE arithmetic in the database)."""

from __future__ import annotations

import math

import pytest
from django.db import IntegrityError, transaction

from jobs.models import Job, JobState
from jobs.services import job_run
from planner import services
from planner.models import Investment, OptimizationRun, Scenario, ValueEstimate
from planner.optimizer import Item, Problem, ProblemError

pytestmark = pytest.mark.django_db

BASE = {"workspace": "acme", "title": "Bundles", "roadmap": "core", "cost": 50}


def post(client, path, body):  # type: ignore[no-untyped-def]
    return client.post(path, body, format="json")


# ----- 1. confidence 1e308 ---------------------------------------------------------------------
def test_confidence_1e308_is_refused_by_the_api_the_form_and_the_database(team, api, client):
    r = post(api(team["analyst"]), "/api/v1/investments/", {**BASE, "confidence": 1e308})
    assert r.status_code == 400
    assert r.json() == {"confidence": ["Ensure this value is less than or equal to 1.0."]}
    client.force_login(team["analyst"])
    page = client.post("/w/acme/investments/new/", {
        "title": "Page item", "roadmap": "core", "cost": "100", "effort": "{}",
        "duration_quarters": "1", "adoption": "0.2", "value_basis": "ltv_90",
        "horizon_months": "12", "impact": "1", "confidence": "1e308", "ease": "5"})
    assert page.status_code == 200
    assert "Ensure this value is less than or equal to 1.0." in page.content.decode()
    assert not Investment.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Investment.objects.create(workspace=team["acme"], title="raw", cost=5, confidence=1e308)


def test_the_widest_values_allowed_keep_every_read_at_200(team, api, client):
    """Every input at the edge of its domain: the backlog's arithmetic (value per cost, RICE,
    ICE; in the database) stays finite, so every page and list answers."""
    extreme = post(api(team["analyst"]), "/api/v1/investments/", {
        **BASE, "cost": 0.01, "effort": {"growth": 0.01}, "assumed_reach": 1_000_000_000,
        "assumed_value_per_user": 1_000_000, "assumed_lift": 10, "adoption": 1,
        "horizon_months": 60, "value_basis": "revenue_per_active_user", "impact": 10,
        "confidence": 1, "ease": 10})
    assert extreme.status_code == 201, extreme.content
    body = extreme.json()
    # 1e9 users x 1e6 x 10 x P(assumption) 0.2 x 60 months = 1.2e17: past the value domain, so
    # capped at 1e15 and said so in the sources.
    assert body["expected_value"] == 1e15
    assert body["value_sources"]["capped"] == (
        "the computed value 1.2e+17 is outside -1e+15..1e+15: capped")
    assert body["value_per_cost"] == pytest.approx(1e17)
    assert body["rice"] == pytest.approx(1e9 * 10 * 1 / 0.01)
    assert body["ice"] == pytest.approx(100.0)
    post(api(team["analyst"]), "/api/v1/investments/", {**BASE, "title": "tiny", "cost": 1e12,
                                                        "assumed_lift": -1, "impact": 0,
                                                        "confidence": 0, "ease": 1})
    viewer = api(team["viewer"])
    listing = viewer.get("/api/v1/investments/", {"ordering": "-expected_value"})
    assert listing.status_code == 200
    assert [r["title"] for r in listing.json()["results"]] == ["Bundles", "tiny"]
    for ordering in ("value_per_cost", "-value_per_cost", "rice", "-rice", "ice", "-ice",
                     "cost"):
        assert viewer.get("/api/v1/investments/", {"ordering": ordering}).status_code == 200
    client.force_login(team["viewer"])
    for path in ("/w/acme/", "/w/acme/backlog/", "/w/acme/backlog/?sort=rice",
                 "/w/acme/backlog/?sort=ice", "/w/acme/brief/",
                 f"/w/acme/investments/{body['id']}/"):
        assert client.get(path).status_code == 200, path


# ----- 2. cost 1e300 ---------------------------------------------------------------------------
def test_cost_1e300_is_refused_and_later_runs_still_solve(team, api,
                                                          django_capture_on_commit_callbacks):
    analyst = api(team["analyst"])
    r = post(analyst, "/api/v1/investments/", {**BASE, "cost": 1e300})
    assert r.status_code == 400
    assert r.json() == {"cost": ["Ensure this value is less than or equal to 1000000000000.0."]}
    assert post(analyst, "/api/v1/investments/", {**BASE, "cost": 0}).json() == {
        "cost": ["Ensure this value is greater than or equal to 0.01."]}
    ok = post(analyst, "/api/v1/investments/", {**BASE, "cost": 1e12, "assumed_reach": 10,
                                                 "assumed_value_per_user": 1,
                                                 "assumed_lift": 1})
    assert ok.status_code == 201
    scenario = post(analyst, "/api/v1/scenarios/", {"workspace": "acme", "name": "s",
                                                     "budget": 1e15, "frontier_points": 0,
                                                     "shares": {"core": [0, 1]}}).json()
    with django_capture_on_commit_callbacks(execute=True):
        run = post(analyst, f"/api/v1/scenarios/{scenario['id']}/run/", {}).json()
    run = OptimizationRun.objects.get(pk=run["id"])
    # 10 users x adoption 0.2 x 1 x lift 1 x P(assumption) 0.2
    assert (run.status, run.objective) == ("optimal", pytest.approx(0.4))


def test_the_optimizer_names_the_item_whose_numbers_are_beyond_the_solver():
    with pytest.raises(ProblemError) as caught:
        Item(id="7", roadmap="core", cost=1e300, value=1)
    assert str(caught.value) == ("item '7': cost 1e+300 is beyond the solver's numeric range "
                                 "(at most 1e+14)")
    with pytest.raises(ProblemError) as caught:
        Item(id="8", roadmap="core", cost=1, value=-1e19)
    assert str(caught.value) == ("item '8': value -1e+19 is beyond the solver's numeric range "
                                 "(at most 1e+18 either way)")
    with pytest.raises(ProblemError) as caught:
        Problem(items=(), budget=1e19)
    assert str(caught.value) == "budget 1e+19 is beyond the solver's numeric range (at most 1e+18)"


# ----- 3. runs follow their jobs ---------------------------------------------------------------
def _scenario(team, **kw):  # type: ignore[no-untyped-def]
    inv = Investment.objects.create(workspace=team["acme"], title="A", cost=10, assumed_reach=10,
                                    assumed_value_per_user=1, assumed_lift=1)
    services.investment_revalue(investment=inv)
    return Scenario.objects.create(workspace=team["acme"], name="s", budget=100,
                                   frontier_points=0, shares={"core": [0, 1]}, **kw)


def test_a_failed_optimizer_job_fails_its_run_with_the_reason(team, api, monkeypatch):
    scenario = _scenario(team)

    def boom(problem):  # type: ignore[no-untyped-def]
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(services, "solve", boom)
    run = services.run_start(scenario=scenario)
    job_run(job_id=run.job_id)
    run.refresh_from_db()
    assert run.job.state == JobState.FAILED
    assert run.status == "failed" and run.finished_at is not None
    assert run.plan == {"error": "the optimizer failed: RuntimeError: solver crashed"}
    body = api(team["viewer"]).get(f"/api/v1/runs/{run.pk}/").json()
    assert (body["status"], body["plan"]) == ("failed", run.plan)
    assert body["finished_at"] is not None
    # A new start of the same input is a new run, not the failed one.
    monkeypatch.undo()
    again = services.run_start(scenario=scenario)
    assert again.pk != run.pk


def test_a_run_whose_job_failed_elsewhere_reads_as_failed(team, api, client):
    """A job can fail outside the handler (the task gave up after its retries, the broker was
    lost): its run follows when it is next read, in the API and on the pages."""
    scenario = _scenario(team)
    run = services.run_start(scenario=scenario)
    Job.objects.filter(pk=run.job_id).update(state=JobState.FAILED,
                                             error="gave up after 5 retries: database gone")
    body = api(team["viewer"]).get("/api/v1/runs/").json()["results"][0]
    assert (body["id"], body["status"]) == (run.pk, "failed")
    assert body["plan"] == {"error": "the optimizer job failed: gave up after 5 retries: "
                                     "database gone"}
    assert OptimizationRun.objects.filter(status="queued").count() == 0
    client.force_login(team["viewer"])
    assert "gave up after 5 retries" in client.get(f"/w/acme/runs/{run.pk}/").content.decode()


# ----- 4. robust_draws and the memory budget ---------------------------------------------------
def test_robust_draws_have_a_range(team, api):
    analyst = api(team["analyst"])
    body = {"workspace": "acme", "name": "draws", "budget": 100}
    assert post(analyst, "/api/v1/scenarios/", {**body, "robust_draws": 10**9}).json() == {
        "robust_draws": ["Ensure this value is less than or equal to 100000."]}
    assert post(analyst, "/api/v1/scenarios/", {**body, "frontier_points": 1}).json() == {
        "frontier_points": ["0 (no frontier) or 2 to 50 points"]}
    assert post(analyst, "/api/v1/scenarios/", {**body, "frontier_points": 51}).json() == {
        "frontier_points": ["Ensure this value is less than or equal to 50."]}
    assert not Scenario.objects.exists()
    with pytest.raises(IntegrityError), transaction.atomic():
        Scenario.objects.create(workspace=team["acme"], name="raw", budget=1, robust_draws=10**9)


def test_work_over_the_memory_budget_is_refused_at_save_and_at_start(team, api, settings):
    settings.JOB_MEMORY_BUDGET_MB = 64
    ws = team["acme"]
    Investment.objects.bulk_create([Investment(workspace=ws, title=f"i{k}", cost=1)
                                    for k in range(20)])
    analyst = api(team["analyst"])
    r = post(analyst, "/api/v1/scenarios/", {"workspace": "acme", "name": "big", "budget": 100,
                                             "robust_draws": 100_000})
    assert r.status_code == 400
    # planner/optimizer/sizing.py: model 20 x 16 KiB = 327,680 B; frontier 10 x 20 x 8 =
    # 1,600 B; robust 100,000 x (20 x 40 + 64 x 16) = 182,400,000 B; voi.py: 100,000 x 20 x 9 =
    # 18,000,000 B + 2,048 x 512 x 16 = 16,777,216 B; 217,506,496 B = 207.4 MiB.
    # 64 MiB = 67,108,864 B leave (67,108,864 - 17,106,496) // (1,824 + 180) = 24,951 draws.
    assert r.json() == {"robust_draws": [
        "robust_draws x items: 100,000 draws x 20 items need about 208 MiB with the model and "
        "the value of information, over the job memory budget of 64 MiB "
        "(JOB_MEMORY_BUDGET_MB): at most 24,951 draws fit"]}
    ok = post(analyst, "/api/v1/scenarios/", {"workspace": "acme", "name": "big", "budget": 100,
                                              "robust_draws": 20_000, "frontier_points": 0})
    assert ok.status_code == 201, ok.content
    # More items arrive after the save: the start checks again, before any job exists.
    Investment.objects.bulk_create([Investment(workspace=ws, title=f"j{k}", cost=1)
                                    for k in range(20)])
    r = post(analyst, f"/api/v1/scenarios/{ok.json()['id']}/run/", {})
    assert r.status_code == 400
    # 40 x 16 KiB = 655,360 B + 20,000 x (40 x 40 + 1,024) = 52,480,000 B + 20,000 x 40 x 9 =
    # 7,200,000 B + 16,777,216 B: 73.5 MiB; (67,108,864 - 17,432,576) // 2,984 = 16,647 draws.
    assert r.json() == {"robust_draws": [
        "robust_draws x items: 20,000 draws x 40 items need about 74 MiB with the model and "
        "the value of information, over the job memory budget of 64 MiB "
        "(JOB_MEMORY_BUDGET_MB): at most 16,647 draws fit"]}
    assert not OptimizationRun.objects.exists() and not Job.objects.exists()


# ----- 5. shares, min_coverage, quarters -------------------------------------------------------
@pytest.fixture
def segment_in_acme(team):  # type: ignore[no-untyped-def]
    from events import services as event_services
    from segments.models import Segment

    dataset = event_services.dataset_create(workspace=team["acme"], name="d", description="")
    return Segment.objects.create(workspace=team["acme"], dataset=dataset, name="pro",
                                  definition={"attribute": "plan", "op": "eq", "value": "pro"})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("shares", {"core": ["a", 1]},
     "core: give [min, max] as numbers with 0 <= min <= max <= 1"),
    ("shares", {"core": [None, 1]},
     "core: give [min, max] as numbers with 0 <= min <= max <= 1"),
    ("shares", {"core": [0.7, 1], "niche": [0.5, 1]},
     "the minimums add up to 1.2: no spend can meet them (at most 1)"),
    ("shares", {"core": [True, 1]},
     "core: give [min, max] as numbers with 0 <= min <= max <= 1"),
    ("min_coverage", {"junk": "x"}, "'junk' is not a segment of this workspace"),
    ("min_coverage", [1, 2], "give an object: segment id -> at least this many chosen items"),
    ("quarters", "2027Q1", 'give a list of quarters like ["2027Q1", "2027Q2"]'),
    ("quarters", ["2027Q1", None], "quarters[1]: None is not a quarter like \"2027Q1\""),
    ("quarters", ["2027Q1", "2027Q3"],
     "quarters[1]: '2027Q3' does not follow '2027Q1' (give consecutive quarters)"),
    ("quarters", [f"{2000 + k // 4}Q{k % 4 + 1}" for k in range(41)],
     "at most 40 quarters (10 years)"),
    ("capacity", {"growth|2027Q1": True}, '"growth|2027Q1": give a number from 0 to 1000000'),
    ("capacity", {"growth": 2}, '"growth": use "team|quarter"'),
    ("budget", True, "A valid number is required, not true or false."),
    ("time_limit", 0, "Ensure this value is greater than or equal to 1.0."),
])
def test_scenario_json_and_numbers_are_checked_at_save(team, api, field, value, message):
    r = post(api(team["analyst"]), "/api/v1/scenarios/",
             {"workspace": "acme", "name": "x", "budget": 100, field: value})
    assert r.status_code == 400
    assert r.json() == {field: [message]}
    assert not Scenario.objects.exists()


def test_min_coverage_and_capacity_fit_the_scenario(team, api, segment_in_acme):
    analyst = api(team["analyst"])
    seg = segment_in_acme.pk
    body = {"workspace": "acme", "name": "x", "budget": 100, "quarters": ["2027Q1", "2027Q2"]}
    r = post(analyst, "/api/v1/scenarios/", {**body, "min_coverage": {str(seg): -1}})
    assert r.json() == {"min_coverage": [f"segment {seg}: give a whole number of items from 0 "
                                         "to 1000"]}
    r = post(analyst, "/api/v1/scenarios/", {**body, "capacity": {"growth|2028Q1": 1}})
    assert r.json() == {"capacity": ['"growth|2028Q1": quarter 2028Q1 is not one of the '
                                     "scenario's quarters"]}
    r = post(analyst, "/api/v1/scenarios/", {**body, "quarters": [], "schedule": True})
    assert r.json() == {"schedule": ["scheduling needs quarters"]}
    r = post(analyst, "/api/v1/scenarios/", {**body, "min_coverage": {str(seg): 2},
                                             "capacity": {"growth|2027Q2": 1.5}})
    assert r.status_code == 201, r.content
    assert r.json()["min_coverage"] == {str(seg): 2}


def test_the_scenario_form_checks_the_same(team, client):
    client.force_login(team["analyst"])
    page = client.post("/w/acme/scenarios/", {
        "name": "page plan", "budget": "100", "shares": '{"core": ["a", 1]}',
        "quarters": "2027Q1, 2027Q3", "robust_draws": "1000000000", "frontier_points": "10",
        "time_limit": "30"})
    text = page.content.decode()
    assert page.status_code == 200
    for message in ("core: give [min, max] as numbers with 0 &lt;= min &lt;= max &lt;= 1",
                    "quarters[1]: &#x27;2027Q3&#x27; does not follow &#x27;2027Q1&#x27;",
                    "Ensure this value is less than or equal to 100000."):
        assert message in text, message
    assert not Scenario.objects.exists()


# ----- 12. dependency cycles, booleans as numbers ----------------------------------------------
def test_dependency_cycles_and_self_dependencies_are_refused_at_save(team, api, client):
    analyst = api(team["analyst"])
    a = post(analyst, "/api/v1/investments/", {**BASE, "title": "A"}).json()["id"]
    b = post(analyst, "/api/v1/investments/", {**BASE, "title": "B", "depends_on": [a]}).json()
    c = post(analyst, "/api/v1/investments/", {**BASE, "title": "C",
                                               "depends_on": [b["id"]]}).json()["id"]
    b = b["id"]
    r = analyst.patch(f"/api/v1/investments/{a}/", {"depends_on": [a]}, format="json")
    assert r.status_code == 400
    assert r.json() == {"depends_on": [f"#{a} 'A' cannot depend on itself"]}
    r = analyst.patch(f"/api/v1/investments/{a}/", {"depends_on": [c], "title": "A2"},
                      format="json")
    assert r.status_code == 400
    assert r.json() == {"depends_on": [
        f"dependency cycle: #{a} 'A' -> #{c} 'C' -> #{b} 'B' -> #{a} 'A'"]}
    assert Investment.objects.get(pk=a).title == "A"  # nothing half-written
    assert list(Investment.objects.get(pk=a).depends_on.all()) == []
    client.force_login(team["analyst"])
    page = client.post(f"/w/acme/investments/{a}/edit/", {
        "title": "A", "roadmap": "core", "cost": "50", "effort": "{}", "duration_quarters": "1",
        "adoption": "0.2", "value_basis": "ltv_90", "horizon_months": "12", "impact": "1",
        "confidence": "0.5", "ease": "5", "depends_on": [b]})
    assert page.status_code == 200
    assert (f"dependency cycle: #{a} &#x27;A&#x27; -&gt; #{b} &#x27;B&#x27; -&gt; "
            f"#{a} &#x27;A&#x27;") in page.content.decode()
    assert list(Investment.objects.get(pk=a).depends_on.all()) == []


@pytest.mark.parametrize("field", ["cost", "adoption", "impact", "confidence", "ease",
                                   "assumed_value_per_user", "assumed_lift"])
def test_booleans_are_not_numbers(team, api, field):
    r = post(api(team["analyst"]), "/api/v1/investments/", {**BASE, field: True})
    assert r.status_code == 400
    assert r.json() == {field: ["A valid number is required, not true or false."]}
    r = post(api(team["analyst"]), "/api/v1/investments/", {**BASE, "effort": {"web": True}})
    assert r.json() == {"effort": ['"web": give a number of effort units from 0 to 1000000']}
    assert not Investment.objects.exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("adoption", 1.5, "Ensure this value is less than or equal to 1.0."),
    ("horizon_months", 61, "Ensure this value is less than or equal to 60."),
    ("duration_quarters", 0, "Ensure this value is greater than or equal to 1."),
    ("assumed_reach", 10**10, "Ensure this value is less than or equal to 1000000000."),
    ("assumed_lift", -2, "Ensure this value is greater than or equal to -1.0."),
    ("impact", 11, "Ensure this value is less than or equal to 10.0."),
    ("ease", 0.5, "Ensure this value is greater than or equal to 1.0."),
    ("effort", {"web": 1e7}, '"web": give a number of effort units from 0 to 1000000'),
    ("effort", {"web": 0.001}, "the total effort is 0 (none recorded) or at least 0.01 units"),
])
def test_investment_numbers_have_ranges(team, api, field, value, message):
    r = post(api(team["analyst"]), "/api/v1/investments/", {**BASE, field: value})
    assert r.status_code == 400
    assert r.json() == {field: [message]}


def test_values_never_leave_their_domain(team):
    """Whatever the sources say (a snapshot's signal is data), the stored value is finite."""
    inv = Investment.objects.create(workspace=team["acme"], title="x", cost=1,
                                    assumed_reach=1_000_000_000, assumed_value_per_user=1e6,
                                    assumed_lift=-1, adoption=1, horizon_months=60,
                                    value_basis="revenue_per_active_user")
    services.investment_revalue(investment=inv)
    inv.refresh_from_db()
    # 1e9 x 1e6 x -1 x 0.2 x 60 = -1.2e16: capped at the domain's -1e15 (every input is
    # exact, so the propagated range is the value itself).
    assert (inv.expected_value, inv.value_low, inv.value_high) == (-1e15, -1e15, -1e15)
    assert inv.value_sources["capped"] == (
        "the computed value -1.2e+16 is outside -1e+15..1e+15: capped")
    assert all(math.isfinite(e.expected_value) for e in ValueEstimate.objects.all())


# ----- upgrading: rows stored before the domains -----------------------------------------------
BEFORE = [("accounts", "0002_rename_tables"), ("experiments", "0002_rename_tables"),
          ("planner", "0007_experiments_moved_out"), ("segments", "0007_behaviour_moved_out")]


@pytest.mark.django_db(transaction=True)
def test_the_domain_migrations_move_stored_rows_into_range():
    """A database holding what the domains now refuse (issue 16's confidence 1e308, cost
    1e300, robust_draws 10^9) still migrates: the rows move into range first."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old = MigrationExecutor(connection).loader.project_state(BEFORE).apps
        ws = old.get_model("accounts", "Workspace").objects.create(
            slug="old", name="Old", min_segment_size=0, refresh_every_days=10**6)
        old.get_model("planner", "Investment").objects.create(
            workspace_id=ws.pk, title="old", cost=1e300, confidence=1e308, impact=-3, ease=0,
            adoption=2, effort_total=0.001, expected_value=1e300)
        old.get_model("planner", "Scenario").objects.create(
            workspace_id=ws.pk, name="old", budget=-5, robust_draws=10**9, frontier_points=1,
            time_limit=0.01)
        old.get_model("experiments", "Hypothesis").objects.create(
            workspace_id=ws.pk, statement="old", expected_lift=1e308, measured_lift=-1e9)
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        from accounts.models import Workspace
        from experiments.models import Hypothesis

        ws = Workspace.objects.get(slug="old")
        assert (ws.min_segment_size, ws.refresh_every_days) == (1, 3650)
        inv = Investment.objects.get(title="old")
        assert (inv.cost, inv.confidence, inv.impact, inv.ease, inv.adoption,
                inv.effort_total, inv.expected_value) == (1e12, 1.0, 0.0, 1.0, 1.0, 0.0, 1e15)
        sc = Scenario.objects.get(name="old")
        assert (sc.budget, sc.robust_draws, sc.frontier_points, sc.time_limit) == (
            0.0, 100_000, 2, 1.0)
        hyp = Hypothesis.objects.get(statement="old")
        assert (hyp.expected_lift, hyp.measured_lift) == (10.0, -100.0)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_investment_and_scenario_forms_refuse_json_nested_too_deeply(client, team):
    client.force_login(team["admin"])
    deep = '{"a": ' * 5000 + "1" + "}" * 5000
    r = client.post("/w/acme/investments/new/", {"title": "Deep", "roadmap": "core",
                                                  "cost": "10", "effort": deep})
    assert r.status_code == 200
    assert b"not valid JSON: nested deeper than 64 levels" in r.content
    r = client.post("/w/acme/scenarios/", {"name": "Deep", "budget": "100", "shares": deep})
    assert r.status_code == 200
    assert b"not valid JSON: nested deeper than 64 levels" in r.content
