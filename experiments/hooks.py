"""What other apps call into this one through registries: the erasure hook (assignment tables
and results keep user ids) and the hypotheses behaviour discovery proposes."""

from __future__ import annotations

import math
from typing import Any

from experiments.models import EXPECTED_LIFT, Evidence, Experiment, Hypothesis
from segments.models import Segment


# ----- erasure: assignment tables and results keep user ids ---------------------------------------
def _erasure_experiments(dataset: Any) -> Any:
    from django.db.models import Q

    return Experiment.objects.filter(workspace=dataset.workspace).filter(
        Q(dataset=dataset) | Q(dataset__isnull=True))


def _erasure_files(dataset: Any) -> list[tuple[str, str]]:
    from events.services import get_store

    store = get_store()
    return [("assignment_tables", name) for name in
            _erasure_experiments(dataset).exclude(assignments_file="").values_list(
                "assignments_file", flat=True) if store.file_exists(name)]


def _erasure_scrub(dataset: Any, scrubber: Any) -> None:
    """Experiment results; assignment row counts follow the rewritten tables."""
    import pyarrow.parquet as pq

    from events.services import get_store

    store = get_store()
    for pk, name, rows in _erasure_experiments(dataset).exclude(assignments_file="").values_list(
            "pk", "assignments_file", "assignments_rows"):
        if store.file_exists(name):
            with store.open_file(name) as handle:
                n = pq.ParquetFile(handle).metadata.num_rows
            if n != rows:
                Experiment.objects.filter(pk=pk).update(assignments_rows=n)
    scrubber.rows(_erasure_experiments(dataset), ("result",), "experiment_results")


def register_erasure_hook() -> None:
    from events.privacy_services import ErasureHook
    from events.privacy_services import register_erasure_hook as register

    register(ErasureHook(files=_erasure_files, scrub=_erasure_scrub))


# ----- hypotheses proposed by behaviour discovery (registered with behaviour from ready()) ------
def hypothesis_from_behaviour(*, analysis: Any, signal: dict[str, Any], rank: int,
                              segment: Segment | None, owner: object | None = None) -> Hypothesis:
    """An exploratory hypothesis from a discovered behaviour (found by looking at the data)."""
    sig = signal
    cal = sig.get("calibration") or {}
    lift = (cal.get("lift") or {}).get("estimate")
    outcome = analysis.result.get("outcome", {}).get("label", "the outcome")
    expected = round(float(lift) - 1, 4) if lift and math.isfinite(float(lift)) else 0.0
    held = min(max(expected, EXPECTED_LIFT[0]), EXPECTED_LIFT[1])
    note = (f"; the observed lift {expected:+,.0%} is held at {held:+,.0%}, the most a "
            "hypothesis expects" if held != expected else "")
    hyp = Hypothesis.objects.create(
        workspace=analysis.workspace,
        statement=f"Getting users to {sig['candidate']['label']} raises {outcome}"[:300],
        mechanism="observed association (correlational): the behaviour may be a sign of "
                  "intent rather than its cause; an experiment must show it",
        metric=outcome[:100], expected_lift=held,
        basis=f"behaviour discovery #{analysis.pk} on dataset v{analysis.dataset_version}: "
              f"{'confirmed' if sig.get('confirmed') else 'not confirmed'} on holdout" + note,
        evidence=Evidence.OBSERVATIONAL, exploratory=True, owner=owner,
        source={"analysis": analysis.pk, "rank": rank, "candidate": sig["candidate"]})
    if segment is not None:
        hyp.segments.add(segment)
    return hyp
