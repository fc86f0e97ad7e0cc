"""Issue 14 items 4 and 5 through the API and the pages: the Bayesian read beside the
frequentist one, the workspace's decision rule (and its prior's bad input), and concluding
with no outcome pre-selected, a proposal with its checks, and overrides that need a reason."""

from __future__ import annotations

import math
import re

import pytest

from experiments import bayes
from experiments import services as xs
from experiments.models import DecisionRule, Experiment, Hypothesis, Learning

pytestmark = pytest.mark.django_db

BOUGHT = {"name": "bought", "kind": "conversion", "event": "purchase", "window_days": 30}


def make(team, api, control, treatment, name="A/B"):  # type: ignore[no-untyped-def]
    """An analyzed A/B test on per-arm summaries: (conversions, n) per arm."""
    hyp = Hypothesis.objects.create(workspace=team["acme"], statement="Checklist lifts buying",
                                    expected_lift=0.1)
    client = api(team["analyst"])
    r = client.post("/api/v1/experiments/", {
        "hypothesis": hyp.pk, "name": name, "kind": "ab", "data_source": "summary",
        "arms": [{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}],
        "primary_metric": BOUGHT, "mde": 0.05}, format="json")
    assert r.status_code == 201, r.content
    x = Experiment.objects.get(pk=r.json()["id"])
    xs.summaries_set(experiment=x, rows=[
        {"arm": "control", "metric": "bought", "n": control[1], "sum": control[0],
         "sum_sq": control[0]},
        {"arm": "treatment", "metric": "bought", "n": treatment[1], "sum": treatment[0],
         "sum_sq": treatment[0]}])
    xs.experiment_analyze(x)
    return x, hyp, client


CONCLUDE = {"now_believe": "no measurable effect", "decision": "keep as is"}


# ----- the Bayesian read in the API, under the workspace's prior ----------------------------------
def test_the_api_shows_both_reads_and_the_prior(team, api):
    x, _, client = make(team, api, (500, 10000), (505, 10000))
    body = client.get(f"/api/v1/experiments/{x.pk}/").json()
    assert body["bayesian"]["prior"]["proper"] is False
    row = body["bayesian"]["rows"][0]
    expected = bayes.bayes_read(bayes.Moments.of_proportion(10000, 500),
                                bayes.Moments.of_proportion(10000, 505), relative=True)
    assert row["relative"]["chance_to_win"] == pytest.approx(expected.chance_to_win, abs=1e-12)
    assert row["relative"]["ci"] == pytest.approx(list(expected.ci), abs=1e-12)
    assert row["relative"]["risk"] == pytest.approx(list(expected.risk), abs=1e-12)
    # a flat prior: the posterior mean is the estimate, the chance is Phi(estimate / se)
    freq = body["result"]["rows"][0]
    assert row["relative"]["expected"] == pytest.approx(freq["relative"], rel=1e-12)
    assert row["absolute"]["chance_to_win"] == pytest.approx(
        0.5 * math.erfc(-freq["absolute"] / freq["absolute_se"] / math.sqrt(2)), rel=1e-9)
    # the proposal is in the API too, read-only
    assert body["proposal"]["outcome"] == "inconclusive"
    assert [c["name"] for c in body["proposal"]["checks"]] == [
        "sample ratio", "primary estimate", "primary effect", "guardrails"]


def test_a_proper_prior_shrinks_the_next_analysis(team, api):
    x, _, _ = make(team, api, (1000, 10000), (1078, 10000))
    admin = api(team["admin"])
    r = admin.patch("/api/v1/decision-rules/acme/", {
        "read": "bayesian", "prior_proper": True, "prior_mean": 0.0, "prior_variance": 0.0004},
        format="json")
    assert r.status_code == 200, r.content
    assert r.json()["updated_by"] == "admin"
    xs.experiment_analyze(x)
    x.refresh_from_db()
    assert x.result["bayes_prior"]["proper"] is True
    assert x.result["bayes_prior"]["variance"] == 0.0004
    got = x.result["rows"][0]["bayes"]["relative"]
    # by hand: estimate 0.078 with variance v shrunk towards 0 with weight 1/0.0004
    pc, pt = 0.1, 0.1078
    v = pt * (1 - pt) / (pc ** 2 * 1e4) + pc * (1 - pc) * pt ** 2 / (pc ** 4 * 1e4)
    mean = (0.078 / v) / (1 / v + 1 / 0.0004)
    assert got["expected"] == pytest.approx(mean, rel=1e-9)
    assert got["stddev"] == pytest.approx(math.sqrt(1 / (1 / v + 1 / 0.0004)), rel=1e-9)


@pytest.mark.parametrize("variance", [0, -0.1, "x", None])
def test_a_prior_with_non_positive_variance_is_refused_naming_the_field(team, api, variance):
    r = api(team["admin"]).patch("/api/v1/decision-rules/acme/",
                                 {"read": "bayesian", "prior_proper": True,
                                  "prior_variance": variance}, format="json")
    assert r.status_code == 400
    assert list(r.json()) == ["prior_variance"]
    assert not DecisionRule.objects.exists()  # nothing half-saved (read stays frequentist)


def test_the_decision_rule_is_changed_by_the_manage_role_only(team, api):
    assert api(team["analyst"]).patch("/api/v1/decision-rules/acme/", {"read": "bayesian"},
                                      format="json").status_code == 403
    assert api(team["outsider"]).get("/api/v1/decision-rules/acme/").status_code == 404
    body = api(team["viewer"]).get("/api/v1/decision-rules/acme/").json()
    assert (body["read"], body["chance_to_win"], body["prior_proper"],
            body["prior_variance"]) == ("frequentist", 0.95, False, 0.09)
    r = api(team["admin"]).patch("/api/v1/decision-rules/acme/", {"chance_to_win": 0.3},
                                 format="json")
    assert r.status_code == 400 and list(r.json()) == ["chance_to_win"]


def test_the_decision_rule_page_refuses_a_non_positive_prior_variance(team, client):
    client.force_login(team["admin"])
    r = client.post("/w/acme/experiments/decision-rule/", {
        "read": "bayesian", "chance_to_win": "0.95", "risk_tolerance": "0.0025",
        "prior_proper": "on", "prior_mean": "0", "prior_variance": "0"})
    assert r.status_code == 200
    assert r.context["form"].errors == {
        "prior_variance": ["the prior's variance must be a number greater than 0"]}
    assert not DecisionRule.objects.exists()
    r = client.post("/w/acme/experiments/decision-rule/", {
        "read": "bayesian", "chance_to_win": "0.9", "risk_tolerance": "0.001",
        "prior_mean": "0", "prior_variance": "0.09"})
    assert r.status_code == 302
    rule = DecisionRule.objects.get()
    assert (rule.read, rule.chance_to_win, rule.risk_tolerance, rule.prior_proper) == (
        "bayesian", 0.9, 0.001, False)


def test_the_bayesian_rule_changes_the_proposal(team, api):
    x, _, client = make(team, api, (1000, 10000), (1078, 10000))
    assert client.get(f"/api/v1/experiments/{x.pk}/").json()["proposal"]["outcome"] == \
        "inconclusive"
    xs.decision_rule_set(workspace_id=team["acme"].pk, read="bayesian")
    proposal = client.get(f"/api/v1/experiments/{x.pk}/").json()["proposal"]
    assert (proposal["outcome"], proposal["read"]) == ("validated", "bayesian")


# ----- concluding: a proposal, no pre-selection, overrides need a reason -------------------------
def test_an_override_without_a_reason_is_refused_and_nothing_is_saved(team, api):
    x, hyp, client = make(team, api, (500, 10000), (505, 10000))
    status = hyp.status
    r = client.post(f"/api/v1/experiments/{x.pk}/conclude/",
                    {**CONCLUDE, "outcome": "validated"}, format="json")
    assert r.status_code == 400
    assert list(r.json()) == ["override_reason"]
    assert "proposes inconclusive" in r.json()["override_reason"][0]
    assert not Learning.objects.exists()
    hyp.refresh_from_db()
    x.refresh_from_db()
    assert (hyp.status, hyp.measured_lift, x.status) == (status, None, "analyzed")
    r = client.post(f"/api/v1/experiments/{x.pk}/conclude/",
                    {**CONCLUDE, "outcome": "validated", "override_reason": "   "},
                    format="json")
    assert r.status_code == 400 and not Learning.objects.exists()


def test_an_override_with_a_reason_is_stored_and_shown(team, api, client):
    x, hyp, api_client = make(team, api, (500, 10000), (505, 10000))
    reason = "Qualitative interviews show the effect; the test was underpowered."
    r = api_client.post(f"/api/v1/experiments/{x.pk}/conclude/",
                        {**CONCLUDE, "outcome": "validated", "override_reason": reason},
                        format="json")
    assert r.status_code == 201, r.content
    assert (r.json()["outcome"], r.json()["proposed_outcome"], r.json()["override_reason"]) == (
        "validated", "inconclusive", reason)
    learning = Learning.objects.get()
    assert learning.estimates["proposal"]["outcome"] == "inconclusive"
    hyp.refresh_from_db()
    assert hyp.status == "validated"
    client.force_login(team["viewer"])
    for url in (f"/w/acme/experiments/{x.pk}/", "/w/acme/learnings/"):
        page = client.get(url).content.decode()
        learning_html = page[page.index('class="learning learning-validated"'):]
        assert f'<dd class="override-reason">{reason}</dd>' in learning_html, url
        assert "proposed <strong>inconclusive</strong>" in learning_html
        assert "overridden" in learning_html


def test_confirming_the_proposal_keeps_no_reason(team, api):
    x, _, client = make(team, api, (480, 10000), (600, 10000))
    r = client.post(f"/api/v1/experiments/{x.pk}/conclude/",
                    {**CONCLUDE, "outcome": "validated", "override_reason": "not needed"},
                    format="json")
    assert r.status_code == 201
    assert (r.json()["proposed_outcome"], r.json()["override_reason"]) == ("validated", "")


def test_the_conclude_form_selects_nothing_and_shows_the_proposal(team, api, client):
    x, _, _ = make(team, api, (500, 10000), (505, 10000))
    client.force_login(team["analyst"])
    page = client.get(f"/w/acme/experiments/{x.pk}/").content.decode()
    radios = re.findall(r'<input type="radio" name="outcome"[^>]*>', page)
    assert len(radios) == 3
    assert not any("checked" in r for r in radios)
    assert "The decision rule proposes" in page
    section = page[page.index('id="conclude"'):]
    assert re.search(r"proposes: <span[^>]*>Inconclusive</span>", section)
    for name in ("Sample ratio", "Primary estimate", "Primary effect", "Guardrails"):
        assert f"<td>{name}" in section
    assert section.count("✓ pass") == 3 and section.count("✗ fail") == 1
    assert "Bayesian read" in page and "flat (improper) prior" in page


def test_the_conclude_form_refuses_an_override_without_reason(team, api, client):
    x, _, _ = make(team, api, (500, 10000), (505, 10000))
    client.force_login(team["analyst"])
    r = client.post(f"/w/acme/experiments/{x.pk}/", {
        "action": "conclude", "outcome": "validated", "scope": "all", **CONCLUDE})
    assert r.status_code == 200
    assert list(r.context["conclude_form"].errors) == ["override_reason"]
    assert not Learning.objects.exists()
    # and the outcome stays the user's choice when the form comes back
    assert re.search(r'<input type="radio" name="outcome" value="validated"[^>]*checked',
                     r.content.decode())
    r = client.post(f"/w/acme/experiments/{x.pk}/", {
        "action": "conclude", "outcome": "inconclusive", "scope": "all", **CONCLUDE})
    assert r.status_code == 302
    assert Learning.objects.get().override_reason == ""


def test_the_form_requires_an_outcome(team, api, client):
    x, _, _ = make(team, api, (500, 10000), (505, 10000))
    client.force_login(team["analyst"])
    r = client.post(f"/w/acme/experiments/{x.pk}/", {
        "action": "conclude", "scope": "all", **CONCLUDE})
    assert r.status_code == 200
    assert "outcome" in r.context["conclude_form"].errors
    assert not Learning.objects.exists()
