"""Webhooks reach public addresses only (SSRF, OWASP API7:2023): every non-public form of an
address is refused when a subscription is saved (API 400 on ``url``, the page's form error)
and when a delivery is attempted (the attempt fails naming the reason and nothing is
connected: a loopback receiver records zero connections); the host is looked up once per
attempt and the connection goes to the checked address. ``WEBHOOK_ALLOW_PRIVATE_TARGETS``
lifts the refusal. Names resolve from tests/integrations/conftest.py's table; nothing here
connects anywhere but the loopback receivers each test starts."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from integrations import egress, webhooks
from integrations.models import WebhookSubscription

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "93.184.215.14"  # a global address; the resolver table hands it out, nothing connects
REFUSED = "hooks to private or local addresses are refused"


@pytest.fixture(autouse=True)
def _private_targets_refused(settings):
    """The default, whatever the environment running the tests says."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False


# ----- a loopback receiver that counts connections -------------------------------------------
class CountingReceiver:
    """HTTP on 127.0.0.1: ``connections`` counts accepted TCP connections (a request or
    not), ``requests`` holds each POST's path, headers and body; answers 200."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body)})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request, client_address) -> bool:  # type: ignore[no-untyped-def]
                receiver.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = CountingReceiver()
    yield r
    r.close()


# ----- the forms refused ---------------------------------------------------------------------
# (host as written in a URL, the address it means, the reason named)
LITERALS = [
    ("127.0.0.1", "127.0.0.1", "loopback"),
    ("127.1", "127.0.0.1", "loopback"),
    ("2130706433", "127.0.0.1", "loopback"),
    ("0x7f.1", "127.0.0.1", "loopback"),
    ("0x7f000001", "127.0.0.1", "loopback"),
    ("017700000001", "127.0.0.1", "loopback"),
    ("127.255.0.9", "127.255.0.9", "loopback"),
    ("[::1]", "::1", "loopback"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "IPv4-mapped (127.0.0.1 is loopback)"),
    ("[::ffff:10.0.0.5]", "::ffff:10.0.0.5", "IPv4-mapped (10.0.0.5 is private)"),
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1", "IPv4-mapped"),
    ("0.0.0.0", "0.0.0.0", "unspecified"),
    ("0", "0.0.0.0", "unspecified"),
    ("[::]", "::", "unspecified"),
    ("10.0.0.5", "10.0.0.5", "private"),
    ("172.16.3.4", "172.16.3.4", "private"),
    ("192.168.1.1", "192.168.1.1", "private"),
    ("[fc00::1]", "fc00::1", "private"),
    ("[fd12:3456::1]", "fd12:3456::1", "private"),
    ("169.254.169.254", "169.254.169.254", "link-local"),
    ("2852039166", "169.254.169.254", "link-local"),
    ("[fe80::1]", "fe80::1", "link-local"),
    ("100.64.0.1", "100.64.0.1", "shared address space"),
    ("224.0.0.1", "224.0.0.1", "multicast"),
    ("[ff02::1]", "ff02::1", "multicast"),
    ("240.0.0.1", "240.0.0.1", "reserved"),
    ("255.255.255.255", "255.255.255.255", "reserved"),
    ("192.0.2.10", "192.0.2.10", "private"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "198.18.0.1", "private"),  # benchmarking
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::a9fe:a9fe", "NAT64 of 169.254.169.254"),
    ("[2002:7f00:1::]", "2002:7f00:1::", "6to4 of 127.0.0.1"),
    ("[fec0::1]", "fec0::1", "site-local"),
]
LOCAL_NAMES = ["localhost", "LOCALHOST", "localhost.", "redis.localhost", "a.b.localhost"]
PRIVATE_NAMES = {  # names the resolver table answers with a non-public address
    "db.internal.test": ["10.0.0.5"],
    "metadata.test": ["169.254.169.254"],
    "loop.test": ["127.0.0.1"],
    "v6loop.test": ["::1"],
    "mixed.test": [PUBLIC, "192.168.0.7"],  # one bad address among public ones is enough
}
ALL_REFUSED_HOSTS = ([h for h, _, _ in LITERALS] + LOCAL_NAMES + list(PRIVATE_NAMES))


def _bare(host: str) -> str:
    return host.strip("[]")


@pytest.fixture
def private_names(dns):
    dns.table.update(PRIVATE_NAMES)
    dns.table["hooks.example.com"] = [PUBLIC]
    return dns


# ----- egress (no database) ------------------------------------------------------------------
@pytest.mark.parametrize(("host", "address", "reason"), LITERALS)
def test_every_spelling_of_a_non_public_address_is_read_and_refused(host, address, reason):
    ip = egress.parse_ip(_bare(host))
    assert str(ip) == address
    assert not egress.is_public(ip) and not egress.is_public(_bare(host))
    assert egress.non_public_reason(ip).startswith(reason)
    with pytest.raises(egress.EgressRefused) as err:
        egress.check_target(_bare(host), 80)
    assert str(err.value).startswith(f"{REFUSED}: ")
    assert _bare(host) in str(err.value) and reason in str(err.value)
    egress.check_target(_bare(host), 80, allow_private=True)  # the setting lifts it


def test_messages_name_the_host_and_why():
    def refusal(host: str) -> str:
        with pytest.raises(egress.EgressRefused) as err:
            egress.check_target(host, 80)
        return str(err.value)

    assert refusal("10.0.0.5") == f"{REFUSED}: 10.0.0.5 is private"
    assert refusal("2130706433") == (f"{REFUSED}: 2130706433 is the address 127.0.0.1, which "
                                     "is loopback")
    assert refusal("169.254.169.254") == f"{REFUSED}: 169.254.169.254 is link-local"
    assert refusal("localhost") == f"{REFUSED}: localhost is the local machine"


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "2a00:1450:4001:82b::200e"])
def test_public_addresses_pass(address):
    assert egress.is_public(address) and egress.non_public_reason(address) is None
    egress.check_target(address, 443)


@pytest.mark.parametrize("name", LOCAL_NAMES)
def test_localhost_names_are_refused_without_a_lookup(name, dns):
    with pytest.raises(egress.EgressRefused, match="is the local machine"):
        egress.check_target(name, 80)
    with pytest.raises(egress.EgressRefused, match="is the local machine"):
        egress.resolve_public(name, 80)
    assert dns.calls == []


@pytest.mark.parametrize("name", sorted(PRIVATE_NAMES))
def test_a_name_resolving_to_a_non_public_address_is_refused(name, private_names):
    with pytest.raises(egress.EgressRefused) as err:
        egress.resolve_public(name, 443)
    bad = next(a for a in PRIVATE_NAMES[name] if not egress.is_public(a))
    assert f"{name} resolves to {bad}, which is" in str(err.value)
    with pytest.raises(egress.EgressRefused):
        egress.check_target(name, 443)
    assert egress.resolve_public(name, 443, allow_private=True) == PRIVATE_NAMES[name][0]


def test_resolution_is_one_lookup_and_an_unknown_name_passes_the_save_check(private_names):
    assert egress.resolve_public("hooks.example.com", 443) == PUBLIC
    assert private_names.calls == ["hooks.example.com"]
    egress.check_target("not-yet.test", 443)  # does not resolve (yet): checked at delivery
    with pytest.raises(socket.gaierror):
        egress.resolve_public("not-yet.test", 443)


def test_the_egress_module_imports_no_django():
    code = ("import sys; import integrations.egress; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'django', 'celery', 'rest_framework', 'config'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


# ----- at save: the API and the page ---------------------------------------------------------
def _url(host: str, port: int | None = None, path: str = "/hook") -> str:
    return f"http://{host}{f':{port}' if port else ''}{path}"


@pytest.mark.django_db
def test_api_refuses_every_non_public_form_on_create_and_update(api, team, private_names):
    admin = api(team["admin"])
    for host in ALL_REFUSED_HOSTS:
        for url in (_url(host), _url(host, 6379, "/"), _url(host).replace("http:", "https:")):
            r = admin.post("/api/v1/webhooks/", {"workspace": "acme", "url": url,
                                                 "events": ["roadmap.approved"]}, format="json")
            assert r.status_code == 400, (url, r.content)
            [message] = r.json()["url"]
            # (urlsplit lowercases the host)
            assert message.startswith(REFUSED) and _bare(host).lower() in message, message
    assert not WebhookSubscription.objects.exists()
    # Public names and names that do not resolve yet are accepted (checked at delivery).
    for url in ("https://hooks.example.com/planner", "http://not-yet.test/hook",
                f"http://{PUBLIC}:8443/hook"):
        r = admin.post("/api/v1/webhooks/", {"workspace": "acme", "url": url,
                                             "events": ["roadmap.approved"]}, format="json")
        assert r.status_code == 201, (url, r.content)
    sub = WebhookSubscription.objects.get(url="https://hooks.example.com/planner")
    for host in ALL_REFUSED_HOSTS:
        r = admin.patch(f"/api/v1/webhooks/{sub.pk}/", {"url": _url(host)}, format="json")
        assert r.status_code == 400 and REFUSED in r.json()["url"][0], (host, r.content)
    sub.refresh_from_db()
    assert sub.url == "https://hooks.example.com/planner"


@pytest.mark.django_db
def test_the_page_form_shows_the_refusal(client, team, private_names):
    client.force_login(team["admin"])
    for host, message in (("169.254.169.254", "169.254.169.254 is link-local"),
                          ("2130706433", "2130706433 is the address 127.0.0.1, which is "
                                         "loopback"),
                          ("localhost", "localhost is the local machine"),
                          ("db.internal.test", "db.internal.test resolves to 10.0.0.5, which "
                                               "is private"),
                          *((h, _bare(h)) for h in ALL_REFUSED_HOSTS)):
        r = client.post("/w/acme/webhooks/", {"op": "create", "url": _url(host, 8080),
                                              "events": ["roadmap.approved"]})
        text = r.content.decode()
        assert r.status_code == 200 and REFUSED in text and message in text, host
        assert 'role="alert"' in text
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_the_setting_allows_private_targets_at_save(api, team, settings, private_names):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    for host in ALL_REFUSED_HOSTS:
        webhooks.subscription_create(workspace=team["acme"], url=_url(host),
                                     events=["roadmap.approved"])
    assert WebhookSubscription.objects.count() == len(ALL_REFUSED_HOSTS)
    assert private_names.calls == []  # no lookup when nothing would be refused


# ----- at delivery ---------------------------------------------------------------------------
# Forms that reach the receiver on 127.0.0.1 when allowed (each is proven to, below).
LOOPBACK_FORMS = ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "0x7f000001",
                  "017700000001", "localhost", "receiver.localhost", "loop.test"]
# Forms that point elsewhere inside the network: never connected to, allowed or not.
ELSEWHERE_FORMS = ["0.0.0.0", "[::]", "[::1]", "[::ffff:127.0.0.1]", "10.0.0.5",
                   "169.254.169.254", "2852039166", "100.64.0.1", "[fe80::1]", "224.0.0.1",
                   "240.0.0.1", "[fc00::1]", "db.internal.test", "metadata.test",
                   "v6loop.test", "mixed.test"]


def _saved_while_allowed(settings, workspace, hosts: list[str], port: int) -> dict[str, int]:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    subs = {host: webhooks.subscription_create(workspace=workspace, url=_url(host, port),
                                               events=["segment.refreshed"]).pk
            for host in hosts}
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    return subs


@pytest.mark.django_db
def test_delivery_refuses_every_form_and_connects_to_nothing(
        team, settings, receiver, private_names, connects, django_capture_on_commit_callbacks):
    hosts = LOOPBACK_FORMS + ELSEWHERE_FORMS
    _saved_while_allowed(settings, team["acme"], hosts, receiver.port)
    with django_capture_on_commit_callbacks(execute=True):  # the first attempt, at commit
        deliveries = webhooks.emit(team["acme"], "segment.refreshed", {"n": 1})
    assert len(deliveries) == len(hosts)
    for delivery in deliveries:
        delivery.refresh_from_db()
        host = _bare(delivery.subscription.url.split("/")[2].rsplit(":", 1)[0])
        # Failed like any attempt: logged with the reason, retried on the schedule.
        assert (delivery.state, delivery.attempts, delivery.last_status) == ("pending", 1, None)
        assert delivery.last_error.startswith(REFUSED) and host in delivery.last_error, (
            host, delivery.last_error)
        [attempt] = delivery.attempt_log.all()
        assert attempt.error == delivery.last_error and attempt.response_excerpt == ""
        assert attempt.next_attempt_at == attempt.started_at + timedelta(seconds=30)
    # ... and not retried forever: the remaining attempts fail the same way, then it is failed.
    for delivery in deliveries:
        at = delivery.next_attempt_at
        while (d := webhooks.deliver(delivery.pk, now=at)) is not None and d.next_attempt_at:
            at = d.next_attempt_at
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == ("failed", webhooks.MAX_ATTEMPTS)
        assert all(a.error.startswith(REFUSED) for a in delivery.attempt_log.all())
    assert receiver.connections == 0 and receiver.requests == [] and connects == []


@pytest.mark.django_db
def test_the_same_loopback_forms_do_reach_the_receiver_when_allowed(
        team, settings, receiver, private_names, django_capture_on_commit_callbacks):
    """The control for the test above: its zero connections are a refusal, not a typo."""
    _saved_while_allowed(settings, team["acme"], LOOPBACK_FORMS, receiver.port)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    with django_capture_on_commit_callbacks(execute=True):
        deliveries = webhooks.emit(team["acme"], "segment.refreshed", {})
    for delivery in deliveries:
        delivery.refresh_from_db()
        assert (delivery.state, delivery.last_status) == ("succeeded", 200), delivery.last_error
    assert receiver.connections == len(LOOPBACK_FORMS) == len(receiver.requests)


@pytest.mark.django_db
def test_a_name_that_resolves_later_to_a_private_address_is_refused_at_delivery(
        team, receiver, dns, connects, django_capture_on_commit_callbacks):
    sub = webhooks.subscription_create(workspace=team["acme"], url="http://later.test/hook",
                                       events=["segment.refreshed"])  # no address yet: saved
    dns.table["later.test"] = ["10.1.2.3"]
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {})
    delivery.refresh_from_db()
    assert delivery.state == "pending" and delivery.last_status is None
    assert delivery.last_error == (f"{REFUSED}: later.test resolves to 10.1.2.3, which is "
                                   "private")
    # Later still it points at the receiver (loopback): refused as well, nothing connected.
    dns.table["later.test"] = ["127.0.0.1"]
    d = webhooks.deliver(delivery.pk, now=delivery.next_attempt_at)
    assert d.attempts == 2 and "later.test resolves to 127.0.0.1, which is loopback" in (
        d.last_error)
    assert sub.deliveries.get().attempt_log.count() == 2
    assert receiver.connections == 0 and connects == []


@pytest.mark.django_db
def test_one_lookup_per_attempt_and_the_connection_goes_to_the_checked_address(
        team, settings, receiver, dns, django_capture_on_commit_callbacks):
    """``receiver.test`` exists only in the resolver table; http.client looking it up again
    would fail (the fake does not know it after the first answer) and the count would say."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    answers = iter([["127.0.0.1"], ["127.0.0.1"]])
    dns.table["receiver.test"] = lambda: next(answers)  # a third lookup raises StopIteration
    url = f"http://receiver.test:{receiver.port}/pinned?x=1"
    sub = webhooks.subscription_create(workspace=team["acme"], url=url,
                                       events=["segment.refreshed"])
    assert dns.count("receiver.test") == 0  # nothing to check at save with the setting on
    with django_capture_on_commit_callbacks(execute=True):
        [delivery] = webhooks.emit(team["acme"], "segment.refreshed", {"n": 1})
    delivery.refresh_from_db()
    assert delivery.state == "succeeded", delivery.last_error
    assert dns.count("receiver.test") == 1
    [hit] = receiver.requests
    assert hit["path"] == "/pinned?x=1"
    assert hit["headers"]["Host"] == f"receiver.test:{receiver.port}"
    assert hit["body"]["data"] == {"n": 1}
    # A second attempt (a test ping): one more lookup, one more request.
    with django_capture_on_commit_callbacks(execute=True):
        ping = webhooks.send_test(subscription=sub)
    ping.refresh_from_db()
    assert ping.state == "succeeded" and dns.count("receiver.test") == 2
    assert receiver.connections == 2 and len(receiver.requests) == 2
    assert dns.calls == ["receiver.test", "receiver.test"]


def test_a_name_answering_public_then_private_is_connected_to_the_checked_address(dns):
    """DNS rebinding: the address checked is the address used; a later answer changes
    nothing (no connection is opened here: the public address is only inspected)."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    dns.table["rebind.test"] = lambda: next(answers)
    connection = webhooks.connection_for("http://rebind.test/hook")
    assert isinstance(connection, egress.PinnedHTTPConnection)
    assert (connection.host, connection.port, connection.addresses) == ("rebind.test", 80,
                                                                        [PUBLIC])
    assert connection.sock is None and dns.calls == ["rebind.test"]
    with pytest.raises(egress.EgressRefused, match="rebind.test resolves to 127.0.0.1"):
        webhooks.connection_for("http://rebind.test/hook")


def test_https_connects_to_the_checked_address_with_sni_and_verification_for_the_name(dns):
    dns.table["hooks.example.com"] = [PUBLIC]
    connection = webhooks.connection_for("https://hooks.example.com/planner")
    assert isinstance(connection, egress.PinnedHTTPSConnection)
    assert connection.addresses == [PUBLIC] and connection.port == 443
    assert connection.server_hostname == connection.host == "hooks.example.com"
    assert connection.context.check_hostname is True
    assert connection.context.verify_mode == ssl.CERT_REQUIRED
    assert connection.sock is None  # not connected: the address is public
    assert dns.calls == ["hooks.example.com"]


class RecordingContext:
    """Stands in for the SSL context: records what TLS would be asked for, then stops."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def wrap_socket(self, sock: socket.socket, server_hostname: str | None = None, **kw):
        self.calls.append((sock.getpeername()[:2], server_hostname))
        raise ssl.SSLError("stopped by the test before the handshake")


def test_https_wraps_a_socket_to_the_checked_address_for_the_original_name(dns, connects):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        dns.table["secure.test"] = ["127.0.0.1"]
        context = RecordingContext()
        result = webhooks.post(f"https://secure.test:{port}/hook", b"{}", {},
                               allow_private=True, ssl_context=context)  # type: ignore[arg-type]
        assert result.status is None and "SSLError" in result.error
        assert context.calls == [(("127.0.0.1", port), "secure.test")]
        assert connects == [("127.0.0.1", port)] and dns.calls == ["secure.test"]
        # Refused with the setting off: no lookup result is connected to, no TLS started.
        result = webhooks.post(f"https://secure.test:{port}/hook", b"{}", {},
                               allow_private=False, ssl_context=context)  # type: ignore[arg-type]
        assert result.error == f"{REFUSED}: secure.test resolves to 127.0.0.1, which is loopback"
        assert len(context.calls) == 1 and len(connects) == 1
    finally:
        listener.close()


def test_redirects_stay_unfollowed(receiver, monkeypatch):
    """A 3xx is an answer like any other (following it could lead anywhere)."""
    calls = []
    monkeypatch.setattr(egress, "resolve_all", lambda host, port, allow_private: (
        calls.append(host) or ["127.0.0.1"]))

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver.server.RequestHandlerClass = Redirect
    result = webhooks.post(f"http://hooks.test:{receiver.port}/", b"{}", {},
                           allow_private=True)
    assert result.status == 302 and not result.ok and result.error.startswith("HTTP 302")
    assert calls == ["hooks.test"]
