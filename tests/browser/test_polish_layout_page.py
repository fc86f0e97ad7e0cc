"""Layout fixes found on the demo data: the behaviour form's grids fill their fieldsets (the
funnel's fields sat in one narrow column), the trends chart at 390 px keeps its legend below the
x-axis title without a scrollbar, and the dataset page's pseudonymize checkbox sits beside its
label."""

from __future__ import annotations

import pytest

from behaviour import services as bs
from tests.browser.test_trends_insights_page import seed_dataset

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def box(page, selector):  # type: ignore[no-untyped-def]
    return page.locator(selector).first.bounding_box()


def test_forms_and_the_trends_chart_lay_out(new_page, login, live_server, team, tmp_path):
    dataset = seed_dataset(team["acme"], tmp_path)
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/behaviour/")
    steps, window = box(page, "#b-steps"), box(page, "#b-window")
    # Side by side on one row (was: stacked in a column a fifth of the fieldset wide).
    assert abs(steps["y"] - window["y"]) < 40 and window["x"] > steps["x"] + steps["width"]
    fieldset = box(page, "fieldset:has(#b-steps)")
    grid = box(page, "fieldset:has(#b-steps) > .grid4")
    assert grid["width"] > 0.9 * (fieldset["width"] - 40)
    # The trends checkbox beside its words.
    check, label = box(page, "#t-compare"), box(page, "label:has(#t-compare)")
    assert check["width"] < 40 and abs(check["y"] + check["height"] / 2
                                       - (label["y"] + label["height"] / 2)) < 12

    page.goto(f"{live_server.url}/w/acme/datasets/{dataset.pk}/")
    check, label = box(page, "#id_pseudonymize"), box(page, "label[for=id_pseudonymize]")
    assert check["width"] < 40 and check["x"] - label["x"] < 10

    analysis = bs.analysis_start(dataset=dataset, kind="trends", params={
        "series": [{"event": "view", "measure": "unique_users"},
                   {"event": "buy", "measure": "count"}],
        "interval": "week", "breakdown_by": "attribute", "breakdown_key": "plan",
        "formula": "B / A * 100", "compare": True})
    phone = new_page(width=390, height=800)
    login(phone, "viewer")
    phone.goto(f"{live_server.url}/w/acme/behaviour/{analysis.pk}/")
    phone.wait_for_selector("#chart-trends .main-svg")
    entries = phone.locator("#chart-trends .legend .traces").count()
    assert entries >= 10  # 3 plans x 2 series, 2 previous periods, the formula and its previous
    title = box(phone, "#chart-trends .xtitle")
    legend = box(phone, "#chart-trends .legend")
    chart = box(phone, "#chart-trends")
    assert legend["y"] >= title["y"] + title["height"] - 1  # below the axis title, not over it
    assert legend["y"] + legend["height"] <= chart["y"] + chart["height"] + 1  # all inside
    # No scrollbar: the legend is as tall as its entries (each ~19 px), not clipped.
    assert legend["height"] >= entries * 15
    assert phone.errors == []
