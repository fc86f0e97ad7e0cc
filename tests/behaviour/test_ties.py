"""Issue 16, item 14: events that share a timestamp are simultaneous, whatever their names.

The rule (README, "Behaviour"; the docstrings of funnels.py and paths.py): the order in which
tied events are stored (by event name) is never read. A funnel step may take an event at the
same time as the previous step's event (``t[k+1] >= t[k]``, PostHog's rule); an event fills
at most one step; strict mode and exclusions look only at events strictly between two times;
a path step is the set of events of one timestamp. Hand-made ties, counts worked out by hand,
and the same data with renamed events (another name order) must give the same results.
Through the real import (the store orders ties by event name). No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from behaviour.analytics.funnels import funnel
from behaviour.analytics.paths import paths
from events.frame import build_user_events
from events.ingest import ImportOptions, merge_into_store, parse_events
from events.store import EventStore

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
AS_OF = int((T0 + timedelta(days=30)).timestamp() * 1_000_000)

# Two namings of the same events: in the first the step names sort in step order, in the
# second in the reverse order (and "x", "other" move from last to first).
NATURAL = {"view": "a_view", "cart": "b_cart", "buy": "c_buy", "x": "x", "other": "z_other"}
REVERSED = {"view": "z_view", "cart": "y_cart", "buy": "x_buy", "x": "a_x", "other": "0_other"}


def load(tmp_path, rows, naming):
    """rows: (user, event, seconds after T0[, properties]); stored through parse_events and
    merge_into_store."""
    path = tmp_path / f"events-{id(naming)}.csv"
    lines = ["user_id,event,timestamp,properties"]
    for user, event, seconds, *props in rows:
        stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = '"' + props[0].replace('"', '""') + '"' if props else ""
        lines.append(f"{user},{naming[event]},{stamp},{text}")
    path.write_text("\n".join(lines) + "\n")
    store = EventStore(tmp_path / f"store-{id(naming)}", partitions=2)
    merge_into_store(store, "ds", import_id="1",
                     events=parse_events(path, ImportOptions(now=T0 + timedelta(days=60))),
                     users=None, report={})
    return build_user_events(store.iter_partitions("ds"))


FUNNEL_ROWS = [
    ("u1", "view", 0), ("u1", "cart", 0), ("u1", "buy", 0),           # all in one second
    ("u2", "cart", 0), ("u2", "view", 0), ("u2", "buy", 60),          # view and cart tied
    ("u3", "view", 0), ("u3", "buy", 0), ("u3", "cart", 60),          # buy before cart
    ("u4", "view", 0), ("u4", "cart", 30), ("u4", "buy", 30), ("u4", "other", 30),
    ("u5", "view", 0), ("u5", "other", 10), ("u5", "cart", 20),       # strict: broken at 10
    ("u6", "view", 0),
]


def users_per_step(ue, naming, mode, exclusions=(), window_days=1.0):
    res = funnel(ue, [naming["view"], naming["cart"], naming["buy"]], mode=mode,
                 as_of_us=AS_OF, window_days=window_days,
                 exclusions=[naming[x] for x in exclusions])
    return [s.users for s in res.overall.steps], res


@pytest.mark.parametrize("naming", [NATURAL, REVERSED], ids=["natural", "reversed"])
def test_ordered_funnel_lets_a_step_share_the_previous_steps_second(tmp_path, naming):
    ue = load(tmp_path, FUNNEL_ROWS, naming)
    counts, res = users_per_step(ue, naming, "ordered")
    # u1 (all tied), u2 (view and cart tied, buy later), u4 reach buy; u3 reaches cart only
    # (its buy is before its cart); u5 reaches cart; u6 views.
    assert counts == [6, 5, 3]
    ttc = res.overall.steps[1].time_to_convert
    # view -> cart: u1 0 s, u2 0 s, u3 60 s, u4 30 s, u5 20 s
    assert ttc.n == 5 and ttc.median_seconds == 20.0
    assert res.overall.steps[2].time_to_convert.median_seconds == 0.0  # 0, 60, 0


@pytest.mark.parametrize("naming", [NATURAL, REVERSED], ids=["natural", "reversed"])
def test_strict_funnel_looks_only_at_events_strictly_between(tmp_path, naming):
    ue = load(tmp_path, FUNNEL_ROWS, naming)
    counts, _ = users_per_step(ue, naming, "strict")
    # u1: all in one second. u2: cart in view's second, buy at the next time. u3: cart at
    # the next time after view, buy never after. u4: cart at the next time (30; "other" is
    # simultaneous, not between), buy in cart's second. u5: "other" at 10 is between view
    # and cart. u6: view only.
    assert counts == [6, 4, 3]


@pytest.mark.parametrize("naming", [NATURAL, REVERSED], ids=["natural", "reversed"])
def test_exclusions_count_only_strictly_between_the_first_and_last_step(tmp_path, naming):
    rows = [("u1", "view", 0), ("u1", "x", 0), ("u1", "cart", 60), ("u1", "buy", 120),  # x tied with view
            ("u2", "view", 0), ("u2", "cart", 60), ("u2", "x", 120), ("u2", "buy", 120),  # x tied with buy
            ("u3", "view", 0), ("u3", "x", 30), ("u3", "cart", 60),  # x between
            ("u4", "view", 0), ("u4", "cart", 0), ("u4", "x", 0)]  # all tied
    ue = load(tmp_path, rows, naming)
    counts, res = users_per_step(ue, naming, "ordered", exclusions=("x",))
    assert counts == [3, 3, 2]
    assert res.excluded_users.tolist() == [False, False, True, False]
    # In any order every step event starts an attempt: u3's attempt from cart@60 reaches one
    # step with nothing to exclude.
    counts, res = users_per_step(ue, naming, "any_order", exclusions=("x",))
    assert counts == [4, 3, 2]
    assert res.overall.excluded == 0


@pytest.mark.parametrize("naming", [NATURAL, REVERSED], ids=["natural", "reversed"])
def test_any_order_counts_steps_at_or_after_the_start_time(tmp_path, naming):
    rows = [("u1", "buy", 0), ("u1", "view", 0), ("u1", "cart", 60),
            ("u2", "cart", 0), ("u2", "view", 0),
            ("u3", "buy", 0), ("u3", "view", 90000)]  # outside the one-day window
    ue = load(tmp_path, rows, naming)
    counts, res = users_per_step(ue, naming, "any_order")
    assert counts == [3, 2, 1]
    # u1: steps completed at 0, 0 and 60 s; u2: 0 and 0.
    assert res.overall.steps[1].time_to_convert.median_seconds == 0.0
    assert res.overall.steps[2].time_to_convert.median_seconds == 60.0


@pytest.mark.parametrize("mode", ["ordered", "strict"])
def test_a_repeated_step_takes_another_event_which_may_share_the_second(tmp_path, mode):
    rows = [("u1", "view", 0, '{"p": 1}'), ("u1", "view", 0, '{"p": 2}'), ("u1", "cart", 0),
            ("u2", "view", 0), ("u2", "cart", 0)]
    ue = load(tmp_path, rows, NATURAL)
    res = funnel(ue, ["a_view", "a_view", "b_cart"], mode=mode, as_of_us=AS_OF)
    # u1: two view events in one second fill steps 1 and 2 (PostHog would want the second
    # strictly later: its SQL cannot tell two events of one second apart; we can), cart
    # step 3. u2: one view event cannot fill two steps.
    assert [s.users for s in res.overall.steps] == [2, 1, 1]


@pytest.mark.parametrize("naming", [NATURAL, REVERSED], ids=["natural", "reversed"])
def test_a_path_step_is_the_set_of_events_of_one_second(tmp_path, naming):
    rows = [("u1", "view", 0), ("u1", "cart", 0), ("u1", "buy", 60),
            ("u2", "cart", 0), ("u2", "view", 0), ("u2", "buy", 60),
            ("u3", "view", 0), ("u3", "cart", 30), ("u3", "buy", 60),
            ("u4", "view", 0), ("u4", "cart", 0), ("u4", "cart", 10), ("u4", "buy", 20)]
    ue = load(tmp_path, rows, naming)
    back = {v: k for k, v in naming.items()}
    res = paths(ue, as_of_us=AS_OF, start_event=naming["view"], steps=3, top=None,
                outcome_event=naming["buy"], min_sessions=1)
    got = {tuple(frozenset(back[n] for n in step) for step in p.step_events):
           (p.sessions, p.users, p.outcome_sessions) for p in res.paths}
    view_cart, cart, buy = frozenset({"view", "cart"}), frozenset({"cart"}), frozenset({"buy"})
    assert got == {
        (view_cart, buy): (2, 2, 2),                            # u1, u2
        (frozenset({"view"}), cart, buy): (1, 1, 1),            # u3
        (view_cart, cart, buy): (1, 1, 1),                      # u4
    }
    label = next(p for p in res.paths if p.sessions == 2).steps[0]
    assert label == " + ".join(sorted([naming["view"], naming["cart"]]))
