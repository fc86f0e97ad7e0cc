"""What an experiment page reads first: the one-line verdict, planned against obtained sample
size, and the power calculator's ways forward when a test would run too long. Pure.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .pvalues import p_text

IMPRACTICAL_DAYS = 56.0  # 8 weeks: longer than that, the calculator shows the ways forward
HORIZON_WEEKS = (2, 4, 8)
TARGET_WEEKS = 4


def pct(value: float | None, digits: int = 1) -> str:
    """A relative change as a signed percentage: 0.0523 -> '+5.2%' ('—' when missing)."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:+.{digits}f}%"


def lift_text(relative: float | None, ci: Sequence[float | None] | None) -> str:
    """'+5.2% [+1.1%, +9.4%]'."""
    if relative is None:
        return "—"
    if not ci or ci[0] is None or ci[1] is None:
        return pct(relative)
    return f"{pct(relative)} [{pct(ci[0])}, {pct(ci[1])}]"


# ----- the one-line verdict --------------------------------------------------------------------
@dataclass(frozen=True)
class VerdictLine:
    """The primary metric's result, guardrails and sample ratio, each with its state."""

    outcome: str  # the decision rule's proposal
    primary: str  # "onboarded_7d: treatment +5.2% [+1.1%, +9.4%] vs control"
    primary_state: str  # win | loss | undecided | none
    guardrails: str
    guardrails_ok: bool
    sample_ratio: str
    sample_ratio_ok: bool

    def text(self) -> str:
        return " · ".join((self.primary, self.guardrails, self.sample_ratio))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text()}


def _check(proposal: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in proposal.get("checks", []) if c.get("name") == name), None)


def verdict_line(result: dict[str, Any], proposal: dict[str, Any],
                 scope: str = "all") -> VerdictLine | None:
    """The verdict of an A/B result in one line, from its rows and the rule's proposal
    (``verdict.propose(...).to_dict()``); None for other results."""
    if result.get("kind") != "ab":
        return None
    rows = [r for r in result.get("rows", []) if r.get("scope") == scope]
    primary = [r for r in rows if r.get("primary")]
    parts = []
    state = "none"
    for r in primary:
        if r.get("status") != "ok":
            parts.append(f"{r['arm']}: insufficient data")
            continue
        if r.get("relative") is not None:
            parts.append(f"{r['arm']} {lift_text(r.get('relative'), r.get('relative_ci'))}")
        else:
            ci = r.get("absolute_ci") or [None, None]
            parts.append(f"{r['arm']} {r['absolute']:+.4g} [{ci[0]:+.4g}, {ci[1]:+.4g}] "
                         "(absolute: the control mean is 0)")
        low, high = (r.get("absolute_ci") or [None, None])[:2]
        up = r.get("significant") and low is not None and low > 0
        down = r.get("significant") and high is not None and high < 0
        if r.get("direction") == "lower":  # a fall is the improvement
            up, down = down, up
        if up:
            state = "win"
        elif state != "win" and down:
            state = "loss"
        elif state == "none":
            state = "undecided"
    metric = primary[0]["metric"] if primary else "primary metric"
    control = primary[0]["control"] if primary else "control"
    text = (f"{metric}: " + "; ".join(parts) + f" vs {control}") if parts else \
        f"{metric}: no estimate"
    guard = _check(proposal, "guardrails") or {}
    n_guard = len({r["metric"] for r in rows if not r.get("primary")})
    guard_ok = bool(guard.get("passed", True))
    if n_guard == 0:
        guard_text = "no guardrails"
    elif guard_ok:
        guard_text = f"guardrails: {n_guard} of {n_guard} hold"
    else:
        guard_text = "guardrails: " + str(guard.get("detail", "one is worse"))
    srm = (result.get("srm") or {}).get(scope)
    if srm is None:
        srm_text, srm_ok = "sample ratio: not tested", True
    else:
        observed = " / ".join(f"{v:,}" for v in srm["observed"])
        p = srm["p_value"]
        srm_ok = not srm.get("flagged")
        srm_text = f"sample ratio {'ok' if srm_ok else 'MISMATCH'} ({observed}, {p_text(p)})"
    return VerdictLine(outcome=str(proposal.get("outcome", "inconclusive")), primary=text,
                       primary_state=state, guardrails=guard_text, guardrails_ok=guard_ok,
                       sample_ratio=srm_text, sample_ratio_ok=srm_ok)


# ----- planned against obtained --------------------------------------------------------------------
def planned_vs_obtained(*, arms: Sequence[str], planned: Sequence[int],
                        obtained: Sequence[int], dates: Sequence[str] | None = None,
                        cumulative: dict[str, Sequence[int]] | None = None,
                        rate_days: int = 7) -> dict[str, Any]:
    """Per arm: planned users, assigned so far, share of the plan and, at the assignment
    rate of the last ``rate_days`` days of ``cumulative`` (per arm, per date), the date the
    arm reaches its plan. Without a timeline there is no rate and no date."""
    out = []
    for i, arm in enumerate(arms):
        plan = int(planned[i]) if i < len(planned) else 0
        got = int(obtained[i]) if i < len(obtained) else 0
        row: dict[str, Any] = {"arm": arm, "planned": plan, "obtained": got,
                               "share": got / plan if plan else None,
                               "rate_per_day": None, "reach_date": None, "reached": got >= plan}
        series = (cumulative or {}).get(arm)
        if dates and series and len(series) == len(dates):
            window = min(rate_days, len(series) - 1)
            if window > 0:
                rate = (series[-1] - series[-1 - window]) / window
                row["rate_per_day"] = rate
                if not row["reached"] and rate > 0:
                    days = math.ceil((plan - got) / rate)
                    last = dt.date.fromisoformat(dates[-1])
                    row["reach_date"] = (last + dt.timedelta(days=days)).isoformat()
                    row["days_to_go"] = days
        out.append(row)
    return {"arms": out, "rate_days": rate_days,
            "complete": all(r["reached"] for r in out) if out else False}


# ----- the power calculator's ways forward ----------------------------------------------------------
def detectable_effect(*, n_control: float, ratio: float, baseline_mean: float,
                      baseline_sd: float | None, binary: bool, alpha: float, power: float,
                      cuped_r2: float = 0.0, design_effect: float = 1.0) -> float | None:
    """The relative effect a test with ``n_control`` control users (and ``ratio`` times as
    many in the smallest arm) detects at ``alpha`` with ``power``: statsmodels' power solved
    for the effect size, turned back into a relative lift as ``stats.sample_size`` does.
    None when no effect within the metric's range is detectable (a binary rate above 1)."""
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    n_eff = n_control / design_effect
    if n_eff < 2:
        return None
    solver: Any = NormalIndPower() if binary else TTestIndPower()
    es = float(solver.solve_power(effect_size=None, nobs1=n_eff, alpha=alpha, power=power,
                                  ratio=ratio, alternative="two-sided")) * math.sqrt(1 - cuped_r2)
    if binary:
        angle = math.asin(math.sqrt(baseline_mean)) + es / 2
        if angle >= math.pi / 2:
            return None
        return math.sin(angle) ** 2 / baseline_mean - 1
    if baseline_sd is None or baseline_mean == 0:
        return None
    return es * baseline_sd / abs(baseline_mean)


def ways_forward(design: dict[str, Any], *, binary: bool, weights: Sequence[float],
                 alpha: float, power: float) -> dict[str, Any] | None:
    """The share of the eligible traffic the planned test needs to finish in 4 weeks (None
    when even 100% is not enough) and, when it would take more than 8 weeks at all the
    traffic (``impractical``), the effect detectable in 2, 4 and 8 weeks. None without a
    duration (no traffic)."""
    days, inputs = design.get("days"), design.get("inputs") or {}
    traffic = inputs.get("daily_traffic")
    if days is None or not traffic:
        return None
    total = sum(weights)
    share_c = weights[0] / total
    ratio = min(w / weights[0] for w in weights[1:])
    options = []
    impractical = days > IMPRACTICAL_DAYS
    for weeks in HORIZON_WEEKS if impractical else ():
        n_control = traffic * weeks * 7 * share_c
        options.append({"weeks": weeks, "users": traffic * weeks * 7,
                        "n_control": n_control,
                        "mde": detectable_effect(
                            n_control=n_control, ratio=ratio,
                            baseline_mean=inputs["baseline_mean"],
                            baseline_sd=inputs.get("baseline_sd"), binary=binary, alpha=alpha,
                            power=power, cuped_r2=inputs.get("cuped_r2") or 0.0,
                            design_effect=design.get("design_effect") or 1.0)})
    needed = design["total_n"] / (traffic * TARGET_WEEKS * 7)
    return {"days": days, "threshold_days": IMPRACTICAL_DAYS, "impractical": impractical,
            "options": options,
            "target_weeks": TARGET_WEEKS, "share_needed": needed if needed <= 1 else None,
            "share_needed_raw": needed,
            "note": f"at {traffic:g} eligible users/day; the share is of that traffic put in "
                    "the test"}
