"""Behaviour analyses (funnels, paths, retention, discovery) as cached jobs, and what they feed:
drop-off and behaviour segments, and exploratory hypotheses.

The analyses are pure (``behaviour.analytics.funnels/paths/cohorts/signals``); this module checks
the input, caches one result per (dataset version, kind, parameters), runs the work as a job
and turns results into segments.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction

from behaviour.models import AnalysisKind, BehaviourAnalysis
from behaviour.retention_params import clean_retention, retention_kwargs
from events.errors import FieldError
from events.models import Dataset
from events.services import load_user_events
from jobs.services import Job, JobFailed, job_create, job_handler, job_progress
from segments.models import Segment, SegmentKind
from segments.segment_services import segment_create, segment_members_mask

MAX_STEPS = 20


class AnalysisInvalid(FieldError):
    """An analysis request was refused; ``field`` names the parameter."""


def _number(params: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = AnalysisInvalid.as_float(params.get(key, default), key)
    if not math.isfinite(value) or not low <= value <= high:
        raise AnalysisInvalid(key, f"must be between {low:g} and {high:g}")
    return value


def _choice(params: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = str(params.get(key, choices[0]))
    if value not in choices:
        raise AnalysisInvalid(key, f"must be one of {', '.join(choices)}")
    return value


def _event(params: dict[str, Any], key: str, names: set[str], required: bool) -> str | None:
    value = params.get(key)
    if value in (None, ""):
        if required:
            raise AnalysisInvalid(key, "choose an event")
        return None
    if str(value) not in names:
        raise AnalysisInvalid(key, f"'{value}' is not an event of this dataset")
    return str(value)


def _clean_steps(steps: Any, catalog: list[dict[str, Any]]) -> list[Any]:
    """Funnel steps: event names, or ``{"event": name, "filter": {key, op, value}}`` whose key
    is one of the event's property keys in the catalog. A step without a filter stays a name."""
    from behaviour.analytics.step_filters import OPS

    if not isinstance(steps, list) or not 2 <= len(steps) <= MAX_STEPS:
        raise AnalysisInvalid("steps", f"give 2 to {MAX_STEPS} event names in order")
    keys = {str(e.get("event")): set(e.get("property_keys") or []) for e in catalog}
    out: list[Any] = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            if str(step) not in keys:
                raise AnalysisInvalid(f"steps[{i}]", f"'{step}' is not an event of this dataset")
            out.append(str(step))
            continue
        event = step.get("event")
        if not isinstance(event, str) or event not in keys:
            raise AnalysisInvalid(f"steps[{i}].event",
                                  f"'{event}' is not an event of this dataset")
        spec = step.get("filter")
        if spec in (None, {}):
            out.append(event)
            continue
        where = f"steps[{i}].filter"
        if not isinstance(spec, dict):
            raise AnalysisInvalid(where, "must be an object with key, op and value")
        key = spec.get("key")
        if not isinstance(key, str) or key not in keys[event]:
            known = ", ".join(sorted(keys[event])) or "none recorded"
            raise AnalysisInvalid(f"{where}.key", f"'{key}' is not a property of {event} "
                                                  f"events (known: {known})")
        op = spec.get("op", "eq")
        if op not in OPS:
            raise AnalysisInvalid(f"{where}.op", f"must be one of {', '.join(OPS)}")
        value = spec.get("value")
        if op == "in":
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, str | int | float | bool) for v in value):
                raise AnalysisInvalid(f"{where}.value", "give a non-empty list of values")
        elif not isinstance(value, str | int | float | bool) or value == "":
            raise AnalysisInvalid(f"{where}.value", "give a value (text, number or boolean)")
        out.append({"event": event, "filter": {"key": key, "op": op, "value": value}})
    return out


def step_event(step: Any) -> str:
    """The event name of a cleaned funnel step (a name or ``{"event": ..., "filter": ...}``)."""
    return str(step["event"]) if isinstance(step, dict) else str(step)


def clean_params(dataset: Dataset, kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validated, normalized parameters (the cache key); errors name the field."""
    if kind not in AnalysisKind.values:
        raise AnalysisInvalid("kind", f"must be one of {', '.join(AnalysisKind.values)}")
    if not isinstance(params, dict):
        raise AnalysisInvalid("params", "must be an object")
    names = {str(e.get("event")) for e in (dataset.event_catalog or [])}
    attributes = {str(a.get("attribute")) for a in (dataset.attribute_catalog or [])}
    out: dict[str, Any] = {}
    segment = params.get("segment")
    if segment not in (None, ""):
        if not Segment.objects.filter(pk=segment, dataset=dataset).exists():
            raise AnalysisInvalid("segment", f"{segment} is not a segment of this dataset")
        out["segment"] = int(segment)
    if kind == AnalysisKind.TRENDS:
        from behaviour.trends_services import clean_trends

        return {**out, **clean_trends(dataset, params)}
    if kind == AnalysisKind.FUNNEL:
        out["steps"] = _clean_steps(params.get("steps"), dataset.event_catalog or [])
        step_events = [step_event(s) for s in out["steps"]]
        out["window_days"] = _number(params, "window_days", 14, 0.001, 3650)
        out["mode"] = _choice(params, "mode", ("ordered", "strict", "any_order"))
        exclusions = params.get("exclusions") or []
        if not isinstance(exclusions, list):
            raise AnalysisInvalid("exclusions", "must be a list of event names")
        for i, name in enumerate(exclusions):
            if str(name) not in names:
                raise AnalysisInvalid(f"exclusions[{i}]", f"'{name}' is not an event of this "
                                                          "dataset")
            if str(name) in step_events:
                raise AnalysisInvalid(f"exclusions[{i}]", "an exclusion cannot also be a step")
        out["exclusions"] = [str(e) for e in exclusions]
        breakdown = params.get("breakdown") or ""
        if breakdown and breakdown not in attributes:
            raise AnalysisInvalid("breakdown", f"'{breakdown}' is not a user attribute")
        out["breakdown"] = breakdown
        by_segments = params.get("breakdown_segments") or []
        if not isinstance(by_segments, list):
            raise AnalysisInvalid("breakdown_segments", "must be a list of segment ids")
        for i, seg in enumerate(by_segments):
            if not Segment.objects.filter(pk=seg, dataset=dataset).exists():
                raise AnalysisInvalid(f"breakdown_segments[{i}]",
                                      f"{seg} is not a segment of this dataset")
        out["breakdown_segments"] = sorted(int(x) for x in by_segments)
        if out["mode"] == "any_order" and len(set(step_events)) != len(step_events):
            raise AnalysisInvalid("steps", "in any order, each step must be a different event")
    elif kind == AnalysisKind.PATHS:
        out["start_event"] = _event(params, "start_event", names, False)
        out["end_event"] = _event(params, "end_event", names, False)
        if out["start_event"] and out["end_event"]:
            raise AnalysisInvalid("end_event", "give a start event or an end event, not both")
        out["outcome_event"] = _event(params, "outcome_event", names, False)
        out["steps"] = int(_number(params, "steps", 3, 1, 5))
        out["top"] = int(_number(params, "top", 20, 1, 200))
    elif kind == AnalysisKind.RETENTION:
        out.update(clean_retention(dataset, params, names, AnalysisInvalid))
    else:
        out["outcome_event"] = _event(params, "outcome_event", names, True)
        out["outcome_days"] = _number(params, "outcome_days", 60, 1, 3650)
        events = params.get("events") or sorted(names - {"signup", out["outcome_event"]})
        for i, name in enumerate(events):
            if str(name) not in names:
                raise AnalysisInvalid(f"events[{i}]", f"'{name}' is not an event of this "
                                                      "dataset")
        out["events"] = sorted(str(e) for e in events)
        out["thresholds"] = [int(t) for t in params.get("thresholds") or (1, 2, 3, 5)]
        out["windows"] = [float(w) for w in params.get("windows") or (1, 3, 7, 14)]
        if any(t < 1 for t in out["thresholds"]) or any(w <= 0 for w in out["windows"]):
            raise AnalysisInvalid("thresholds", "thresholds >= 1 and windows > 0 days")
    return out


def analysis_start(*, dataset: Dataset, kind: str, params: dict[str, Any],
                   user: object | None = None) -> BehaviourAnalysis:
    """The cached result for this dataset version and input, else a new job."""
    if dataset.version == 0:
        raise AnalysisInvalid("dataset", "the dataset has no events yet")
    clean = clean_params(dataset, kind, params)
    key = hashlib.sha256(json.dumps([dataset.pk, dataset.version, kind, clean],
                                    sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        cached = (BehaviourAnalysis.objects.filter(dataset=dataset, input_hash=key)
                  .exclude(job__state="failed").order_by("-id").first())
        if cached is not None:
            return cached
        analysis = BehaviourAnalysis.objects.create(
            workspace=dataset.workspace, dataset=dataset, kind=kind, params=clean,
            dataset_version=dataset.version, input_hash=key,
            created_by=user if getattr(user, "is_authenticated", False) else None)
        analysis.job = job_create(workspace=dataset.workspace, kind="behaviour",
                                  params={"analysis_id": analysis.pk}, input_hash=key,
                                  user=analysis.created_by)
        analysis.save(update_fields=["job"])
    return analysis


def analysis_scope(analysis: BehaviourAnalysis, ue: Any) -> np.ndarray | None:
    seg_id = analysis.params.get("segment")
    if not seg_id:
        return None
    return segment_members_mask(Segment.objects.get(pk=seg_id), ue)


@job_handler("behaviour")
def analysis_run(job: Job) -> dict[str, Any]:
    analysis = BehaviourAnalysis.objects.select_related("dataset").get(
        pk=job.params["analysis_id"])
    if analysis.result:
        return {"analysis_id": analysis.pk, "reused": True}
    from behaviour.analytics.fanout import FANOUT_KINDS
    from jobs.fanout import fanout_enabled

    from . import fanout_services

    if analysis.kind in FANOUT_KINDS and fanout_enabled():
        return fanout_services.analysis_fanout_start(job, analysis)
    job_progress(job, 10, "loading events")
    ue = load_user_events(analysis.dataset)
    as_of = int(ue.time.max()) + 1 if ue.n_events else 0
    users = analysis_scope(analysis, ue)
    p = analysis.params
    job_progress(job, 40, f"{analysis.get_kind_display().lower()} on {ue.n_users:,} users")
    segment_masks = _segment_masks(p.get("breakdown_segments") or [], ue)
    try:
        result = compute(analysis.kind, p, ue, as_of, users, segment_masks)
    except ValueError as exc:
        raise JobFailed(str(exc)) from None
    analysis.result = result
    analysis.save(update_fields=["result"])
    return {"analysis_id": analysis.pk}


def _segment_masks(ids: list[int], ue: Any) -> list[tuple[str, np.ndarray]]:
    return [(seg.name, segment_members_mask(seg, ue))
            for seg in Segment.objects.filter(pk__in=ids).order_by("name")]


def compute(kind: str, p: dict[str, Any], ue: Any, as_of: int, users: np.ndarray | None,
            segment_masks: list[tuple[str, np.ndarray]] | None = None) -> dict[str, Any]:
    """Run one analysis. Funnel breakdowns by segment are one funnel per segment (segments
    may overlap, so they cannot be one label per user), added as series after the
    attribute breakdown."""
    from behaviour.analytics import cohorts, funnels, paths, signals

    if kind == AnalysisKind.TRENDS:
        from behaviour.trends_services import trends_compute

        return trends_compute(p, ue, users, segment_masks or [])
    if kind == AnalysisKind.FUNNEL:
        breakdown = None
        if p.get("breakdown") and p["breakdown"] in ue.attributes.columns:
            breakdown = ue.attributes[p["breakdown"]].to_numpy(dtype=object)
        common = {"as_of_us": as_of, "window_days": p["window_days"], "mode": p["mode"],
                  "exclusions": p["exclusions"]}
        out = funnels.funnel(ue, p["steps"], users=users, breakdown=breakdown,
                             **common).to_dict()
        for name, mask in segment_masks or []:
            scoped = mask if users is None else (mask & users)
            series = funnels.funnel(ue, p["steps"], users=scoped, **common).to_dict()["overall"]
            out["breakdown"].append({**series, "label": f"segment: {name}"})
        return out
    if kind == AnalysisKind.PATHS:
        return paths.paths(ue, as_of_us=as_of, start_event=p["start_event"],
                           end_event=p["end_event"], steps=p["steps"], top=p["top"],
                           outcome_event=p["outcome_event"], users=users).to_dict()
    if kind == AnalysisKind.RETENTION:
        return cohorts.retention(ue, as_of_us=as_of, users=users,
                                 **retention_kwargs(p)).to_dict()
    grid = signals.candidates_grid(p["events"], p["thresholds"], p["windows"])
    outcome = signals.Outcome(kind="event", event=p["outcome_event"], days=p["outcome_days"])
    return signals.discover(ue, as_of_us=as_of, outcome=outcome, candidates=grid,
                            users=users).to_dict()


# ----- results into segments and hypotheses -------------------------------------------------------
def save_dropoff_segment(*, analysis: BehaviourAnalysis, step: int, name: str,
                         owner: object | None = None) -> Segment:
    """Users who reached ``step`` (1-based) but not the next, and are out of their window."""
    if analysis.kind != AnalysisKind.FUNNEL or not analysis.result:
        raise AnalysisInvalid("analysis", "only a finished funnel has drop-off users")
    from behaviour.analytics import funnels

    n_steps = len(analysis.params["steps"])
    if not 1 <= step < n_steps:
        raise AnalysisInvalid("step", f"must be between 1 and {n_steps - 1}")
    ue = load_user_events(analysis.dataset)
    as_of = int(ue.time.max()) + 1 if ue.n_events else 0
    p = analysis.params
    res = funnels.funnel(ue, p["steps"], as_of_us=as_of, window_days=p["window_days"],
                         mode=p["mode"], exclusions=p["exclusions"], users=analysis_scope(analysis, ue))
    members = ue.user_ids[res.dropoff_mask(step)].tolist()
    return segment_create(dataset=analysis.dataset, name=name, kind=SegmentKind.CLUSTER,
                          definition={"members": members, "source": {
                              "analysis": analysis.pk, "dropoff_after_step": step,
                              "steps": p["steps"]}}, owner=owner)


def behaviour_rule(candidate: dict[str, Any]) -> dict[str, Any]:
    """A discovered behaviour as a segment rule ("k+ E in the first w days after signup")."""
    window = float(candidate["window_days"])
    if window != int(window):
        raise AnalysisInvalid("candidate", "only whole-day windows can become rules")
    return {"event": candidate["event"], "min_count": int(candidate["min_count"]),
            "window": {"from_signup_days": [0, int(window)]}}


def discovery_signal(analysis: BehaviourAnalysis, rank: int) -> dict[str, Any]:
    if analysis.kind != AnalysisKind.DISCOVERY or not analysis.result:
        raise AnalysisInvalid("analysis", "only a finished discovery has behaviours")
    for sig in analysis.result.get("signals", []):
        if int(sig.get("rank", -1)) == rank:
            return sig
    raise AnalysisInvalid("rank", f"no behaviour ranked {rank}")


def save_behaviour_segment(*, analysis: BehaviourAnalysis, rank: int, name: str,
                           owner: object | None = None) -> Segment:
    sig = discovery_signal(analysis, rank)
    return segment_create(dataset=analysis.dataset, name=name, kind=SegmentKind.RULE,
                          definition=behaviour_rule(sig["candidate"]), owner=owner)


# Who turns a discovered behaviour into a hypothesis: the experiments domain registers its
# function from its AppConfig.ready(), so this lower app never imports it.
HYPOTHESIS_PROPOSERS: list[Callable[..., Any]] = []


def behaviour_hypothesis(*, analysis: BehaviourAnalysis, rank: int, segment: Segment | None,
                         owner: object | None = None) -> Any:
    """An exploratory hypothesis from a discovered behaviour (found by looking at the data)."""
    if not HYPOTHESIS_PROPOSERS:
        raise AnalysisInvalid("hypotheses", "no app that keeps hypotheses is installed")
    return HYPOTHESIS_PROPOSERS[-1](analysis=analysis, signal=discovery_signal(analysis, rank),
                                    rank=rank, segment=segment, owner=owner)


def result_frame(analysis: BehaviourAnalysis) -> pd.DataFrame | None:
    """The retention matrix as a frame for display (cohort rows, period columns)."""
    r = analysis.result or {}
    if analysis.kind != AnalysisKind.RETENTION or "shares" not in r:
        return None
    return pd.DataFrame(r["shares"], index=r.get("cohorts"))


def register_erasure_hook() -> None:
    """Cached analysis results may list user ids: an erasure scrubs them."""
    from events.privacy_services import ErasureHook
    from events.privacy_services import register_erasure_hook as register

    register(ErasureHook(scrub=lambda dataset, scrubber: scrubber.rows(
        BehaviourAnalysis.objects.filter(dataset=dataset), ("result",), "behaviour_results")))
