"""``FieldError``: a refused input, naming the field at fault and saying what is wrong.

The analyses, erasures, experiments and webhooks refuse input with subclasses of it
(``AnalysisInvalid``, ``ErasureInvalid``, ``ExperimentInvalid``, ``ExperimentDataError``,
``WebhookInvalid``), so their pages and API turn any of them into an answer by field alike.

It lives here, in events, because events is the lowest app that every one of those raisers may
import: accounts and jobs are lower, but the pure cores (``experiments.data`` raises one) may
import neither (a contract). This module is pure too: no Django.
"""

from __future__ import annotations


class FieldError(ValueError):
    """A refused input: ``field`` names where, ``message`` says what; ``str()`` is both."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    @classmethod
    def as_float(cls, raw: object, field: str, message: str = "must be a number") -> float:
        """``float(raw)``, or this error on ``field`` when ``raw`` is not a number (a float may
        still be infinite or NaN: the caller checks the range)."""
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise cls(field, message) from None
