"""Experiment data from the event store: assignments, per-user metrics, panels. Pure.

Works on ``events.frame.UserEvents`` (users as dense codes, events sorted by user and
time, times in µs UTC) and returns plain arrays and dataclasses; the statistics are in
``experiments.stats`` and the orchestration in ``analyze_randomized`` / ``analyze_did`` /
``analyze_its`` below. No Python loop per user or per event: loops run over arms, metrics and
segments only.

Metric windows are half-open: a conversion metric with ``window_days=7`` counts an event with
``assigned_at <= t < assigned_at + 7 days``; the CUPED pre-period covariate is the same metric
over ``assigned_at - pre_days <= t < assigned_at``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from events.errors import FieldError
from events.frame import US_PER_DAY, UserEvents
from experiments import bayes, quasi, stats

METRIC_KINDS = ("conversion", "count", "revenue", "ratio")
PART_KINDS = ("count", "revenue")
DIRECTIONS = ("higher", "lower")  # which way of the metric is better  # the numerator and denominator of a ratio metric
MIN_USERS_PER_ARM = 2


class ExperimentDataError(FieldError):
    """Bad experiment input; ``field`` says where."""


# A metric's window, in days (0 excluded): README "Number domains".
MAX_WINDOW_DAYS = 365.0


@dataclass(frozen=True)
class MetricSpec:
    """A per-user metric measured from assignment: did / how often / how much, within a window."""

    name: str
    kind: str  # conversion | count | revenue | ratio
    event: str | None  # required for conversion and count; revenue: None = any event
    window_days: float
    # ratio only: sum of the numerator over sum of the denominator (e.g. revenue per session),
    # analysed with the delta method on per-user (numerator, denominator) pairs
    numerator: MetricSpec | None = None
    denominator: MetricSpec | None = None
    direction: str = "higher"  # or "lower": a fall is the improvement (errors, churn)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "metric") -> MetricSpec:
        if not isinstance(data, Mapping):
            raise ExperimentDataError(where, "must be an object with kind, event and window_days")
        kind = data.get("kind")
        if kind not in METRIC_KINDS:
            raise ExperimentDataError(f"{where}.kind", f"must be one of {', '.join(METRIC_KINDS)}")
        direction = data.get("direction") or "higher"
        if direction not in DIRECTIONS:
            raise ExperimentDataError(f"{where}.direction", "must be higher or lower (which "
                                                            "way is better)")
        if kind == "ratio":
            window = data.get("window_days", 7)
            parts = []
            for key in ("numerator", "denominator"):
                part = data.get(key)
                if not isinstance(part, Mapping) or part.get("kind") not in PART_KINDS:
                    raise ExperimentDataError(f"{where}.{key}", "a ratio metric needs a count or "
                                                                "revenue " + key)
                parts.append(cls.from_dict({**part, "window_days": part.get("window_days",
                                                                            window)},
                                           f"{where}.{key}"))
            base = cls.from_dict({"kind": "count", "event": "x", "window_days": window}, where)
            name = str(data.get("name") or f"{parts[0].name} per {parts[1].name}")
            return cls(name=name, kind="ratio", event=None, window_days=base.window_days,
                       numerator=parts[0], denominator=parts[1], direction=direction)
        event = data.get("event") or None
        if kind != "revenue" and not event:
            raise ExperimentDataError(f"{where}.event", f"a {kind} metric needs an event name")
        if event is not None and not isinstance(event, str):
            raise ExperimentDataError(f"{where}.event", "must be an event name")
        raw = data.get("window_days", 7)
        message = f"must be a positive number of days, at most {MAX_WINDOW_DAYS:g}"
        if isinstance(raw, bool):
            raise ExperimentDataError(f"{where}.window_days", message)
        window = ExperimentDataError.as_float(raw, f"{where}.window_days", message)
        if not math.isfinite(window) or not 0 < window <= MAX_WINDOW_DAYS:
            raise ExperimentDataError(f"{where}.window_days", message)
        name = str(data.get("name") or (f"{kind}:{event}" if event else kind))
        return cls(name=name, kind=kind, event=event, window_days=window, direction=direction)

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "event": self.event,
               "window_days": self.window_days}
        if self.kind == "ratio":
            out.update(numerator=self.numerator.to_dict(),  # type: ignore[union-attr]
                       denominator=self.denominator.to_dict())  # type: ignore[union-attr]
        if self.direction != "higher":  # stated only when it is not the usual way
            out["direction"] = self.direction
        return out

    @property
    def binary(self) -> bool:
        return self.kind == "conversion"


@dataclass(frozen=True)
class Assignment:
    """Users in the experiment: one row per user (dense user code), arm index and time."""

    user: np.ndarray  # int64 user codes, unique, ascending
    arm: np.ndarray  # int64 index into arms
    time: np.ndarray  # int64 µs: first exposure
    arms: tuple[str, ...]
    conflicting: int = 0  # users seen in more than one arm: left out
    unknown_arm: int = 0  # rows whose arm is not one of the configured arms: left out
    unknown_users: int = 0  # table rows whose user is not in the event data: left out

    def counts(self) -> list[int]:
        return np.bincount(self.arm, minlength=len(self.arms)).astype(int).tolist()

    def restrict(self, mask: np.ndarray) -> Assignment:
        """Only the users with ``mask[user]`` (a boolean mask over all user codes)."""
        keep = mask[self.user]
        return Assignment(self.user[keep], self.arm[keep], self.time[keep], self.arms)


def _property_texts(ue: UserEvents, idx: np.ndarray) -> list[Any]:
    props = ue.properties
    if props is None:
        raise ExperimentDataError("assignment", "event properties are not loaded")
    if isinstance(props, np.ndarray):
        return props[idx].tolist()
    if hasattr(props, "take"):  # an Arrow array
        return props.take(idx).to_pylist()
    return [props[i] for i in idx.tolist()]


def assignment_from_events(ue: UserEvents, *, event: str, arms: Sequence[str],
                           experiment_key: str = "experiment", experiment_id: str | None = None,
                           arm_key: str = "arm") -> Assignment:
    """Assignment from exposure events whose JSON properties name the experiment and the arm.

    The first exposure event of a user sets the time; a user exposed in two arms is left out
    (counted in ``conflicting``), since their outcome cannot be attributed to one arm.
    """
    code = ue.event_code(event)
    if code < 0:
        raise ExperimentDataError("assignment.event", f"the dataset has no '{event}' events")
    idx = np.flatnonzero(ue.event == code)
    texts = _property_texts(ue, idx)
    # Parse each distinct properties text once (a handful per experiment).
    arm_of: dict[Any, int] = {}
    arm_index = {name: i for i, name in enumerate(arms)}
    for text in set(texts):
        try:
            obj = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            obj = None
        value = -2  # not this experiment
        if isinstance(obj, dict) and (experiment_id is None
                                      or str(obj.get(experiment_key)) == str(experiment_id)):
            value = arm_index.get(str(obj.get(arm_key)), -1)
        arm_of[text] = value
    arm = np.fromiter((arm_of[t] for t in texts), dtype=np.int64, count=len(texts))
    mine = arm != -2
    unknown_arm = int((arm[mine] == -1).sum())
    keep = arm >= 0
    return _one_row_per_user(ue.user[idx[keep]].astype(np.int64), arm[keep],
                             ue.time[idx[keep]].astype(np.int64), tuple(arms),
                             unknown_arm=unknown_arm)


def assignment_from_table(ue: UserEvents, table: pd.DataFrame,
                          arms: Sequence[str]) -> Assignment:
    """Assignment from a table with ``user_id``, ``arm`` and ``assigned_at`` (UTC) columns."""
    for column in ("user_id", "arm", "assigned_at"):
        if column not in table.columns:
            raise ExperimentDataError("assignments", f"the table has no '{column}' column")
    ids = table["user_id"].astype(str).to_numpy()
    position = np.searchsorted(ue.user_ids, ids)
    position = np.minimum(position, max(ue.n_users - 1, 0))
    known = (ue.n_users > 0) & (ue.user_ids[position] == ids) if ue.n_users else np.zeros(
        len(ids), bool)
    arm_index = {name: i for i, name in enumerate(arms)}
    arm = table["arm"].astype(str).map(arm_index).fillna(-1).to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(table["assigned_at"], utc=True, errors="coerce")
    time = stamps.to_numpy(dtype="datetime64[us]").astype(np.int64)
    ok = known & (arm >= 0) & ~stamps.isna().to_numpy()
    return _one_row_per_user(position[ok].astype(np.int64), arm[ok], time[ok], tuple(arms),
                             unknown_arm=int((known & (arm < 0)).sum()),
                             unknown_users=int((~known).sum()))


def _one_row_per_user(user: np.ndarray, arm: np.ndarray, time: np.ndarray, arms: tuple[str, ...],
                      unknown_arm: int = 0, unknown_users: int = 0) -> Assignment:
    if len(user) == 0:
        empty = np.zeros(0, np.int64)
        return Assignment(empty, empty, empty, arms, 0, unknown_arm, unknown_users)
    order = np.lexsort((time, user))
    user, arm, time = user[order], arm[order], time[order]
    first = np.r_[True, user[1:] != user[:-1]]
    starts = np.flatnonzero(first)
    arm_min = np.minimum.reduceat(arm, starts)
    arm_max = np.maximum.reduceat(arm, starts)
    consistent = arm_min == arm_max
    return Assignment(user[starts][consistent], arm[starts][consistent],
                      time[starts][consistent], arms,
                      conflicting=int((~consistent).sum()), unknown_arm=unknown_arm,
                      unknown_users=unknown_users)


def metric_values(ue: UserEvents, users: np.ndarray, start: np.ndarray, metric: MetricSpec,
                  *, pre_days: float | None = None, until_us: int | None = None) -> np.ndarray:
    """Each user's metric: events with ``start <= t < start + window`` (or, with ``pre_days``,
    ``start - pre_days <= t < start``). ``users`` are unique user codes, ``start`` µs times.
    ``until_us``: only events before that time (the data as it stood then)."""
    if metric.kind == "ratio":
        raise ExperimentDataError("metric", "a ratio metric has two per-user values: measure "
                                            "its numerator and denominator")
    n = len(users)
    if n == 0:
        return np.zeros(0, np.float64)
    begin = np.full(ue.n_users, np.iinfo(np.int64).max, dtype=np.int64)
    if pre_days is None:
        begin[users] = start
        length = int(round(metric.window_days * US_PER_DAY))
    else:
        length = int(round(pre_days * US_PER_DAY))
        begin[users] = start - length
    if metric.event is not None:
        code = ue.event_code(metric.event)
        if code < 0:
            return np.zeros(n, np.float64)
        idx = np.flatnonzero(ue.event == code)
    else:
        idx = np.flatnonzero(ue.revenue != 0)
    owner = ue.user[idx]
    b = begin[owner]
    t = ue.time[idx]
    inside = (t >= b) & (t - b < length) & (b != np.iinfo(np.int64).max)
    if until_us is not None:
        inside &= t < until_us
    weights = ue.revenue[idx][inside] if metric.kind == "revenue" else None
    per_user = np.bincount(owner[inside], weights=weights, minlength=ue.n_users)[users]
    per_user = per_user.astype(np.float64)
    if metric.kind == "conversion":
        per_user = (per_user > 0).astype(np.float64)
    return per_user


# ----- randomized analysis -------------------------------------------------------------------
@dataclass
class Scope:
    """Users an analysis is restricted to: everyone assigned, or one segment."""

    key: str
    label: str
    mask: np.ndarray | None = None  # over all user codes; None = everyone assigned


@dataclass
class RandomizedSettings:
    weights: Sequence[float]
    alpha: float = 0.05
    cuped_pre_days: float = 0.0
    sequential: bool = False
    sequential_tuning: float = 5000.0
    correction: str = "holm"  # holm | bh | none
    srm_threshold: float = 0.001
    prior: bayes.Prior = field(default_factory=bayes.Prior)
    extra: dict[str, Any] = field(default_factory=dict)


def _moments(arm: stats.ArmStats | stats.RatioArmStats, metric: MetricSpec) -> bayes.Moments:
    if isinstance(arm, stats.RatioArmStats):
        return bayes.Moments.of_ratio(arm.n, arm.sum_x, arm.sum_x_sq, arm.sum_y, arm.sum_y_sq,
                                      arm.sum_xy)
    if metric.binary:
        return bayes.Moments.of_proportion(arm.n, arm.sum)
    return bayes.Moments.of_mean(arm.n, arm.sum, arm.sum_sq)


def _read_dict(read: bayes.BayesRead) -> dict[str, Any]:
    out = read.to_dict()
    del out["prior"]  # stated once, in the result's "bayes_prior"
    return out


def bayes_reads(control: stats.ArmStats | stats.RatioArmStats,
                treatment: stats.ArmStats | stats.RatioArmStats, metric: MetricSpec,
                settings: RandomizedSettings, effect: stats.Effect | None = None
                ) -> dict[str, Any]:
    """The Bayesian read of the relative and the absolute effect (gbstats' definitions).

    A CUPED effect is read from its adjusted estimate and variance (the posterior of the
    adjusted effect, as gbstats reads a regression-adjusted statistic); else from the arms."""
    out = {}
    for relative in (True, False):
        key = "relative" if relative else "absolute"
        if effect is not None and effect.method == "cuped":
            estimate = effect.relative if relative else effect.absolute
            se = effect.relative_se if relative else effect.absolute_se
            if effect.status != stats.OK or estimate is None or not se:
                out[key] = _read_dict(bayes.BayesRead(
                    0.5, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), key, settings.alpha, False,
                    settings.prior, bayes.ZERO_VARIANCE if effect.status == stats.OK
                    else bayes.NO_UNITS))
                continue
            mean, var = bayes.scaled_prior(settings.prior, effect.control_mean or 0.0, relative)
            if var <= 0:
                out[key] = _read_dict(bayes.BayesRead(
                    0.5, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), key, settings.alpha, False,
                    settings.prior, bayes.ZERO_CONTROL_PRIOR))
                continue
            out[key] = _read_dict(bayes.read_from_estimate(
                estimate, se * se, prior_mean=mean, prior_variance=var, prior=settings.prior,
                relative=relative, alpha=settings.alpha))
        else:
            out[key] = _read_dict(bayes.bayes_read(
                _moments(control, metric), _moments(treatment, metric), relative=relative,
                prior=settings.prior, alpha=settings.alpha))
    return out


def _effect(control: np.ndarray, treatment: np.ndarray, metric: MetricSpec,
            settings: RandomizedSettings, control_pre: np.ndarray | None,
            treatment_pre: np.ndarray | None) -> stats.Effect:
    if control_pre is not None and treatment_pre is not None:
        return stats.cuped_effect(control, control_pre, treatment, treatment_pre,
                                  alpha=settings.alpha)
    return _summary_effect(stats.ArmStats.from_values(control),
                           stats.ArmStats.from_values(treatment), metric, settings)


def _summary_effect(a: stats.ArmStats, b: stats.ArmStats, metric: MetricSpec,
                    settings: RandomizedSettings) -> stats.Effect:
    """The test for two arms' summaries: sequential when asked, else proportions or Welch."""
    if settings.sequential:
        return stats.sequential_effect(a, b, alpha=settings.alpha,
                                       tuning_n=settings.sequential_tuning)
    if metric.binary:
        return stats.proportion_effect(int(a.sum), a.n, int(b.sum), b.n, alpha=settings.alpha)
    return stats.mean_effect(a, b, alpha=settings.alpha)


def analyze_randomized(ue: UserEvents, assignment: Assignment, metrics: Sequence[MetricSpec],
                       scopes: Sequence[Scope], settings: RandomizedSettings) -> dict[str, Any]:
    """Every treatment arm against the first (control) arm, for each metric and scope.

    The first metric is the primary one. Multiplicity: the correction runs over every
    (metric, scope, arm) comparison of the primary metric together (the family the team reads
    decisions from) and separately over the guardrails.
    """
    arms = assignment.arms
    if len(arms) < 2:
        raise ExperimentDataError("arms", "an experiment needs a control and at least one arm")
    values: dict[str, Any] = {}
    for m in metrics:
        if m.kind == "ratio":
            values[m.name] = (
                metric_values(ue, assignment.user, assignment.time, m.numerator),  # type: ignore[arg-type]
                metric_values(ue, assignment.user, assignment.time, m.denominator))  # type: ignore[arg-type]
        else:
            values[m.name] = metric_values(ue, assignment.user, assignment.time, m)
    pre: dict[str, np.ndarray] = {}
    if settings.cuped_pre_days > 0:  # CUPED adjusts the per-user metrics, not ratios
        pre = {m.name: metric_values(ue, assignment.user, assignment.time, m,
                                     pre_days=settings.cuped_pre_days)
               for m in metrics if m.kind != "ratio"}
    rows: list[dict[str, Any]] = []
    srm: dict[str, Any] = {}
    for scope in scopes:
        in_scope = (np.ones(len(assignment.user), bool) if scope.mask is None
                    else scope.mask[assignment.user])
        counts = np.bincount(assignment.arm[in_scope], minlength=len(arms)).astype(int)
        if counts.sum() > 0:
            srm[scope.key] = _srm_dict(stats.srm_check(counts.tolist(), list(settings.weights),
                                                       threshold=settings.srm_threshold))
        for position, metric in enumerate(metrics):
            control_sel = in_scope & (assignment.arm == 0)
            for k in range(1, len(arms)):
                treat_sel = in_scope & (assignment.arm == k)
                arm_a: stats.ArmStats | stats.RatioArmStats
                arm_b: stats.ArmStats | stats.RatioArmStats
                if metric.kind == "ratio":
                    num, den = values[metric.name]
                    arm_a = stats.RatioArmStats.from_values(num[control_sel], den[control_sel])
                    arm_b = stats.RatioArmStats.from_values(num[treat_sel], den[treat_sel])
                    effect = stats.ratio_effect(arm_a, arm_b, alpha=settings.alpha)
                else:
                    y = values[metric.name]
                    x = pre.get(metric.name)
                    arm_a = stats.ArmStats.from_values(y[control_sel])
                    arm_b = stats.ArmStats.from_values(y[treat_sel])
                    effect = _effect(y[control_sel], y[treat_sel], metric, settings,
                                     x[control_sel] if x is not None else None,
                                     x[treat_sel] if x is not None else None)
                rows.append({
                    "scope": scope.key, "scope_label": scope.label, "metric": metric.name,
                    "primary": position == 0, "arm": arms[k], "control": arms[0],
                    "direction": metric.direction,
                    "n_control": int(control_sel.sum()), "n_treatment": int(treat_sel.sum()),
                    **effect.to_dict(),
                    "bayes": bayes_reads(arm_a, arm_b, metric, settings, effect),
                })
    _adjust(rows, settings.correction)
    overall = next((s for s in scopes if s.mask is None), None)
    return {
        "kind": "ab",
        "arms": list(arms),
        "weights": list(settings.weights),
        "counts": assignment.counts(),
        "left_out": {"conflicting_arms": assignment.conflicting,
                     "unknown_arm": assignment.unknown_arm,
                     "unknown_users": assignment.unknown_users},
        "metrics": [m.to_dict() for m in metrics],
        "cuped_pre_days": settings.cuped_pre_days,
        "sequential": settings.sequential,
        "correction": settings.correction,
        "alpha": settings.alpha,
        "bayes_prior": _prior_dict(settings.prior),
        "srm": srm,
        "srm_flagged": bool(overall is not None and srm.get(overall.key, {}).get("flagged")),
        "rows": rows,
    }


def analyze_summaries(summaries: Sequence[Mapping[str, Any]], arms: Sequence[str],
                      metrics: Sequence[MetricSpec], settings: RandomizedSettings
                      ) -> dict[str, Any]:
    """The same analysis from per-arm summary statistics (n, sum, sum of squares).

    ``summaries``: rows with arm, metric (name), scope ("all" or a segment label), n, sum,
    sum_sq. Binary metrics use the sum as the conversion count.
    """
    for m in metrics:
        if m.kind == "ratio":
            raise ExperimentDataError("metrics", f"'{m.name}' is a ratio metric: per-arm sums "
                                                 "cannot give its variance; use event data")
    table: dict[tuple[str, str, str], stats.ArmStats] = {}
    for row in summaries:
        table[(row["scope"], row["metric"], row["arm"])] = stats.ArmStats(
            int(row["n"]), float(row["sum"]), float(row["sum_sq"]))
    scopes = sorted({k[0] for k in table}, key=lambda s: (s != "all", s))
    rows: list[dict[str, Any]] = []
    srm: dict[str, Any] = {}
    for scope in scopes:
        first_metric = next((m for m in metrics if (scope, m.name, arms[0]) in table), None)
        if first_metric is not None:
            counts = [table.get((scope, first_metric.name, a), stats.ArmStats(0, 0, 0)).n
                      for a in arms]
            if sum(counts) > 0:
                srm[scope] = _srm_dict(stats.srm_check(counts, list(settings.weights),
                                                       threshold=settings.srm_threshold))
        for position, metric in enumerate(metrics):
            control = table.get((scope, metric.name, arms[0]))
            if control is None:
                continue
            for arm in arms[1:]:
                treatment = table.get((scope, metric.name, arm))
                if treatment is None:
                    continue
                effect = _summary_effect(control, treatment, metric, settings)
                rows.append({"scope": scope, "scope_label": scope, "metric": metric.name,
                             "primary": position == 0, "arm": arm, "control": arms[0],
                             "direction": metric.direction,
                             "n_control": control.n, "n_treatment": treatment.n,
                             **effect.to_dict(),
                             "bayes": bayes_reads(control, treatment, metric, settings)})
    _adjust(rows, settings.correction)
    counts = [table.get(("all", metrics[0].name, a), stats.ArmStats(0, 0, 0)).n for a in arms] \
        if metrics else []
    return {"kind": "ab", "source": "summary", "arms": list(arms),
            "weights": list(settings.weights), "counts": counts,
            "metrics": [m.to_dict() for m in metrics], "cuped_pre_days": 0,
            "sequential": settings.sequential, "correction": settings.correction,
            "alpha": settings.alpha, "bayes_prior": _prior_dict(settings.prior), "srm": srm,
            "srm_flagged": bool(srm.get("all", {}).get("flagged")), "rows": rows}


def _prior_dict(prior: bayes.Prior) -> dict[str, Any]:
    return {"proper": prior.proper, "mean": prior.mean, "variance": prior.variance,
            "scale": "relative effect", "description": prior.describe()}


def _srm_dict(result: stats.SrmResult) -> dict[str, Any]:
    return {"observed": list(result.observed), "expected": [float(v) for v in result.expected],
            "chi2": float(result.chi2), "p_value": float(result.p_value),
            "flagged": bool(result.flagged)}


def _adjust(rows: list[dict[str, Any]], method: str) -> None:
    for primary in (True, False):
        family = [r for r in rows if r["primary"] is primary]
        adjusted = stats.adjust_pvalues([r.get("p_value") for r in family],
                                        method if method in ("holm", "bh") else "none")
        for r, p in zip(family, adjusted, strict=True):
            r["p_adjusted"] = p
            r["significant"] = (p is not None and r.get("status") == "ok"
                                and p < r.get("alpha", 0.05))


# ----- quasi-experiments -------------------------------------------------------------------------
def period_panel(ue: UserEvents, *, treated: np.ndarray, control: np.ndarray, metric: MetricSpec,
                 launch_us: int, period_days: float = 7.0, pre_periods: int = 8,
                 post_periods: int = 8, max_units: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """User x period panel around a launch: metric per user in each period.

    Periods are ``period_days`` long, numbered ``-pre_periods .. post_periods - 1`` with 0 the
    first period at or after the launch. A user is in the panel from the period they were
    first seen; at most ``max_units`` users per group (a seeded sample keeps it bounded).
    """
    if pre_periods < 1 or post_periods < 1:
        raise ExperimentDataError("quasi", "needs at least one period before and one after")
    length = int(round(period_days * US_PER_DAY))
    first = ue.first_event_time()
    rng = np.random.default_rng(seed)
    groups = []
    for flag, mask in ((1, treated), (0, control)):
        users = np.flatnonzero(mask & (first < launch_us + post_periods * length))
        if len(users) > max_units:
            users = np.sort(rng.choice(users, size=max_units, replace=False))
        groups.append((flag, users))
    unit_ids = np.concatenate([u for _, u in groups])
    unit_treated = np.concatenate([np.full(len(u), f, np.int64) for f, u in groups])
    if len(np.unique(unit_ids)) != len(unit_ids):
        raise ExperimentDataError("quasi", "the treated and control segments overlap")
    n_periods = pre_periods + post_periods
    # Per-user, per-period metric by one pass over the metric's events.
    pos = np.full(ue.n_users, -1, dtype=np.int64)
    pos[unit_ids] = np.arange(len(unit_ids))
    if metric.event is not None:
        code = ue.event_code(metric.event)
        idx = np.flatnonzero(ue.event == code) if code >= 0 else np.zeros(0, np.int64)
    else:
        idx = np.flatnonzero(ue.revenue != 0)
    owner = pos[ue.user[idx]]
    period = np.floor_divide(ue.time[idx] - launch_us, length)
    ok = (owner >= 0) & (period >= -pre_periods) & (period < post_periods)
    cell = owner[ok] * n_periods + (period[ok] + pre_periods)
    weights = ue.revenue[idx][ok] if metric.kind == "revenue" else None
    grid = np.bincount(cell, weights=weights, minlength=len(unit_ids) * n_periods).reshape(
        len(unit_ids), n_periods).astype(np.float64)
    if metric.kind == "conversion":
        grid = (grid > 0).astype(np.float64)
    periods = np.arange(-pre_periods, post_periods)
    start_period = np.floor_divide(first[unit_ids] - launch_us, length)
    present = periods[None, :] >= start_period[:, None]
    rows, cols = np.nonzero(present)
    return pd.DataFrame({
        "unit": ue.user_ids[unit_ids[rows]],
        "period": periods[cols],
        "treated": unit_treated[rows],
        "post": (periods[cols] >= 0).astype(np.int64),
        "y": grid[rows, cols],
    })


def segment_series(ue: UserEvents, *, mask: np.ndarray, metric: MetricSpec, launch_us: int,
                   period_days: float = 7.0, pre_periods: int = 8,
                   post_periods: int = 8) -> pd.Series:
    """Per period, the metric's mean over the segment's users present in that period."""
    panel = period_panel(ue, treated=mask, control=np.zeros_like(mask), metric=metric,
                         launch_us=launch_us, period_days=period_days, pre_periods=pre_periods,
                         post_periods=post_periods, max_units=10**9)
    return panel.groupby("period")["y"].mean()


def analyze_did(ue: UserEvents, *, treated: np.ndarray, control: np.ndarray, metric: MetricSpec,
                launch_us: int, period_days: float, pre_periods: int, post_periods: int,
                alpha: float = 0.05) -> dict[str, Any]:
    panel = period_panel(ue, treated=treated, control=control, metric=metric, launch_us=launch_us,
                         period_days=period_days, pre_periods=pre_periods,
                         post_periods=post_periods)
    result = quasi.diff_in_diff(panel, unit="unit", period="period", treated="treated",
                                post="post", outcome="y", cluster="unit", alpha=alpha)
    out = _asdict(result)
    out.update({"kind": "did", "metric": metric.to_dict(), "period_days": period_days,
                "pre_periods": pre_periods, "post_periods": post_periods,
                "units": {"treated": int(panel.loc[panel.treated == 1, "unit"].nunique()),
                          "control": int(panel.loc[panel.treated == 0, "unit"].nunique())}})
    return out


def analyze_its(ue: UserEvents, *, mask: np.ndarray, metric: MetricSpec, launch_us: int,
                period_days: float, pre_periods: int, post_periods: int,
                alpha: float = 0.05) -> dict[str, Any]:
    series = segment_series(ue, mask=mask, metric=metric, launch_us=launch_us,
                            period_days=period_days, pre_periods=pre_periods,
                            post_periods=post_periods)
    change_at = int(np.flatnonzero(series.index.to_numpy() >= 0)[0]) if (
        series.index.to_numpy() >= 0).any() else len(series)
    result = quasi.interrupted_time_series(series.reset_index(drop=True), change_at,
                                           alpha=alpha)
    out = _asdict(result)
    out.update({"kind": "its", "metric": metric.to_dict(), "period_days": period_days,
                "series": [{"period": int(p), "value": float(v)} for p, v in series.items()]})
    return out


def _asdict(result: Any) -> dict[str, Any]:
    if hasattr(result, "to_dict"):
        return stats.jsonable(result.to_dict())
    return stats.jsonable({k: getattr(result, k) for k in result.__dataclass_fields__})


# ----- design ------------------------------------------------------------------------------------
def segment_traffic(ue: UserEvents, mask: np.ndarray, as_of: int, days: int = 28) -> float:
    """New users per day entering the segment: members first seen in the last ``days``."""
    first = ue.first_event_time()
    recent = mask & (first >= as_of - days * US_PER_DAY) & (first < as_of)
    return float(recent.sum()) / days


def baseline(ue: UserEvents, mask: np.ndarray, metric: MetricSpec, as_of: int) -> dict[str, Any]:
    """The metric's mean and sd in the segment, measured from each member's signup (members
    whose whole window lies before ``as_of``)."""
    window = int(round(metric.window_days * US_PER_DAY))
    users = np.flatnonzero(mask & (ue.signup + window <= as_of))
    values = metric_values(ue, users, ue.signup[users], metric)
    if len(values) < 2:
        return {"n": int(len(values)), "mean": None, "sd": None}
    return {"n": int(len(values)), "mean": float(values.mean()),
            "sd": float(values.std(ddof=1))}
