"""Behaviour analyses over store partitions: a per-partition stage whose part is integer
partials (counts, integer sums, a few distinct values; never one row per user) and a merge
that equals the single-process ``compute`` on the same data (funnel quantiles: see
``funnel_partials``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from events.event_kinds import return_label
from events.frame import UserEvents

if TYPE_CHECKING:
    from .cohorts import RetentionOptions
    from .funnels import FunnelOptions
    from .paths import PathsOptions

FANOUT_KINDS = ("funnel", "paths", "retention", "discovery")


def _funnel_options(p: Mapping[str, Any], as_of: int) -> FunnelOptions:
    from .funnels import FunnelOptions

    return FunnelOptions(as_of_us=as_of, window_days=p["window_days"], mode=p["mode"],
                         exclusions=p["exclusions"])


def _paths_options(p: Mapping[str, Any], as_of: int) -> PathsOptions:
    from .paths import PathsOptions

    return PathsOptions(as_of_us=as_of, start_event=p["start_event"], end_event=p["end_event"],
                        steps=p["steps"], outcome_event=p["outcome_event"])


def _retention_options(p: Mapping[str, Any], as_of: int) -> RetentionOptions:
    from .cohorts import RetentionOptions

    start = p.get("start_event")
    returns = p.get("return_events")
    return RetentionOptions(
        as_of_us=as_of, cohort_by=p["cohort_by"], period=p["period"], mode=p["mode"],
        return_on=p["return_on"], max_periods=p["max_periods"],
        period_kind=p.get("period_kind", "calendar"), period_days=int(p.get("period_days") or 7),
        within=int(p.get("within") or 1), cohort_event=None if start in (None, "signup")
        else start, return_events=None if returns is None else tuple(returns),
        return_label=None if returns is None
        else return_label(returns, p.get("return_set") == "chosen"))


def analysis_map(kind: str, p: Mapping[str, Any], ue: UserEvents, as_of: int,
                 users: np.ndarray | None,
                 segment_masks: Sequence[tuple[str, np.ndarray]] = ()) -> dict[str, Any]:
    """The per-partition stage of ``behaviour_services.compute`` for ``FANOUT_KINDS``."""
    from . import cohorts, paths, signals

    if kind == "paths":
        part = paths.paths_partial(ue, _paths_options(p, as_of), users=users)
        return {"labels": part.labels.astype(str), "sessions": part.sessions,
                "users": part.users, "outcome": part.outcome,
                "first_users": part.first_users if part.first_users is not None
                else np.zeros(len(part.sessions), np.int64),
                "totals": np.array([part.anchored, part.anchored_users, part.reached])}

    if kind == "funnel":
        from .funnel_partials import funnel_partial

        breakdown = ue.attributes[p["breakdown"]].to_numpy(dtype=object) \
            if p.get("breakdown") and p["breakdown"] in ue.attributes.columns else None
        return funnel_partial(ue, p["steps"], _funnel_options(p, as_of), users=users,
                              breakdown=breakdown,
                              segment_masks=[mask for _name, mask in segment_masks]).to_arrays()
    if kind == "retention":
        part = cohorts.retention_partial(ue, _retention_options(p, as_of), users=users)
        if part is None:
            return {"empty": np.array([True])}
        out = {"empty": np.array([False]), "lo_period": np.array([part.lo_period]),
               "size": part.size, "counts": part.counts}
        if part.eligible is not None:
            out["eligible"] = part.eligible
        return out
    if kind == "discovery":
        grid = signals.candidates_grid(p["events"], p["thresholds"], p["windows"])
        outcome = signals.Outcome(kind="event", event=p["outcome_event"], days=p["outcome_days"])
        return signals.discovery_partial(ue, as_of_us=as_of, outcome=outcome,
                                         candidates=grid, users=users).to_arrays()
    raise ValueError(f"{kind} analyses do not fan out")


def analysis_reduce(kind: str, p: Mapping[str, Any], parts: Iterable[dict[str, Any]],
                    as_of: int, segment_names: Sequence[str] = ()) -> dict[str, Any]:
    """``behaviour_services.compute``'s result from the partitions' ``analysis_map`` parts."""
    from . import cohorts, paths, signals

    if kind == "paths":
        partials = [paths.PathsPartial(
            labels=np.asarray(x["labels"]), sessions=np.asarray(x["sessions"]),
            users=np.asarray(x["users"]), outcome=np.asarray(x["outcome"]),
            anchored=int(x["totals"][0]), anchored_users=int(x["totals"][1]),
            reached=int(x["totals"][2]),
            first_users=np.asarray(x["first_users"]) if "first_users" in x else None)
            for x in parts]
        return paths.paths_from_partials(partials, _paths_options(p, as_of),
                                         top=p["top"]).to_dict()
    if kind == "funnel":
        from .funnel_partials import funnel_from_partials

        return funnel_from_partials(parts, p["steps"], _funnel_options(p, as_of),
                                    segment_names)
    if kind == "retention":
        partials = [None if bool(x["empty"][0]) else cohorts.RetentionPartial(
            lo_period=int(x["lo_period"][0]), size=np.asarray(x["size"]),
            counts=np.asarray(x["counts"]),
            eligible=np.asarray(x["eligible"]) if "eligible" in x else None) for x in parts]
        return cohorts.retention_from_partials(partials,
                                               _retention_options(p, as_of)).to_dict()
    if kind == "discovery":
        grid = signals.candidates_grid(p["events"], p["thresholds"], p["windows"])
        outcome = signals.Outcome(kind="event", event=p["outcome_event"], days=p["outcome_days"])
        return signals.discover_from_partials(
            (signals.DiscoveryPartial.from_arrays(x) for x in parts), as_of_us=as_of,
            outcome=outcome, candidates=grid).to_dict()
    raise ValueError(f"{kind} analyses do not fan out")
