"""Phones (390 x 844): on the backlog, segment list, run page and dataset page nothing sticks
out of the viewport except inside a table's scroll box; a table wider than the screen shows
the edge cue while more is to the right (gone once scrolled to the end); the charts draw with
the trimmed chart bundle; the favicon resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_council_and_pm import seed_plan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 390, 844

# Elements whose right edge passes the viewport and that no scroll box (or other clipping
# ancestor: a chart's frame) holds.
STICKING_OUT_JS = """(width) => {
  const held = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.getBoundingClientRect().right > width + 0.5 && !held(el)
        && !out.some((o) => o.contains(el))) out.push(el);
  }
  return out.slice(0, 8).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\\s+/).join(".") : "")
    + " right=" + Math.round(el.getBoundingClientRect().right));
}"""

BOXES_JS = """() => Array.from(document.querySelectorAll("main table")).map((t) => {
  const box = t.closest(".scroll"), frame = box && box.parentElement;
  return {inBox: !!box, framed: !!frame && frame.classList.contains("scroll-cue"),
          wide: !!box && box.scrollWidth > box.clientWidth,
          cue: !!frame && frame.classList.contains("more-right")};
})"""


def test_tables_scroll_with_a_cue_and_nothing_else_overflows(
    live_server: Any, team: dict[str, Any], new_page: Any, login: Any, tmp_path: Path
) -> None:
    plan = seed_plan(team, tmp_path)
    page = new_page(width=WIDTH, height=HEIGHT)
    login(page, "analyst")
    paths = {"backlog": "/w/acme/backlog/", "segment list": "/w/acme/segments/",
             "run": f"/w/acme/runs/{plan['run'].pk}/",
             "dataset": f"/w/acme/datasets/{plan['dataset'].pk}/"}
    for name, path in paths.items():
        page.goto(live_server.url + path)
        page.wait_for_selector("main table")
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, (
            name, page.evaluate(STICKING_OUT_JS, WIDTH))
        assert page.evaluate(STICKING_OUT_JS, WIDTH) == [], name
        boxes = page.evaluate(BOXES_JS)
        assert boxes and all(b["inBox"] and b["framed"] for b in boxes), (name, boxes)
        wide = [b for b in boxes if b["wide"]]
        assert wide, f"{name}: no table wider than {WIDTH}px to check the cue on"
        # A wide table shows the cue; a table that fits does not.
        assert all(b["cue"] for b in wide), (name, boxes)
        assert not any(b["cue"] for b in boxes if not b["wide"]), (name, boxes)
        # The cue is drawn: its fade turns opaque (after a short transition).
        page.wait_for_function("() => getComputedStyle(document.querySelector("
                               "'.scroll-cue.more-right'), '::after').opacity === '1'")
        # Scrolled to its end, the first wide box loses the right cue and gains the left one.
        frame = page.locator(".scroll-cue.more-right").first.element_handle()
        frame.evaluate("(f) => { const box = f.querySelector(':scope > .scroll');"
                       " box.scrollLeft = box.scrollWidth; }")
        page.wait_for_function(
            "(f) => !f.classList.contains('more-right') && f.classList.contains('more-left')",
            arg=frame)
        if name == "run":  # the charts draw with the trimmed bundle
            page.wait_for_selector("#chart-frontier .main-svg", state="attached")
    assert page.errors == []

    href = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert href.endswith("/static/favicon.svg")
    icon = page.request.get(href)
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in icon.body()
