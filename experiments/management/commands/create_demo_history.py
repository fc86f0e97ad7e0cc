"""Demo history for forecast calibration: 26 hypotheses three authors concluded before this
quarter, each with its forecast (expected lift and a stated 80% interval) and the measured lift.

Planted truths (seeded): the analyst's forecasts run hot, the measured lifts about half of
them (ratio 0.5) with intervals too narrow to hold them; demo's come out near 0.9 of the
forecast with honest intervals; council's about 0.7. Two forecasts state no interval (shown as
excluded) and two tests were inconclusive (no measured lift: the Brier score only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from accounts.management.workspace import workspace_from_options
from experiments.models import Evidence, Hypothesis, HypothesisStatus, Learning

TAG = "history"
# author, realized / predicted, stated half-width as a share of the forecast, evidence levels
AUTHORS = [("analyst", 0.5, 0.35, (Evidence.ASSUMPTION, Evidence.OBSERVATIONAL)),
           ("demo", 0.9, 0.8, (Evidence.OBSERVATIONAL, Evidence.EXPERIMENT)),
           ("council", 0.7, 0.6, (Evidence.ASSUMPTION, Evidence.OBSERVATIONAL))]
CHANGES = [
    "A progress bar in onboarding lifts 7-day activation",
    "Saved report templates raise weekly report creation",
    "Annual-plan nudges at renewal reduce churn",
    "In-app chat for trials lifts trial-to-paid conversion",
    "Slack alerts bring dormant users back",
    "A shorter signup form lifts completed signups",
    "Usage-based upgrade prompts lift pro upgrades",
    "Team invites at first report lift seat expansion",
    "Dark mode raises session length",
    "Sample data in new workspaces lifts first-week reports",
    "Price anchoring on the pricing page lifts team-plan share",
    "Weekly digest emails raise returning users",
    "CSV export in the free plan lifts upgrades",
    "Guided SQL editor tour raises feature adoption",
    "Referral credits lift referred signups",
    "Checklist emails on day 2 lift onboarding",
    "Faster dashboards raise weekly active users",
    "Cohort templates lift retention analysis use",
    "A pricing calculator lifts sales-assisted deals",
    "Trial extension offers lift trial conversion",
    "Mobile push for mentions raises mobile sessions",
    "In-product changelog raises feature discovery",
    "Partner co-marketing pages lift partner signups",
    "Onboarding video lifts setup completion",
    "Usage limits warnings lift upgrade clicks",
    "Two-step invite flow lifts accepted invites",
]


class Command(BaseCommand):
    help = "Create concluded demo hypotheses with forecasts and results (forecast calibration)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", default="demo")
        parser.add_argument("--seed", type=int, default=14)

    def handle(self, *args: Any, **opts: Any) -> None:
        workspace = workspace_from_options(opts, missing="run setup_demo first")
        if Learning.objects.filter(workspace=workspace,
                                   happened__startswith="Historical test").exists():
            self.stdout.write("demo history exists already")
            return
        users = {u.username: u for u in get_user_model().objects.filter(
            username__in=[a for a, *_ in AUTHORS])}
        rng = np.random.default_rng(opts["seed"])
        start = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
        made = 0
        for k, statement in enumerate(CHANGES):
            author, ratio, half, levels = AUTHORS[k % len(AUTHORS)]
            predicted = round(float(rng.uniform(0.04, 0.2)), 3)
            se = float(rng.uniform(0.012, 0.025))
            realized = round(ratio * predicted + float(rng.normal(0, 0.02)), 4)
            no_interval = k in (4, 17)
            inconclusive = k in (9, 22)
            low = None if no_interval else round(predicted * (1 - half), 3)
            high = None if no_interval else round(predicted * (1 + half), 3)
            m_low, m_high = round(realized - 1.96 * se, 4), round(realized + 1.96 * se, 4)
            status = (HypothesisStatus.INCONCLUSIVE if inconclusive else
                      HypothesisStatus.VALIDATED if m_low > 0 else HypothesisStatus.INVALIDATED)
            evidence = levels[k % 2]
            when = start + dt.timedelta(days=14 * k)
            hyp = Hypothesis.objects.create(
                workspace=workspace, statement=statement, metric="conversion (primary)",
                expected_lift=predicted, expected_lift_low=low, expected_lift_high=high,
                evidence=Evidence.EXPERIMENT if status == HypothesisStatus.VALIDATED else evidence,
                basis="the team's judgement at the time", owner=users.get(author),
                measured_lift=None if inconclusive else realized,
                measured_lift_low=None if inconclusive else m_low,
                measured_lift_high=None if inconclusive else m_high,
                status=status, created_at=when)
            Hypothesis.objects.filter(pk=hyp.pk).update(updated_at=when + dt.timedelta(days=30))
            measured = ("no lift measured (too few users)" if inconclusive else
                        f"relative lift {realized:+.1%} [{m_low:+.1%}, {m_high:+.1%}]")
            learning = Learning.objects.create(
                workspace=workspace, hypothesis=hyp, outcome=status,
                believed=f"{statement}: expected {predicted:+.1%}",
                happened=f"Historical test (before this tool): {measured}",
                now_believe="Recorded for forecast calibration.",
                decision="Kept as history.", tags=[TAG],
                estimates={"forecast": {"expected_lift": predicted, "expected_lift_low": low,
                                        "expected_lift_high": high, "evidence": evidence,
                                        "author": author}},
                created_by=users.get(author))
            Learning.objects.filter(pk=learning.pk).update(
                created_at=when + dt.timedelta(days=30))
            made += 1
        self.stdout.write(f"demo history: {made} concluded hypotheses by {len(AUTHORS)} authors")
