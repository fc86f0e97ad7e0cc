"""Refining a rule: sweep one behavioural node's threshold or window and watch size and value. Pure.

``sweep_threshold`` varies an event node's ``min_count``, a distinct node's ``min`` or a
revenue node's ``value``; ``sweep_window`` varies the end day of a ``from_signup_days``
window (a node without a window sweeps ``[0, d)``) or the length of a ``last_days`` window.
The node is addressed with the path syntax of ``rules.RuleError``: ``""`` (or ``"$"``) is
the root, ``"all[1].any[0]"`` a nested child, ``"not"`` the child of a not.

The node's per-user statistic is computed once (for windows: its matching events and their
offsets are gathered once) and thresholded per value; every other node of the tree is
evaluated once and the tree is only recombined per value.

Each result row: the swept value (``threshold`` or ``days``), ``size`` (members), ``share``
(of all users), ``metric`` (``value_fn(mask)``; by default the members' mean revenue in
their first 90 days after signup, ``None`` without members) and ``rule`` (the rule with
that value substituted).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from events.frame import US_PER_DAY, UserEvents

from .rules import MAX_DAYS, RuleError, RuleEvaluator, as_of_micros, node_kind, validate_rule

ValueFn = Callable[[np.ndarray], Any]
DEFAULT_VALUE_DAYS = 90
_SEGMENT = re.compile(r"^(all|any)\[(\d+)\]$")


def node_at(rule: Any, path: str) -> Any:
    """The node of ``rule`` at ``path`` (``""`` or ``"$"`` = the root); RuleError if none."""
    node = rule
    if path in ("", "$"):
        return node
    walked = ""
    for segment in path.split("."):
        walked = f"{walked}.{segment}" if walked else segment
        match = _SEGMENT.match(segment)
        if segment == "not" and isinstance(node, Mapping) and "not" in node:
            node = node["not"]
        elif match and isinstance(node, Mapping) and isinstance(node.get(match[1]), list) \
                and int(match[2]) < len(node[match[1]]):
            node = node[match[1]][int(match[2])]
        else:
            raise RuleError(walked, "no rule node at this path")
    return node


def replace_at(rule: Any, path: str, new: Any) -> Any:
    """A deep copy of ``rule`` with the node at ``path`` replaced by ``new``."""
    if path in ("", "$"):
        return copy.deepcopy(new)
    out = copy.deepcopy(rule)
    parent_path, _, last = path.rpartition(".")
    parent = node_at(out, parent_path)
    node_at(out, path)  # raises for a bad path
    match = _SEGMENT.match(last)
    if match:
        parent[match[1]][int(match[2])] = copy.deepcopy(new)
    else:
        parent["not"] = copy.deepcopy(new)
    return out


def revenue_since_signup(data: UserEvents, as_of: int | datetime,
                         days: int = DEFAULT_VALUE_DAYS) -> np.ndarray:
    """Per-user revenue in [signup, signup + days) and before ``as_of``."""
    cutoff = as_of_micros(as_of)
    offset = data.time - data.signup[data.user]
    keep = (data.time < cutoff) & (offset >= 0) & (offset < days * US_PER_DAY)
    return np.bincount(data.user[keep], weights=data.revenue[keep], minlength=data.n_users)


def mean_value(per_user: np.ndarray) -> ValueFn:
    """A value_fn: the members' mean of a per-user array (``None`` without members)."""

    def value(mask: np.ndarray) -> float | None:
        return float(per_user[mask].mean()) if mask.any() else None

    return value


def sweep_threshold(rule: Any, path: str, values: Sequence[float], data: UserEvents,
                    as_of: int | datetime, value_fn: ValueFn | None = None) -> list[dict[str, Any]]:
    """Size, share and value of the rule for each threshold of the behavioural node at path."""
    node, kind, node_path = _swept_node(rule, path, "threshold")
    if kind == "revenue" and node["revenue"]["op"] == "between":
        raise RuleError(_sub(node_path, "revenue.op"),
                        "a revenue between [lo, hi] has no single threshold to sweep")
    evaluator = RuleEvaluator(data, as_of)
    value_fn = value_fn or mean_value(revenue_since_signup(data, evaluator.as_of))
    stat = evaluator.stat(node, node_path)
    rows = []
    for k in values:
        changed = copy.deepcopy(dict(node))
        if kind == "revenue":
            _check_number(k, _sub(node_path, "revenue.value"))
            changed["revenue"]["value"] = k
        else:
            key = "min_count" if kind == "event" else "min"
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
                raise RuleError(_sub(node_path, key), f"thresholds are whole numbers >= 0, "
                                f"got {k!r}")
            changed[key] = int(k)
        rows.append({"threshold": k,
                     **_row(evaluator, rule, node_path, changed, stat, value_fn)})
    return rows


def sweep_window(rule: Any, path: str, days: Sequence[int], data: UserEvents,
                 as_of: int | datetime, value_fn: ValueFn | None = None) -> list[dict[str, Any]]:
    """Size, share and value of the rule for each window length of the node at path."""
    node, kind, node_path = _swept_node(rule, path, "window")
    window = node.get("window") or {"from_signup_days": [0, 1]}
    window_kind = next(iter(window))
    window_path = _sub(node_path, f"window.{window_kind}")
    if window_kind not in ("from_signup_days", "last_days"):
        raise RuleError(window_path, "only from_signup_days and last_days windows can be swept")
    start = window["from_signup_days"][0] if window_kind == "from_signup_days" else 0

    evaluator = RuleEvaluator(data, as_of)
    value_fn = value_fn or mean_value(revenue_since_signup(data, evaluator.as_of))
    # Every event the node counts over all time, and how far into the window it falls:
    # it is in a window of d days when metric < limit(d).
    idx = evaluator.matching_events(node, node_path, window=None)
    if window_kind == "from_signup_days":
        metric = data.time[idx] - data.signup[data.user[idx]]
        keep = metric >= start * US_PER_DAY
        idx, metric = idx[keep], metric[keep]
    else:
        metric = evaluator.as_of - data.time[idx]
    extra = 0 if window_kind == "from_signup_days" else 1  # last_days includes as_of - d
    users = data.user[idx]
    weights = data.revenue[idx] if kind == "revenue" else None
    if kind == "distinct":
        # Each (user, value) pair enters the window with its earliest event.
        codes = evaluator.distinct_codes(node, node_path, idx)
        users, metric = _first_per_pair(users[codes >= 0], codes[codes >= 0],
                                        metric[codes >= 0])

    rows = []
    for d in days:
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or not start < d <= MAX_DAYS:
            raise RuleError(window_path, f"window days must be whole numbers after the "
                            f"start day ({start}) and at most {MAX_DAYS}, got {d!r}")
        inside = metric < int(d) * US_PER_DAY + extra
        stat = np.bincount(users[inside], weights=None if weights is None else weights[inside],
                           minlength=data.n_users)
        new_window = ({"from_signup_days": [start, int(d)]} if window_kind == "from_signup_days"
                      else {"last_days": int(d)})
        changed = {**copy.deepcopy(dict(node)), "window": new_window}
        rows.append({"days": int(d), **_row(evaluator, rule, node_path, changed, stat, value_fn)})
    return rows


def _first_per_pair(users: np.ndarray, codes: np.ndarray,
                    metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct (user, code) pair: the user and the smallest metric."""
    if not len(codes):
        return users.astype(np.int64), metric
    width = int(codes.max()) + 1
    pair = users.astype(np.int64) * width + codes.astype(np.int64)
    order = np.lexsort((metric, pair))
    pair, metric = pair[order], metric[order]
    first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    return pair[first] // width, metric[first]


def _swept_node(rule: Any, path: str, sweep: str) -> tuple[Mapping[str, Any], str, str]:
    """Validate the rule; its behavioural node at ``path``, the node's kind and its path as
    RuleError paths spell it."""
    validate_rule(rule)
    node = node_at(rule, path)
    kind = node_kind(node, path)
    node_path = "" if path == "$" else path
    if kind not in ("event", "distinct", "revenue"):
        raise RuleError(node_path, f"a {sweep} sweep needs an event, distinct or revenue "
                        f"node, not {kind}")
    return node, kind, node_path


def _row(evaluator: RuleEvaluator, rule: Any, node_path: str, changed: Mapping[str, Any],
         stat: np.ndarray, value_fn: ValueFn) -> dict[str, Any]:
    """Size, share and value of the rule with the swept node changed (its statistic given), and
    that rule."""
    mask = evaluator.mask(rule, "", {node_path: evaluator.stat_mask(changed, stat)})
    return {**_summary(mask, value_fn), "rule": replace_at(rule, node_path, changed)}


def _summary(mask: np.ndarray, value_fn: ValueFn) -> dict[str, Any]:
    size = int(mask.sum())
    return {"size": size, "share": size / len(mask) if len(mask) else 0.0,
            "metric": value_fn(mask)}


def _sub(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise RuleError(path, f"expected a number, got {value!r}")
