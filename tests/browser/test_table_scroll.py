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


DRAW_EVERY_TRACE_JS = """async () => {
  const traces = {
    scatter: [{type: "scatter", mode: "lines+markers", x: [1, 2, 3], y: [2, 1, 3],
               error_y: {type: "data", array: [0.1, 0.2, 0.1]}}],
    bar: [{type: "bar", orientation: "h", x: [3, 5], y: ["a", "b"],
           error_x: {type: "data", symmetric: false, array: [1, 1], arrayminus: [1, 2]}}],
    heatmap: [{type: "heatmap", z: [[1, 2], [3, null]], x: ["0", "1"], y: ["c1", "c2"]}],
    sankey: [{type: "sankey", node: {label: ["start", "a", "b"]},
              link: {source: [0, 0], target: [1, 2], value: [3, 1]}}],
    histogram: [{type: "histogram", x: [1, 1, 2, 3, 3, 3]}],
    box: [{type: "box", y: [1, 2, 3, 4, 10]}],
  };
  const drawn = {};
  for (const [name, data] of Object.entries(traces)) {
    const div = document.createElement("div");
    div.style.width = "300px"; div.style.height = "200px";
    document.body.appendChild(div);
    await Plotly.newPlot(div, data, {title: {text: name}});
    drawn[name] = div.querySelectorAll(".main-svg").length > 0
      && div._fullData[0].type === name && div._fullData[0].visible === true;
  }
  return drawn;
}"""


def test_the_bundle_draws_every_trace_type_it_registers(
    live_server: Any, new_page: Any
) -> None:
    from django.templatetags.static import static

    page = new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.add_script_tag(url=live_server.url + static("vendor/plotly-custom.min.js"))
    drawn = page.evaluate(DRAW_EVERY_TRACE_JS)
    assert drawn == {name: True for name in
                     ("scatter", "bar", "heatmap", "sankey", "histogram", "box")}
    assert page.evaluate("typeof Plotly.newPlot") == "function"
    assert page.errors == []
