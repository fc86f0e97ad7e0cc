"""Timeline layout and now / next / later on hand-placed items (no database)."""

from __future__ import annotations

from datetime import date

from planner.roadmap_timeline import TimelineItem, horizons, layout


def it(id_: int, title: str, start: str = "", duration: int = 1,
       teams: tuple[str, ...] = ()) -> TimelineItem:
    return TimelineItem(id=id_, title=title, roadmap="core", state="approve",
                        start_quarter=start, duration=duration, teams=teams)


ITEMS = [it(1, "Checkout", "2027Q1", 2, ("web", "api")), it(2, "Search", "2027Q2", 1, ("web",)),
         it(3, "Widget", "2027Q4", 1, ("api",)), it(4, "Docs"), it(5, "Pricing", "2027Q2")]


def test_columns_run_from_the_first_to_the_last_quarter_then_unscheduled():
    grid = layout(ITEMS)
    assert grid["columns"] == ["2027Q1", "2027Q2", "2027Q3", "2027Q4", "unscheduled"]


def test_cards_sit_in_every_team_lane_and_overlaps_take_another_row():
    lanes = {lane["team"]: lane for lane in layout(ITEMS)["lanes"]}
    assert list(lanes) == ["api", "web", "no team"]
    place = {team: [(c["item"].title, c["col"], c["span"], c["row"]) for c in lane["cards"]]
             for team, lane in lanes.items()}
    # Checkout spans Q1-Q2 (cols 1-2); Search in Q2 overlaps it in "web": second row.
    assert place["web"] == [("Checkout", 1, 2, 1), ("Search", 2, 1, 2)]
    assert place["api"] == [("Checkout", 1, 2, 1), ("Widget", 4, 1, 1)]
    assert place["no team"] == [("Pricing", 2, 1, 1), ("Docs", 5, 1, 1)]
    assert (lanes["web"]["rows"], lanes["api"]["rows"], lanes["no team"]["rows"]) == (2, 1, 1)


def test_an_empty_roadmap_has_no_columns():
    assert layout([]) == {"columns": [], "lanes": []}


def test_now_next_later_from_today_or_the_plans_first_quarter():
    # Today in 2027Q2: Checkout (Q1-Q2), Search and Pricing (Q2) run now; nothing starts in Q3;
    # Widget (Q4) and the unscheduled Docs are later.
    h = horizons(ITEMS, date(2027, 5, 10))
    assert (h["anchor"], h["next"]) == ("2027Q2", "2027Q3")
    assert [i.title for i in h["now_items"]] == ["Checkout", "Pricing", "Search"]
    assert h["next_items"] == [] and h["earlier_items"] == []
    assert [i.title for i in h["later_items"]] == ["Widget", "Docs"]
    # Today before the plan (2026Q4): the anchor is the plan's first quarter, 2027Q1.
    h = horizons(ITEMS, date(2026, 11, 1))
    assert (h["anchor"], [i.title for i in h["now_items"]],
            [i.title for i in h["next_items"]]) == ("2027Q1", ["Checkout"], ["Pricing", "Search"])
    # Today in 2027Q4: Checkout, Search and Pricing ended earlier.
    h = horizons(ITEMS, date(2027, 12, 31))
    assert [i.title for i in h["earlier_items"]] == ["Checkout", "Pricing", "Search"]
    assert [i.title for i in h["now_items"]] == ["Widget"]
