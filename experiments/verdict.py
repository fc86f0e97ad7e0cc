"""The outcome an experiment's result proposes under a workspace's decision rule. Pure.

An analysis result (``experiments.data``'s dict) and a :class:`Rule` in; a :class:`Proposal`
out: the proposed outcome and every check with pass/fail and why. The rule:

1. **Sample ratio** (randomized tests): the arms' sizes match the planned weights (the SRM
   chi-square is not flagged). A mismatch blocks: the assignment is broken, so no estimate can
   be trusted and the proposal is *inconclusive*. For a difference-in-differences read the
   same place is taken by the pre-trend check (groups not already diverging, p >= 0.05).
2. **Primary estimate**: the primary metric has an estimate in the scope (no "insufficient
   data"); else *inconclusive*.
3. **Primary effect**, per treatment arm:
   * frequentist: the 1 - alpha interval of the absolute effect excludes zero and the
     multiplicity-adjusted p is below alpha. Above zero: a win; below: a loss. An interval
     that holds zero is a loss too when its relative upper end is below the design's MDE (the
     effect the test was sized to find is ruled out), else undecided.
   * Bayesian: chance to beat control >= the threshold and the expected loss (risk) of
     shipping <= the tolerance: a win; chance <= 1 - threshold: a loss; else undecided. The
     relative read is used (the absolute one when the control mean is 0; its risk is then
     compared with tolerance x |control mean|).
   Any arm winning proposes *validated*; every arm losing, *invalidated*; else
   *inconclusive*.
4. **Guardrails** hold for the arm(s) the proposal rests on: none is significantly worse
   (frequentist: adjusted p < alpha with a negative effect; Bayesian: chance to beat control
   <= 1 - threshold). A failing guardrail blocks *validated* (proposes *inconclusive*).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .pvalues import p_text

VALIDATED, INVALIDATED, INCONCLUSIVE = "validated", "invalidated", "inconclusive"
FREQUENTIST, BAYESIAN = "frequentist", "bayesian"


@dataclass(frozen=True)
class Rule:
    """How a workspace decides: which read, and the Bayesian thresholds."""

    read: str = FREQUENTIST
    chance_to_win: float = 0.95
    risk_tolerance: float = 0.0025
    mde: float | None = None  # relative; the design's, for "effect ruled out"

    def describe(self) -> str:
        if self.read == BAYESIAN:
            return (f"Bayesian: validated when the chance to beat control is at least "
                    f"{self.chance_to_win:.1%} and the expected loss of shipping at most "
                    f"{self.risk_tolerance:.2%}; invalidated when the chance is at most "
                    f"{1 - self.chance_to_win:.1%}")
        return ("frequentist: validated when the primary metric's interval lies above zero "
                "(adjusted p below alpha), invalidated when it lies below zero or rules out "
                "the design's MDE")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    blocking: bool = False  # a failure that overrides the effect's verdict


@dataclass(frozen=True)
class Proposal:
    outcome: str
    read: str
    rule: str
    reason: str
    checks: list[Check] = field(default_factory=list)
    arm: str | None = None  # the arm the proposal rests on, when one wins

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2%}"


def _frequentist_arm(row: dict[str, Any], mde: float | None) -> tuple[str, str]:
    """(win | loss | undecided, why) for one primary row under the frequentist rule."""
    ci = row.get("absolute_ci") or [None, None]
    p, alpha = row.get("p_adjusted"), row.get("alpha", 0.05)
    where = (f"{row['arm']}: absolute {row['absolute']:+.4g} [{ci[0]:+.4g}, {ci[1]:+.4g}], "
             f"{p_text(p, 'adjusted p')} (alpha {alpha:g})" if p is not None
             else f"{row['arm']}: no p-value")
    lower = row.get("direction") == "lower"
    note = " (lower is better)" if lower else ""
    if row.get("significant") and ci[0] is not None and ci[0] > 0:
        return ("loss" if lower else "win"), where + " — the interval lies above zero" + note
    if row.get("significant") and ci[1] is not None and ci[1] < 0:
        return ("win" if lower else "loss"), where + " — the interval lies below zero" + note
    rci = row.get("relative_ci")
    if mde is not None and rci and not lower and rci[1] is not None and rci[1] < mde:
        return "loss", (where + f" — the interval holds zero and its relative upper end "
                                f"{_pct(rci[1])} is below the MDE {_pct(mde)}: the effect "
                                "the test was sized to find is ruled out")
    if mde is not None and rci and lower and rci[0] is not None and rci[0] > -mde:
        return "loss", (where + f" — the interval holds zero and its relative lower end "
                                f"{_pct(rci[0])} is above minus the MDE {_pct(-mde)}: the "
                                "fall the test was sized to find is ruled out" + note)
    return "undecided", where + " — the interval holds zero"


def _better(read: dict[str, Any], row: dict[str, Any]) -> tuple[float, float]:
    """(chance the arm is better, expected loss of shipping it), for the metric's direction:
    when lower is better, better is a fall and shipping risks the rise."""
    if row.get("direction") == "lower":
        return 1 - read["chance_to_win"], read["risk"][0]
    return read["chance_to_win"], read["risk"][1]


def _bayes_pick(row: dict[str, Any]) -> dict[str, Any] | None:
    reads = row.get("bayes") or {}
    rel = reads.get("relative")
    if rel and not rel.get("error"):
        return rel
    ab = reads.get("absolute")
    if ab and not ab.get("error"):
        return ab
    return None


def _bayes_arm(row: dict[str, Any], rule: Rule) -> tuple[str, str]:
    read = _bayes_pick(row)
    if read is None:
        reads = row.get("bayes") or {}
        why = (reads.get("relative") or {}).get("message") or "no Bayesian read in this result "\
            "(analyze again)"
        return "undecided", f"{row['arm']}: {why}"
    tolerance = rule.risk_tolerance
    if read["risk_type"] == "absolute":
        tolerance *= abs(row.get("control_mean") or 0.0)
    ctw, ship = _better(read, row)
    unit = "" if read["risk_type"] == "absolute" else " (relative)"
    where = (f"{row['arm']}: chance to beat control {ctw:.1%}, expected loss of shipping "
             f"{ship:.3g}{unit} against a tolerance of {tolerance:.3g}")
    if ctw >= rule.chance_to_win and ship <= tolerance:
        return "win", where
    if ctw <= 1 - rule.chance_to_win:
        return "loss", where
    return "undecided", where


def _guardrail_fails(row: dict[str, Any], rule: Rule) -> str | None:
    if row.get("status") != "ok":
        return None
    if rule.read == BAYESIAN:
        read = _bayes_pick(row)
        if read is not None and _better(read, row)[0] <= 1 - rule.chance_to_win:
            return (f"{row['metric']} ({row['arm']}): chance it is not worse "
                    f"{_better(read, row)[0]:.1%}")
        return None
    worse = (row.get("absolute") or 0) > 0 if row.get("direction") == "lower" \
        else (row.get("absolute") or 0) < 0
    if row.get("significant") and worse:
        return (f"{row['metric']} ({row['arm']}): {row['absolute']:+.4g}, "
                f"{p_text(row.get('p_adjusted'), 'adjusted p')}")
    return None


def propose(result: dict[str, Any], rule: Rule, scope: str = "all") -> Proposal:
    """The outcome the result supports under ``rule``, with each check and why."""
    kind = result.get("kind")
    if kind == "ab":
        return _propose_ab(result, rule, scope)
    if kind in ("did", "its"):
        return _propose_quasi(result, rule)
    return Proposal(INCONCLUSIVE, rule.read, rule.describe(), "no result to read", [])


def _propose_ab(result: dict[str, Any], rule: Rule, scope: str) -> Proposal:
    checks: list[Check] = []
    srm = (result.get("srm") or {}).get(scope)
    if srm is None:
        checks.append(Check("sample ratio", True, "no sample ratio test for this scope"))
    else:
        checks.append(Check(
            "sample ratio", not srm.get("flagged"),
            f"observed {' / '.join(str(v) for v in srm['observed'])} against expected "
            f"{' / '.join(f'{v:.1f}' for v in srm['expected'])}: "
            f"{p_text(srm['p_value'], 'chi-square p')}"
            + (", below 0.001, a mismatch: the assignment or its logging is broken"
               if srm.get("flagged") else ""),
            blocking=True))
    rows = [r for r in result.get("rows", []) if r.get("scope") == scope]
    primary = [r for r in rows if r.get("primary")]
    usable = [r for r in primary if r.get("status") == "ok"]
    reasons = "; ".join(f"{r['arm']}: {r.get('reason')}" for r in primary
                        if r.get("status") != "ok")
    checks.append(Check("primary estimate", bool(usable) and len(usable) == len(primary),
                        "every arm has an estimate" if usable and len(usable) == len(primary)
                        else f"insufficient data: {reasons or 'no primary metric row'}",
                        blocking=not usable))
    verdicts = []
    for r in usable:
        verdict, why = (_bayes_arm(r, rule) if rule.read == BAYESIAN
                        else _frequentist_arm(r, rule.mde))
        verdicts.append((r["arm"], verdict, why))
    winners = [arm for arm, v, _ in verdicts if v == "win"]
    if verdicts:
        checks.append(Check("primary effect", bool(winners),
                            "; ".join(why for _, _, why in verdicts)))
    considered = winners or [arm for arm, _, _ in verdicts]
    harms = [h for r in rows if not r.get("primary") and r.get("arm") in considered
             for h in [_guardrail_fails(r, rule)] if h]
    guard_rows = [r for r in rows if not r.get("primary")]
    checks.append(Check("guardrails", not harms,
                        ("worse: " + "; ".join(harms)) if harms else
                        (f"{len(guard_rows)} guardrail comparison(s), none worse"
                         if guard_rows else "no guardrail metrics"),
                        blocking=bool(harms) and bool(winners)))

    blocked = [c for c in checks if c.blocking and not c.passed]
    if blocked:
        return Proposal(INCONCLUSIVE, rule.read, rule.describe(),
                        f"blocked by {', '.join(c.name for c in blocked)}", checks)
    if winners:
        return Proposal(VALIDATED, rule.read, rule.describe(),
                        f"{', '.join(winners)} beats control on the primary metric", checks,
                        arm=winners[0])
    if verdicts and all(v == "loss" for _, v, _ in verdicts):
        return Proposal(INVALIDATED, rule.read, rule.describe(),
                        "no arm beats control: the expected effect is ruled out", checks)
    return Proposal(INCONCLUSIVE, rule.read, rule.describe(),
                    "the data cannot tell whether the effect is there", checks)


def _propose_quasi(result: dict[str, Any], rule: Rule) -> Proposal:
    checks: list[Check] = []
    note = (" (the Bayesian read covers randomized tests; a quasi-experiment is read by its "
            "interval)" if rule.read == BAYESIAN else "")
    if result.get("kind") == "did":
        estimate, ci = result.get("estimate"), result.get("ci") or [None, None]
        pre = result.get("pre_trend_p")
        checks.append(Check("pre-trend", pre is None or pre >= 0.05,
                            "no pre-trend test" if pre is None else
                            f"differential slope before launch, {p_text(pre)}"
                            + (": the groups were already diverging" if pre < 0.05 else ""),
                            blocking=True))
    else:
        estimate, ci = result.get("level_change"), result.get("level_ci") or [None, None]
    ok = estimate is not None and None not in ci
    checks.append(Check("primary estimate", ok, "an estimate with its interval" if ok
                        else f"insufficient data: {result.get('reason') or 'no estimate'}",
                        blocking=not ok))
    if ok:
        where = f"effect {estimate:+.4g} [{ci[0]:+.4g}, {ci[1]:+.4g}]"
        checks.append(Check("primary effect", ci[0] > 0, where + (
            " — the interval lies above zero" if ci[0] > 0 else
            " — the interval lies below zero" if ci[1] < 0 else " — the interval holds zero")
            + note))
    blocked = [c for c in checks if c.blocking and not c.passed]
    if blocked:
        return Proposal(INCONCLUSIVE, FREQUENTIST, rule.describe() + note,
                        f"blocked by {', '.join(c.name for c in blocked)}", checks)
    if ci[0] > 0:
        return Proposal(VALIDATED, FREQUENTIST, rule.describe() + note,
                        "the effect's interval lies above zero", checks)
    if ci[1] < 0:
        return Proposal(INVALIDATED, FREQUENTIST, rule.describe() + note,
                        "the effect's interval lies below zero", checks)
    return Proposal(INCONCLUSIVE, FREQUENTIST, rule.describe() + note,
                    "the effect's interval holds zero", checks)
