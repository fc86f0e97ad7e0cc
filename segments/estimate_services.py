"""A rule's live size estimate while it is built: evaluated on a seeded sample of users kept
per dataset version (the segment form asks for it as the rule changes)."""

from __future__ import annotations

import threading
import time
from typing import Any

from events.models import Dataset
from events.services import load_user_events

from .analytics.estimate import SAMPLE_USERS, sample_codes, size_estimate, subset_users
from .analytics.rules import RuleError, evaluate_rule
from .models import SegmentKind
from .segment_services import DefinitionError, check_definition

# (dataset pk, version) -> (sample frame, users in the version, as_of): one dataset at a time.
_SAMPLES: dict[tuple[int, int], tuple[Any, int, int]] = {}
_LOCK = threading.Lock()


def _sample(dataset: Dataset) -> tuple[Any, int, int]:
    key = (dataset.pk, dataset.version)
    with _LOCK:
        if key not in _SAMPLES:
            data = load_user_events(dataset)
            codes = sample_codes(data.n_users, SAMPLE_USERS)
            frame = data if len(codes) == data.n_users else subset_users(data, codes)
            as_of = int(data.time.max()) + 1 if data.n_events else 0
            _SAMPLES.clear()
            _SAMPLES[key] = (frame, data.n_users, as_of)
        return _SAMPLES[key]


def forget_samples() -> None:
    with _LOCK:
        _SAMPLES.clear()


def rule_size_estimate(*, dataset: Dataset, definition: Any) -> dict[str, Any]:
    """Estimated members of a rule with a 95% interval (exact on a dataset no larger than the
    sample); a refused rule raises ``DefinitionError`` naming the node."""
    if not dataset.version:
        raise DefinitionError("dataset", "no data imported into this dataset yet")
    if not isinstance(definition, dict):
        raise DefinitionError("", "a rule is a JSON object, e.g. {\"all\": []}")
    check_definition(dataset=dataset, kind=SegmentKind.RULE, definition=definition)
    started = time.perf_counter()
    frame, population, as_of = _sample(dataset)
    try:
        mask = evaluate_rule(definition, frame, as_of)
    except RuleError as exc:
        raise DefinitionError(exc.path, exc.message) from None
    estimate = size_estimate(matched=int(mask.sum()), sample=frame.n_users,
                             population=population)
    return {**estimate.as_dict(), "dataset": dataset.pk, "dataset_version": dataset.version,
            "seconds": round(time.perf_counter() - started, 4)}
