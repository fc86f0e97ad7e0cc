"""The in-memory shape every analysis works on: events as dense integer columns. Pure.

Users get dense integer codes 0..n_users-1 in user-id order; events are sorted by
(user code, time), so each user's events are one contiguous slice ``starts[u]:starts[u+1]``
and per-user reductions are ``np.add.reduceat`` / ``np.bincount`` with no hashing or sorting
at query time. Built once per refresh and shared by all segments and analyses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class UserEvents:
    """Events of one dataset as arrays; see the module docstring for the invariants."""

    user_ids: np.ndarray  # (n_users,) object/str, sorted; index = user code
    user: np.ndarray  # (n_events,) int32 user code, non-decreasing
    time: np.ndarray  # (n_events,) int64 microseconds since epoch (UTC), sorted within user
    event: np.ndarray  # (n_events,) int32 code into event_names
    event_names: tuple[str, ...]
    revenue: np.ndarray  # (n_events,) float64, 0 where none
    cost: np.ndarray  # (n_events,) float64, 0 where none
    signup: np.ndarray  # (n_users,) int64 µs: signup_time attribute, else first event
    attributes: pd.DataFrame  # (n_users rows, index = user code), user attributes
    properties: np.ndarray | None = None  # (n_events,) JSON text or None; loaded on request
    has_cost: bool = False
    starts: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.starts is None:
            bounds = np.searchsorted(self.user, np.arange(self.n_users + 1), side="left")
            object.__setattr__(self, "starts", bounds.astype(np.int64))

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_events(self) -> int:
        return len(self.user)

    def event_code(self, name: str) -> int:
        """Code of an event name, -1 when the dataset never saw it."""
        try:
            return self.event_names.index(name)
        except ValueError:
            return -1

    def first_event_time(self) -> np.ndarray:
        out = np.full(self.n_users, np.iinfo(np.int64).max, dtype=np.int64)
        has = self.starts[1:] > self.starts[:-1]
        out[has] = self.time[self.starts[:-1][has]]
        return out

    def last_event_time(self) -> np.ndarray:
        out = np.full(self.n_users, np.iinfo(np.int64).min, dtype=np.int64)
        has = self.starts[1:] > self.starts[:-1]
        out[has] = self.time[self.starts[1:][has] - 1]
        return out


def build_user_events(
    partitions: Iterable[pd.DataFrame],
    users: pd.DataFrame | None = None,
    with_properties: bool = False,
) -> UserEvents:
    """Concatenate store partitions (each sorted by user then time) into a ``UserEvents``.

    Partitions hold disjoint users, so sorting the concatenation by user id is a merge of
    already-sorted runs; numpy's stable sort is fast on that.
    """
    frames = [f for f in partitions if len(f)]
    # Event names arrive dictionary-encoded: unify the categories across partitions so the
    # concatenation keeps small integer codes instead of ~10M Python strings.
    if frames and all(isinstance(f["event"].dtype, pd.CategoricalDtype) for f in frames):
        names = sorted(set().union(*(f["event"].cat.categories.astype(str) for f in frames)))
        frames = [f.assign(event=f["event"].cat.rename_categories(
            f["event"].cat.categories.astype(str)).cat.set_categories(names))
            if list(f["event"].cat.categories) != names else f for f in frames]
    if frames:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = pd.DataFrame({"user_id": pd.Series([], dtype="str"),
                              "event": pd.Series([], dtype="str"),
                              "timestamp": pd.Series([], dtype="datetime64[us, UTC]"),
                              "revenue": pd.Series([], dtype="float64"),
                              "cost": pd.Series([], dtype="float64")})
    user_codes, user_ids = pd.factorize(frame["user_id"].astype("str"), sort=True)
    if isinstance(frame["event"].dtype, pd.CategoricalDtype):
        cats = frame["event"].cat
        event_codes, event_names = cats.codes.to_numpy(), cats.categories.astype(str)
    else:
        event_codes, event_names = pd.factorize(frame["event"].astype("str"), sort=True)
    time = frame["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64) \
        if len(frame) else np.zeros(0, np.int64)
    order = np.lexsort((time, user_codes))
    revenue = frame["revenue"].to_numpy(dtype="float64", na_value=np.nan)[order]
    cost_raw = frame["cost"].to_numpy(dtype="float64", na_value=np.nan)[order] \
        if "cost" in frame else np.full(len(order), np.nan)
    has_cost = bool(np.isfinite(cost_raw).any())
    user_codes = user_codes[order].astype(np.int32)
    ids = np.asarray(user_ids, dtype=object)

    attributes = pd.DataFrame(index=pd.RangeIndex(len(ids)))
    signup = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    if users is not None and len(users):
        aligned = users.drop_duplicates("user_id", keep="last").set_index("user_id").reindex(ids)
        attributes = aligned.reset_index(drop=True)
        if "signup_time" in attributes:
            st = pd.to_datetime(attributes["signup_time"], utc=True, format="ISO8601")
            known = st.notna().to_numpy()
            signup[known] = st[known].to_numpy(dtype="datetime64[us]").astype(np.int64)
    props = None
    if with_properties and "properties" in frame:
        props = frame["properties"].to_numpy(dtype=object)[order]
    data = UserEvents(
        user_ids=ids,
        user=user_codes,
        time=time[order],
        event=event_codes[order].astype(np.int32),
        event_names=tuple(str(n) for n in event_names),
        revenue=np.nan_to_num(revenue, nan=0.0),
        cost=np.nan_to_num(cost_raw, nan=0.0),
        signup=signup,
        attributes=attributes,
        properties=props,
        has_cost=has_cost,
    )
    # Users without a signup attribute: their first event stands in.
    missing = signup == np.iinfo(np.int64).max
    if missing.any():
        signup[missing] = data.first_event_time()[missing]
    del frame, frames
    # Hand Arrow's freed read buffers back to the OS: the arrays above are all that is kept.
    pa.default_memory_pool().release_unused()
    return data
