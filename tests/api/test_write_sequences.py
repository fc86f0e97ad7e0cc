"""Generated sequences of API writes: no accepted write may break a read.

A hypothesis ``RuleBasedStateMachine`` (hand-written: schemathesis 4's stateful mode needs
OpenAPI links, which the schema does not declare) walks acme's world (conftest.py) with a
sequence of writes drawn from every writable endpoint of /api/v1/: creates, updates,
deletes and actions of datasets, imports, segments, refreshes, analyses, hypotheses
(+transition), experiments (+start, power, summaries, assignments, analyze, conclude), investments,
scenarios (+run), decisions and webhooks (+test). Each body starts from a valid one and has
some of its fields replaced by generated values: valid ones, or hostile ones (huge, tiny,
negative, NaN / Infinity as JSON tokens and as text, booleans and text for numbers, nulls,
empty lists, unicode, 6,000-level nested JSON, ids of the other workspace's objects, of
nothing). Path ids are acme's objects (the world's and those the sequence made), now and
then the other workspace's or none.

No request may answer 5xx (or raise). After each accepted write (2xx) every page of the
workspace and every list endpoint of the API must answer 200 to acme's admin. Jobs run in
process at commit (captured on-commit callbacks, Celery eager); webhook deliveries are
recorded, never sent. Each example is rolled back (a savepoint), so examples start from the
same world.

Bounded for CI (derandomized, no example database, no deadline). Run it longer with
``WRITE_SEQUENCES_EXAMPLES=500 WRITE_SEQUENCES_STEPS=30`` (``WRITE_SEQUENCES_SHRINK=1`` to
shrink a failure to its shortest sequence).
"""

from __future__ import annotations

import json
import os
import traceback
from collections import Counter
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, TestCase
from drf_spectacular.generators import EndpointEnumerator
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from events import services as event_services
from experiments.models import Experiment, Hypothesis
from integrations import webhooks
from planner.models import Investment, OptimizationRun, Scenario
from segments import segment_services
from segments.models import Segment

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("WRITE_SEQUENCES_EXAMPLES", "20"))
STEPS = int(os.environ.get("WRITE_SEQUENCES_STEPS", "10"))
SHRINK = os.environ.get("WRITE_SEQUENCES_SHRINK") == "1"
DEEP = "__deep__"  # stands for a list nested 6,000 levels (json.dumps cannot write one)
NOT_LISTED = {"/api/v1/schema/", "/api/v1/docs/"}
# Reads about one workspace's roadmap name it (a 400 naming `workspace` without).
PER_WORKSPACE = {"/api/v1/roadmap-versions/current/", "/api/v1/roadmap-versions/export/"}
STATS = {"examples": 0, "steps": 0, "accepted": 0, "refused": 0}
ACCEPTED: Counter[str] = Counter()  # accepted writes per operation, printed at the end

# -- values ------------------------------------------------------------------------------
HOSTILE = st.sampled_from([
    1e308, -1e308, 1e-308, -1, -1e9, 0, 10**30, float("nan"), float("inf"), float("-inf"),
    "NaN", "Infinity", "-Infinity", "1e999", "abc", "", "  ", True, False, None, [], {},
    [None], {"a": {"b": [1, {"c": None}]}}, DEEP, "ünï©ødé ✓ 🚀 \u202e\u0000x", "x" * 6000,
    -2**63, 2**63, "12", "0.5",
])
TEXT = st.text(max_size=40) | st.sampled_from(["ok", "Ünïcode ✓", "x" * 300])


def num(lo: float, hi: float) -> st.SearchStrategy[Any]:
    return st.floats(lo, hi, allow_nan=False) | st.integers(int(lo), int(hi))


def mixed(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values, one in three hostile."""
    return st.one_of(valid, valid, HOSTILE)


DEFINITIONS = st.sampled_from([
    {"attribute": "plan", "op": "eq", "value": "free"},
    {"all": [{"attribute": "plan", "op": "eq", "value": "pro"},
             {"event": "purchase", "min_count": 1}]},
    {"event": "signup", "min_count": 1, "within_days": 30},
    {"any": []}, {"all": []}, {"event": "purchase", "min_count": -1},
    {"attribute": "plan", "op": "gt", "value": float("nan")}, {"event": 5},
])
METRIC = st.sampled_from([
    {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30},
    {"name": "rev", "kind": "revenue", "event": "purchase", "window_days": 7},
    {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 10**9},
])
ARMS = st.sampled_from([
    [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
    [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}, {"name": "c", "weight": 1}],
    [{"name": "control", "weight": 0.5}], [],
    [{"name": "control", "weight": -1}, {"name": "treatment", "weight": 1e308}],
])


class Ref:
    """A field naming an object of ``kind`` (many: a list of them)."""

    def __init__(self, kind: str, many: bool = False) -> None:
        self.kind, self.many = kind, many


# -- the writes ---------------------------------------------------------------------------
# (method, path, kind of the object in the path, base body, fields to vary, kind created)
OPS: list[tuple[str, str, str | None, dict[str, Any], dict[str, Any], str | None]] = [
    ("POST", "datasets/", None, {"workspace": "acme", "name": "d"},
     {"name": TEXT, "description": TEXT, "workspace": st.sampled_from(["acme", "other"])},
     "own_dataset"),
    ("DELETE", "datasets/{}/", "own_dataset", {}, {}, None),
    ("POST", "datasets/{}/erase/", "own_dataset", {"user_id": "u1", "reason": "seq"},
     {"user_id": TEXT, "reason": TEXT}, None),
    ("IMPORT", "imports/", None, {}, {}, None),
    ("ASSIGN", "experiments/{}/assignments/", "experiment", {}, {}, None),
    ("POST", "segments/", None,
     {"dataset": Ref("dataset"), "name": "s", "definition": {"event": "signup",
                                                             "min_count": 1}},
     {"name": TEXT, "definition": DEFINITIONS, "kind": st.sampled_from(["rule", "rfm"]),
      "dataset": Ref("dataset")}, "segment"),
    ("PATCH", "segments/{}/", "segment", {},
     {"name": TEXT, "description": TEXT, "definition": DEFINITIONS, "archived": st.booleans()},
     None),
    ("DELETE", "segments/{}/", "segment", {}, {}, None),
    ("POST", "segments/{}/sweep/", "segment", {"path": "all[1]", "thresholds": [1, 2]},
     {"path": st.sampled_from(["all[0]", "all[1]", "x", "all[99]"]),
      "thresholds": st.lists(num(-5, 10**6), max_size=5),
      "window_days": st.lists(num(-5, 10**6), max_size=5)}, None),
    ("POST", "refreshes/", None, {"dataset": Ref("dataset")}, {"dataset": Ref("dataset")},
     None),
    ("POST", "analyses/", None,
     {"dataset": Ref("dataset"), "kind": "funnel", "params": {"steps": ["signup", "purchase"]}},
     {"kind": st.sampled_from(["funnel", "paths", "retention", "discovery"]),
      "params": st.fixed_dictionaries({}, optional={
          "steps": st.lists(st.sampled_from(["signup", "purchase", "nope"]), max_size=4)
          | mixed(num(-1, 100)), "window_days": mixed(num(-1, 10**6)),
          "max_periods": mixed(num(-1, 10**4)), "outcome_days": mixed(num(-1, 10**6)),
          "top": mixed(num(-1, 10**6)), "period": st.sampled_from(["day", "week", "x"]),
          "mode": mixed(TEXT), "cohort_by": mixed(TEXT), "return_on": mixed(TEXT),
          "start_event": mixed(TEXT), "end_event": mixed(TEXT), "outcome_event": mixed(TEXT),
          "breakdown": mixed(TEXT), "exclusions": mixed(st.lists(TEXT, max_size=2)),
          "segment": HOSTILE | st.integers(-1, 10**12),
          "breakdown_segments": mixed(st.lists(st.integers(-1, 10**12), max_size=2)),
          "events": mixed(st.lists(TEXT, max_size=3)),
          "thresholds": mixed(st.lists(num(-5, 10**6), max_size=3)),
          "windows": mixed(st.lists(num(-5, 10**6), max_size=3))})}, "analysis"),
    ("POST", "analyses/{}/save/", "analysis", {"name": "dropped", "step": 1},
     {"name": TEXT, "step": num(-2, 10)}, "segment"),
    ("POST", "hypotheses/", None,
     {"workspace": "acme", "statement": "It lifts buys", "metric": "bought",
      "segments": Ref("segment", many=True)},
     {"statement": TEXT, "mechanism": TEXT, "expected_lift": num(-10, 10),
      "expected_lift_low": num(-10, 10), "expected_lift_high": num(-10, 10),
      "segments": Ref("segment", many=True), "guardrail_metrics": st.lists(TEXT, max_size=3),
      "exploratory": st.booleans()}, "hypothesis"),
    ("PUT", "hypotheses/{}/", "hypothesis",
     {"statement": "Bundles lift revenue", "metric": "bought",
      "segments": Ref("segment", many=True)},
     {"expected_lift": num(-10, 10), "metric": TEXT}, None),
    ("PATCH", "hypotheses/{}/", "hypothesis", {},
     {"mechanism": TEXT, "expected_lift": num(-10, 10), "measured_lift": num(-10, 10),
      "segments": Ref("segment", many=True)}, None),
    ("DELETE", "hypotheses/{}/", "hypothesis", {}, {}, None),
    ("POST", "hypotheses/{}/transition/", "hypothesis", {"status": "prioritized"},
     {"status": st.sampled_from(["proposed", "prioritized", "testing", "validated",
                                 "invalidated", "inconclusive"]), "note": TEXT}, None),
    ("POST", "experiments/", None,
     {"hypothesis": Ref("hypothesis"), "name": "test", "kind": "ab",
      "dataset": Ref("dataset"), "arms": [{"name": "control", "weight": 0.5},
                                          {"name": "treatment", "weight": 0.5}],
      "primary_metric": {"name": "bought", "kind": "conversion", "event": "purchase",
                         "window_days": 30}, "guardrail_metrics": [], "data_source": "summary"},
     {"arms": ARMS, "primary_metric": METRIC, "mde": num(-1, 10), "alpha": num(-1, 2),
      "power": num(-1, 2), "segment": Ref("segment"), "cuped_pre_days": num(-5, 10**6),
      "breakdown_segments": Ref("segment", many=True),
      "kind": st.sampled_from(["ab", "holdout", "quasi", "x"]),
      "data_source": st.sampled_from(["summary", "events", "assignments"]),
      "sequential": st.booleans()}, "experiment"),
    ("PATCH", "experiments/{}/", "experiment", {},
     {"mde": num(-1, 10), "alpha": num(-1, 2), "power": num(-1, 2), "arms": ARMS,
      "primary_metric": METRIC, "name": TEXT}, None),
    ("DELETE", "experiments/{}/", "experiment", {}, {}, None),
    ("POST", "experiments/{}/start/", "experiment", {}, {}, None),
    ("POST", "experiments/{}/power/", "experiment", {},
     {"baseline_mean": num(-1, 10**6), "baseline_sd": num(-1, 10**6),
      "daily_traffic": num(-1, 10**9), "cuped_r2": num(-1, 2), "cluster_size": num(-1, 10**6),
      "icc": num(-1, 2)}, None),
    ("PUT", "experiments/{}/summaries/", "experiment",
     {"rows": [{"arm": "control", "metric": "bought", "n": 1000, "sum": 100, "sum_sq": 100},
               {"arm": "treatment", "metric": "bought", "n": 1000, "sum": 130,
                "sum_sq": 130}]},
     {"rows": st.lists(st.fixed_dictionaries(
         {"arm": st.sampled_from(["control", "treatment", "zz"]),
          "metric": st.sampled_from(["bought", "rev"]),
          "n": mixed(num(0, 10**7)), "sum": mixed(num(-10**7, 10**7)),
          "sum_sq": mixed(num(0, 10**9))}), max_size=4)}, None),
    ("POST", "experiments/{}/analyze/", "experiment", {}, {}, None),
    ("POST", "experiments/{}/conclude/", "experiment",
     {"outcome": "validated", "now_believe": "it works", "decision": "ship it",
      "override_reason": "if the rule disagrees"},
     {"outcome": st.sampled_from(["validated", "invalidated", "inconclusive"]),
      "override_reason": TEXT,
      "tags": st.lists(TEXT, max_size=3), "scope": TEXT, "happened": TEXT}, "learning"),
    ("POST", "investments/", None,
     {"workspace": "acme", "title": "Bundles", "roadmap": "core", "cost": 50,
      "target_segments": Ref("segment", many=True)},
     {"cost": num(-10, 10**9), "effort": num(-10, 10**6), "duration_quarters": num(-2, 40),
      "adoption": num(-1, 2), "impact": num(-1, 10), "confidence": num(-1, 2),
      "ease": num(-1, 20), "assumed_reach": num(-1, 10**9),
      "assumed_value_per_user": num(-10, 10**6), "assumed_lift": num(-1, 10),
      "horizon_months": num(-1, 240), "hypotheses": Ref("hypothesis", many=True),
      "depends_on": Ref("investment", many=True), "exclusion_group": TEXT,
      "must_do": st.booleans(), "must_not": st.booleans(),
      "value_basis": st.sampled_from(["ltv_90", "revenue_30", "manual", "x"]),
      "roadmap": TEXT}, "investment"),
    ("PUT", "investments/{}/", "investment",
     {"title": "Checkout v2", "roadmap": "core", "cost": 80},
     {"cost": num(-10, 10**9), "confidence": num(-1, 2), "depends_on": Ref("investment",
                                                                            many=True)}, None),
    ("PATCH", "investments/{}/", "investment", {},
     {"cost": num(-10, 10**9), "effort": num(-10, 10**6), "confidence": num(-1, 2),
      "impact": num(-1, 10), "ease": num(-1, 20), "adoption": num(-1, 2),
      "depends_on": Ref("investment", many=True),
      "target_segments": Ref("segment", many=True), "must_do": st.booleans()}, None),
    ("DELETE", "investments/{}/", "investment", {}, {}, None),
    ("POST", "scenarios/", None, {"workspace": "acme", "name": "lean", "budget": 50},
     {"budget": num(-10, 10**9), "shares": st.dictionaries(
         st.sampled_from(["core", "growth", ""]), mixed(num(-1, 2)), max_size=3),
      "capacity": st.dictionaries(st.sampled_from(["1", "2", "q"]), mixed(num(-1, 10**6)),
                                  max_size=3),
      "quarters": num(-1, 40), "min_coverage": st.dictionaries(
          st.sampled_from(["segment", "x"]), mixed(num(-1, 2)), max_size=2),
      "schedule": st.booleans(), "robust_draws": num(-1, 10**9),
      "frontier_points": num(-1, 10**6), "time_limit": num(-1, 10**6)}, "scenario"),
    ("PATCH", "scenarios/{}/", "scenario", {},
     {"budget": num(-10, 10**9), "robust_draws": num(-1, 10**4),
      "frontier_points": num(-1, 50), "quarters": num(-1, 40), "schedule": st.booleans()},
     None),
    ("DELETE", "scenarios/{}/", "scenario", {}, {}, None),
    ("POST", "scenarios/{}/run/", "scenario", {}, {}, "run"),
    ("POST", "runs/{}/decide/", "run",
     {"investment": Ref("investment"), "verdict": "approve", "rationale": "best"},
     {"verdict": st.sampled_from(["approve", "defer", "reject", "x"]), "rationale": TEXT,
      "investment": Ref("investment")}, None),
    ("POST", "webhooks/", None,
     {"workspace": "acme", "url": "https://hooks.example.com/b",
      "events": ["investment.changed"]},
     {"url": st.sampled_from(["https://hooks.example.com/c", "http://127.0.0.1:6379/",
                              "http://169.254.169.254/", "ftp://x", "https://[::1]/",
                              "https://nope.invalid/"]),
      "events": st.lists(st.sampled_from(["investment.changed", "roadmap.approved",
                                          "experiment.concluded", "segment.refreshed",
                                          "x"]), max_size=3),
      "description": TEXT, "active": st.booleans()}, "webhook"),
    ("PATCH", "webhooks/{}/", "webhook", {},
     {"active": st.booleans(), "description": TEXT,
      "events": st.lists(st.sampled_from(["roadmap.approved", "x"]), max_size=2)}, None),
    ("DELETE", "webhooks/{}/", "webhook", {}, {}, None),
    ("POST", "webhooks/{}/test/", "webhook", {}, {}, None),
]


def _encode(body: dict[str, Any]) -> str:
    deep = "[" * 6000 + "]" * 6000
    return json.dumps(body, allow_nan=True).replace(json.dumps(DEEP), deep)


def _api_lists() -> list[str]:
    paths = sorted({p for p, _, method, _ in EndpointEnumerator().get_api_endpoints()
                    if method == "GET" and "{" not in p and p not in NOT_LISTED})
    assert len(paths) >= 15, paths
    return [f"{p}?workspace=acme" if p in PER_WORKSPACE else p for p in paths]


def _foreign(team: dict[str, Any]) -> dict[str, list[int]]:
    """Objects of the other workspace, whose ids a write may name."""
    other = team["other"]
    dataset = event_services.dataset_create(workspace=other, name="theirs", description="")
    segment = segment_services.segment_create(dataset=dataset, name="theirs",
                                              definition={"event": "signup", "min_count": 1})
    hypothesis = Hypothesis.objects.create(workspace=other, statement="theirs")
    investment = Investment.objects.create(workspace=other, title="theirs", roadmap="core",
                                           cost=1)
    scenario = Scenario.objects.create(workspace=other, name="theirs", budget=1)
    return {"dataset": [dataset.pk], "own_dataset": [dataset.pk], "segment": [segment.pk],
            "hypothesis": [hypothesis.pk], "investment": [investment.pk],
            "scenario": [scenario.pk], "experiment": [], "run": [], "webhook": [],
            "analysis": [], "learning": []}


def test_write_sequences_never_break_a_read(world, team, api, monkeypatch):
    monkeypatch.setattr(webhooks, "post", lambda *a, **k: webhooks.AttemptResult(
        204, "", "", 1))
    admin_api = api(team["admin"])
    pages = Client(raise_request_exception=True)
    pages.force_login(team["admin"])
    acme = team["acme"]
    lists = _api_lists()
    foreign = _foreign(team)
    start = {"dataset": [world["dataset"].pk], "own_dataset": [world["scratch"].pk],
             "segment": [world["segment"].pk],
             "hypothesis": [world[k].pk for k in ("hypothesis", "hypothesis_x",
                                                  "hypothesis_done")],
             "experiment": [world["experiment"].pk],
             "investment": [world["investment"].pk], "scenario": [world["scenario"].pk],
             "run": [world["run"].pk], "webhook": [world["webhook"].pk],
             "analysis": [world["analysis"].pk], "learning": [world["learning"].pk]}

    def call(method: str, path: str, **kwargs: Any) -> Any:
        """A request; a 5xx or an exception fails the test naming the request."""
        client = pages if path.startswith("/w/") else admin_api
        try:
            response = client.generic(method, path, **kwargs)
        except Exception as exc:
            raise AssertionError(f"{method} {path} {kwargs.get('data', '')!s:.2000} raised:\n"
                                 f"{traceback.format_exc()}") from exc
        assert response.status_code < 500, (
            f"{method} {path} {kwargs.get('data', '')!s:.2000} -> {response.status_code}: "
            f"{response.content[:3000]!r}")
        return response

    def check_reads() -> None:
        latest = {
            "segments": Segment.objects.filter(workspace=acme),
            "hypotheses": Hypothesis.objects.filter(workspace=acme),
            "experiments": Experiment.objects.filter(hypothesis__workspace=acme),
            "investments": Investment.objects.filter(workspace=acme),
            "runs": OptimizationRun.objects.filter(workspace=acme),
        }
        urls = [f"/w/acme/{p}" for p in ("", "backlog/", "segments/", "segments/compare/",
                                         "hypotheses/", "learnings/", "scenarios/",
                                         "scenarios/compare/", "jobs/", "audit/", "brief/",
                                         "behaviour/", "webhooks/", "roadmap/", "calibration/",
                                         "value-models/")]
        for prefix, qs in latest.items():
            urls += [f"/w/acme/{prefix}/{pk}/"
                     for pk in qs.order_by("-pk").values_list("pk", flat=True)[:2]]
        urls += [f"/w/acme/datasets/{world['dataset'].pk}/"]
        for url in urls + lists:
            response = call("GET", url)
            assert response.status_code == 200, (url, response.status_code,
                                                 response.content[:2000])

    class WriteSequences(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            STATS["examples"] += 1
            self.ids = {k: list(v) for k, v in start.items()}
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

        def ref(self, data: st.DataObject, kind: str) -> Any:
            mine = self.ids.get(kind, [])
            choices = [st.sampled_from(mine)] * 3 if mine else []
            choices += [st.sampled_from(foreign[kind])] if foreign[kind] else []
            choices += [st.integers(-1, 10**12), HOSTILE]
            return data.draw(st.one_of(choices))

        def value(self, data: st.DataObject, spec: Any) -> Any:
            if isinstance(spec, Ref):
                if spec.many:
                    n = data.draw(st.integers(0, 2))
                    return [self.ref(data, spec.kind) for _ in range(n)] if n < 2 else \
                        data.draw(st.sampled_from([[], None, "1,2", [[1]]]))
                return self.ref(data, spec.kind)
            return data.draw(mixed(spec))

        def target(self, data: st.DataObject, kind: str) -> Any:
            mine = self.ids.get(kind, [])
            if mine and data.draw(st.integers(0, 5)):
                return data.draw(st.sampled_from(mine))
            return data.draw(st.sampled_from([*foreign.get(kind, []), 0, 10**12]))

        @rule(data=st.data())
        def write(self, data: st.DataObject) -> None:
            STATS["steps"] += 1
            method, path, on, base, fields, makes = data.draw(st.sampled_from(OPS))
            self.op = f"{method} {path}"
            if method in ("IMPORT", "ASSIGN"):
                return self.upload(data, method)
            pk = self.target(data, on) if on else None
            url = "/api/v1/" + path.format(pk)
            body = {k: self.value(data, v) if isinstance(v, Ref) else v
                    for k, v in base.items()}
            for name in data.draw(st.lists(st.sampled_from(sorted(fields)), unique=True,
                                           max_size=4) if fields else st.just([])):
                body[name] = self.value(data, fields[name])
            kwargs: dict[str, Any] = {}
            if method != "DELETE" or body:
                kwargs = {"data": _encode(body), "content_type": "application/json"}
            with TestCase.captureOnCommitCallbacks(execute=True):
                response = call(method, url, **kwargs)
            self.after(response, method, on, pk, makes)

        def upload(self, data: st.DataObject, kind: str) -> None:
            """A small CSV: events into a dataset the sequence made (imports write the event
            store, which a rolled-back example does not undo), or an experiment's
            assignments."""
            names = data.draw(st.lists(st.sampled_from(["signup", "purchase", "ünï ✓", "",
                                                        "x" * 300]), min_size=1, max_size=3))
            if kind == "IMPORT":
                pk = self.target(data, "own_dataset")
                url, field, body = "/api/v1/imports/", "events", {"dataset": pk}
                revenue = data.draw(st.sampled_from(["10", "", "NaN", "1e308", "-5", "abc"]))
                text = "user_id,event,timestamp,revenue\n" + "".join(
                    f"u{i},{n},2025-02-0{1 + i}T00:00:00Z,{revenue}\n"
                    for i, n in enumerate(names))
            else:
                pk = self.target(data, "experiment")
                url, field, body = f"/api/v1/experiments/{pk}/assignments/", "file", {}
                when = data.draw(st.sampled_from(["2025-01-01T00:00:00Z", "", "yesterday",
                                                  "9999-12-31T23:59:59Z"]))
                arms = data.draw(st.lists(st.sampled_from(["control", "treatment", "zz", ""]),
                                          min_size=1, max_size=20))
                text = "user_id,arm,assigned_at\n" + "".join(
                    f"u{i},{arm},{when}\n" for i, arm in enumerate(arms))
            body[field] = SimpleUploadedFile("seq.csv", text.encode(), content_type="text/csv")
            with TestCase.captureOnCommitCallbacks(execute=True):
                try:
                    response = admin_api.post(url, body, format="multipart")
                except Exception as exc:
                    raise AssertionError(f"POST {url} {text!r}:\n"
                                         f"{traceback.format_exc()}") from exc
            assert response.status_code < 500, (url, text, response.content[:3000])
            self.after(response, "POST", None, None, None)

        def after(self, response: Any, method: str, on: str | None, pk: Any,
                  makes: str | None) -> None:
            if not 200 <= response.status_code < 300:
                STATS["refused"] += 1
                return
            STATS["accepted"] += 1
            ACCEPTED[self.op] += 1
            if method == "DELETE" and on and pk in self.ids[on]:
                self.ids[on].remove(pk)
            if makes and response.content:
                made = response.json().get("id")
                if isinstance(made, int):
                    self.ids[makes].append(made)
                    if makes == "own_dataset":
                        self.ids["dataset"].append(made)
            check_reads()

    run_state_machine_as_test(WriteSequences, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=True, database=None,
        deadline=None, print_blob=False, suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink] if SHRINK else [Phase.generate]))
    print(f"write sequences: {STATS}\naccepted per operation: {dict(ACCEPTED)}")
    assert STATS["accepted"] > 0, STATS
