"""Whether a result computed on one dataset version still matches the data (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Freshness:
    """A result's dataset version against the dataset's current one."""

    dataset_version: int
    current_version: int
    users_then: int | None = None
    users_now: int | None = None

    @property
    def stale(self) -> bool:
        return self.current_version > self.dataset_version

    @property
    def users_added(self) -> int | None:
        """Users gained (negative: lost, e.g. after an erasure) since the result's version."""
        if self.users_then is None or self.users_now is None:
            return None
        return self.users_now - self.users_then

    def sentence(self) -> str:
        """'computed on v1; the data is now v3 (+24,000 users)', or '' when current."""
        if not self.stale:
            return ""
        text = f"computed on v{self.dataset_version}; the data is now v{self.current_version}"
        added = self.users_added
        if added is not None:
            text += f" ({added:+,} user{'' if abs(added) == 1 else 's'})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {"stale": self.stale, "dataset_version": self.dataset_version,
                "current_version": self.current_version, "users_then": self.users_then,
                "users_now": self.users_now, "users_added": self.users_added,
                "sentence": self.sentence()}


def freshness(*, dataset_version: int, current_version: int, users_then: int | None = None,
              users_now: int | None = None) -> Freshness:
    """Stale exactly when the dataset has a newer version than the one the result used."""
    return Freshness(dataset_version=int(dataset_version), current_version=int(current_version),
                     users_then=None if users_then is None else int(users_then),
                     users_now=None if users_now is None else int(users_now))
