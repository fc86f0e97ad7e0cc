"""The backlog page cache: a hit only while nothing the page shows has changed."""

from __future__ import annotations

import pytest

from planner import services
from planner.models import Investment, OptimizationRun, Scenario

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(team, client):  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    cache.clear()
    for title, cost in (("Alpha", 10), ("Beta", 20)):
        inv = Investment.objects.create(workspace=team["acme"], title=title, cost=cost,
                                        assumed_reach=100, assumed_value_per_user=5,
                                        assumed_lift=1.0, adoption=1.0)
        services.investment_revalue(investment=inv)
    client.force_login(team["council"])

    def get(path: str = "/w/acme/backlog/"):  # type: ignore[no-untyped-def]
        response = client.get(path)
        assert response.status_code == 200
        return response["X-Page-Cache"], response.content.decode()

    return get


def test_second_view_is_a_hit_and_every_shown_change_is_a_miss(team, page, client,
                                                               django_capture_on_commit_callbacks):
    assert page()[0] == "miss"
    assert page()[0] == "hit"
    assert page("/w/acme/backlog/?sort=cost")[0] == "miss"  # another query string
    # An edit through the model (updated_at moves).
    alpha = Investment.objects.get(title="Alpha")
    alpha.title = "Alpha prime"
    alpha.save()
    state, html = page()
    assert state == "miss" and "Alpha prime" in html
    assert page()[0] == "hit"
    # A re-valuation writes with update() (no updated_at): still a miss, new value shown.
    alpha.assumed_value_per_user = 50
    alpha.save(update_fields=["assumed_value_per_user"])
    page()
    services.investment_revalue(investment=alpha, reason="test")
    state, html = page()
    assert state == "miss"
    # A council decision sets the status by a bulk update: the page shows it at once.
    scenario = Scenario.objects.create(workspace=team["acme"], name="s", budget=100)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_start(scenario=scenario)
    run = OptimizationRun.objects.get()
    page()
    services.decision_record(run=run, investment=alpha, verdict="approve", user=team["council"],
                             rationale="go")
    state, html = page()
    assert state == "miss" and "approved" in html
    # Another session never gets this session's page (it carries the user and CSRF token).
    client.logout()
    client.force_login(team["viewer"])
    state, html = page()
    assert state == "miss" and "viewer" in html and "council" not in html.split("Log out")[1][:40]


def test_the_stored_backlog_page_keeps_no_form_token_and_a_hit_carries_a_usable_one(team):
    import re

    from django.core.cache import cache
    from django.test import Client

    from accounts.page_cache import CSRF_PLACEHOLDER

    cache.clear()
    reader = Client(enforce_csrf_checks=True)
    reader.force_login(team["council"])
    assert reader.get("/w/acme/backlog/")["X-Page-Cache"] == "miss"
    stored = [v for v in cache._cache.values() if b"csrfmiddlewaretoken" in v]  # type: ignore[attr-defined]
    # locmem pickles its values; the stored page holds the placeholder, not a token.
    assert stored and all(CSRF_PLACEHOLDER in v for v in stored)
    hit = reader.get("/w/acme/backlog/")
    html = hit.content.decode()
    assert hit["X-Page-Cache"] == "hit" and "\x1f" not in html
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    # The hit's token signs the reader out (the logout form in the header).
    assert reader.post("/accounts/logout/", {"csrfmiddlewaretoken": token}).status_code == 302
