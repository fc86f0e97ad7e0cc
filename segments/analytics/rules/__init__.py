"""Segment rules: a JSON rule tree over user attributes and behaviour, evaluated vectorized. Pure.

A rule is a tree of JSON objects. Every node has exactly one *kind key*:

Combinators
    ``{"all": [node, ...]}``  every child matches (``all`` of ``[]`` = everyone)
    ``{"any": [node, ...]}``  some child matches (``any`` of ``[]`` = no one)
    ``{"not": node}``         the child does not match

Attribute (a column of ``UserEvents.attributes``)
    ``{"attribute": "plan", "op": OP, "value": ...}`` with OP one of
    ``eq ne in not_in gt gte lt lte between is_null not_null contains``.
    ``in``/``not_in`` take a list; ``between`` takes ``[lo, hi]`` (inclusive); ``is_null`` and
    ``not_null`` take no value; ``contains`` takes text (substring of a text attribute).
    A missing value never matches, except for ``is_null`` (``ne``/``not_in`` included). The
    ordering ops and ``between`` need a numeric column (compared with numbers) or a datetime
    column (compared with ISO 8601 text); a text column whose values are all ISO 8601 dates
    counts as a datetime column for them (equality on a text column stays textual). An
    attribute the data does not have counts as missing for every user.

Behaviour (count of events)
    ``{"event": "report_created", "min_count": 2, "max_count": null, "window": WINDOW,
    "where": [PROPFILTER, ...]}``: the number of the user's events whose name matches
    ``event`` (an ``fnmatch`` glob, case-sensitive: ``"feature_*"``; a plain name matches
    itself), that fall in the window and pass every property filter, lies in
    ``[min_count, max_count]`` (``min_count`` defaults to 1; no ``max_count`` = no cap).

Distinct
    ``{"distinct": {"event": "feature_used", "property": "feature"}, "min": 3, "max": null,
    "window": WINDOW, "where": [...]}``: the number of distinct values of that event property
    among the user's matching events is in ``[min, max]`` (``min`` defaults to 1). Without
    ``"property"`` it counts distinct event *names* matching the pattern. Values are distinct
    by JSON type and value (``"1"`` and ``1`` differ; ``1`` and ``1.0`` do not); events
    without the property (or with null) are not counted.

Revenue
    ``{"revenue": {"op": OP, "value": V}, "window": WINDOW}``: the sum of the user's revenue
    in the window, OP one of ``gt gte lt lte eq between`` (``between`` takes ``[lo, hi]``,
    inclusive). Users without events have revenue 0.

First / last seen
    ``{"first_seen": {"op": OP, "value": ...}}`` (and ``"last_seen"``), over the user's
    events before ``as_of``: ``before`` ISO (time < value), ``after`` ISO (time >= value),
    ``between`` [ISO, ISO] (half-open), ``within_days`` N (time >= as_of - N days). Users
    with no event before ``as_of`` never match.

WINDOW (optional; absent = all time before ``as_of``), one key:
    ``{"from_signup_days": [a, b]}`` = [signup + a days, signup + b days), whole days, b > a;
    ``{"between": [ISO, ISO]}`` = absolute and half-open;
    ``{"last_days": N}`` = [as_of - N days, as_of).
    ISO texts without an offset are read as UTC.

PROPFILTER on the event's JSON properties (top-level keys only):
    ``{"property": "feature", "op": OP, "value": ...}`` with OP one of
    ``eq ne in contains gt gte lt lte exists``. Comparisons are typed: text equals text,
    numbers equal numbers (booleans are not numbers), booleans equal booleans. ``contains``
    is a substring test on text values; ``gt``/``gte``/``lt``/``lte`` take a number and
    match numeric values. A property that is absent or null never matches, except
    ``{"op": "exists", "value": false}`` (``exists`` alone means ``value: true``).

Every evaluation takes ``as_of`` (µs since the epoch, or a timezone-aware datetime); events
at or after ``as_of`` are ignored everywhere.

Errors carry a path to the offending node: ``all[1].any[0].window.from_signup_days``; the
root node's path is ``""`` (shown as ``(root)``). The same syntax addresses nodes for
sweeps (see ``refine``).
"""

from __future__ import annotations

from .common import (  # noqa: F401
    ATTRIBUTE_OPS,
    COMBINATORS,
    EPOCH,
    KINDS,
    LEAVES,
    MAX_DAYS,
    NODE_KEYS,
    PROPERTY_OPS,
    REVENUE_OPS,
    ROOT,
    SEEN_MATRIX_CELLS,
    SEEN_OPS,
    WINDOW_KINDS,
    RuleError,
    as_of_micros,
    is_glob,
    node_kind,
    parse_iso,
    to_micros,
)
from .describe import (  # noqa: F401
    describe_rule,
)
from .evaluate import (  # noqa: F401
    RuleEvaluator,
    compare,
    distinct_per_user,
    evaluate_rule,
)
from .validate import (  # noqa: F401
    validate_rule,
    validate_window,
)

__all__ = [
    "ATTRIBUTE_OPS",
    "COMBINATORS",
    "EPOCH",
    "KINDS",
    "LEAVES",
    "MAX_DAYS",
    "NODE_KEYS",
    "PROPERTY_OPS",
    "REVENUE_OPS",
    "ROOT",
    "RuleError",
    "RuleEvaluator",
    "SEEN_MATRIX_CELLS",
    "SEEN_OPS",
    "WINDOW_KINDS",
    "as_of_micros",
    "compare",
    "describe_rule",
    "distinct_per_user",
    "evaluate_rule",
    "is_glob",
    "node_kind",
    "parse_iso",
    "to_micros",
    "validate_rule",
    "validate_window",
]
