"""Static files: the trimmed chart bundle holds every trace type the pages draw, and with hashed
static files (production, `make demo`) WhiteNoise serves content-hashed, compressed files with
a one-year immutable cache header."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.templatetags.static import static
from django.test import Client, override_settings

ROOT = Path(settings.BASE_DIR)
BUNDLE = ROOT / "static" / "vendor" / "plotly-custom.min.js"
ENTRY = ROOT / "scripts" / "plotly_bundle" / "index.js"
# `type:` values in chart code that are not trace types: error bars, axis, shape types.
NOT_TRACES = {"data", "percent", "constant", "sqrt", "category", "multicategory", "linear",
              "log", "date", "-", "line", "rect", "circle", "path"}


def _drawn_trace_types() -> set[str]:
    sources = [*(ROOT / "static").glob("*.js"), *(ROOT / "templates").rglob("*.html")]
    found: set[str] = set()
    for path in sources:
        found |= set(re.findall(r"""\btype\s*:\s*["']([\w-]+)["']""", path.read_text()))
    return found - NOT_TRACES


def _registered(text: str) -> set[str]:
    return set(re.findall(r'moduleType:"trace",name:"(\w+)"', text))


def test_every_trace_type_the_pages_draw_is_in_the_bundle():
    drawn = _drawn_trace_types()
    assert {"scatter", "bar", "heatmap", "sankey"} <= drawn  # the reader finds today's charts
    bundle = BUNDLE.read_text()
    registered = _registered(bundle)
    missing = drawn - registered
    assert not missing, (f"trace types drawn but not in {BUNDLE.name}: {sorted(missing)}; add "
                         f"them to {ENTRY.relative_to(ROOT)} and run scripts/build_plotly.sh")
    # The bundle was built from today's entry file: the same traces, named in its banner.
    entry = set(re.findall(r'plotly\.js/lib/(\w+)"', ENTRY.read_text())) - {"core"}
    assert registered == entry
    banner = bundle.split("*/", 1)[0]
    assert "custom bundle: " + ", ".join(sorted(entry, key=banner.index)) in banner


def test_the_bundle_is_trimmed():
    bundle = BUNDLE.read_bytes()
    assert not _registered(bundle.decode()) & {"pie", "scatter3d", "scattergl", "choropleth",
                                                "scattermap", "parcoords", "table"}
    assert len(bundle) < 1_600_000  # the full library is 4.8 MB
    assert len(gzip.compress(bundle, 6)) < 600_000  # what a browser transfers


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["production", "make demo (DEBUG=1)"])
def test_hashed_compressed_static_files_get_long_cache_headers(tmp_path, debug):
    storages = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "config.static_storage.HashedCompressedStaticFiles"}}
    with override_settings(STORAGES=storages, STATIC_ROOT=tmp_path, DEBUG=debug,
                           WHITENOISE_USE_FINDERS=False, WHITENOISE_AUTOREFRESH=False,
                           SECURE_SSL_REDIRECT=False):
        call_command("collectstatic", interactive=False, verbosity=0,
                     ignore_patterns=["admin", "rest_framework", "drf_spectacular_sidecar"])
        url = static("vendor/plotly-custom.min.js")
        assert re.fullmatch(r"/static/vendor/plotly-custom\.min\.[0-9a-f]{12}\.js", url)
        client = Client()  # its handler builds WhiteNoise from these settings
        page = client.get("/accounts/login/").content.decode()
        assert static("app.css") in page and static("favicon.svg") in page
        assert re.search(r'href="/static/app\.[0-9a-f]{12}\.css"', page)

        r = client.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
        assert r.status_code == 200
        assert r["Content-Encoding"] == "gzip"
        assert r["Cache-Control"] == "max-age=315360000, public, immutable"
        body = b"".join(r.streaming_content)
        assert gzip.decompress(body) == BUNDLE.read_bytes()
        assert len(body) < len(BUNDLE.read_bytes()) / 2

        plain = client.get(url)  # no Accept-Encoding: the file itself
        assert "Content-Encoding" not in plain
        assert b"".join(plain.streaming_content) == BUNDLE.read_bytes()
        # The unhashed name still answers, but may change: a short cache only.
        short = client.get("/static/vendor/plotly-custom.min.js")
        assert short.status_code == 200 and "immutable" not in short["Cache-Control"]
        favicon = client.get(static("favicon.svg"))
        assert favicon.status_code == 200 and favicon["Content-Type"] == "image/svg+xml"


@pytest.mark.django_db
def test_the_old_chart_address_redirects_to_the_bundle(client):
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 302 and r["Location"] == static("vendor/plotly-custom.min.js")
