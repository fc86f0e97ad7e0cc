"""Tables sort by a clicked column header: numbers as numbers, text as text, both directions."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_clicking_a_header_sorts_the_rows(live_server: Any, team: dict[str, Any],
                                          new_page: Any, login: Any) -> None:
    from experiments.models import Hypothesis

    # Lifts chosen so that text order (1.5 < 10 < 2) and number order (1.5 < 2 < 10) differ.
    for statement, lift in (("beta", 10.0), ("alpha", 2.0), ("gamma", 1.5)):
        Hypothesis.objects.create(workspace=team["acme"], statement=statement,
                                  expected_lift=lift)
    page = new_page()
    login(page, "analyst")
    page.goto(f"{live_server.url}/w/acme/hypotheses/")

    def statements() -> list[str]:
        return [t.strip() for t in page.locator("table tbody tr td:first-child a").all_inner_texts()]

    header = page.locator("table thead th", has_text="Expected lift")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert statements() == ["gamma", "alpha", "beta"]  # 1.5, 2, 10: numeric order
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    assert statements() == ["beta", "alpha", "gamma"]
    by_text = page.locator("table thead th", has_text="Statement")
    by_text.focus()
    page.keyboard.press("Enter")  # keyboard users sort too
    assert statements() == ["alpha", "beta", "gamma"]
    assert page.errors == []
