"""SSRF guard at create, at update and at every connection; canary servers must receive nothing."""

import time

import pytest

from tests.support.api import api_errors
from webhooks import ssrf
from webhooks.models import WebhookAttempt, WebhookSubscription
from webhooks.tasks import deliver_webhook
from webhooks.tests.factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

REFUSED = [
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "http://user:pass@93.184.216.34/hook",
    "http://user@93.184.216.34/hook",
    "http:///nohost",
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://224.0.0.1/hook",
    "http://host.invalid/hook",
    # IPv6 forms that is_global let through, or that embed a private IPv4 address
    "http://[fec0::1]/hook",  # site-local (deprecated)
    "http://[2002:a00:1::1]/hook",  # 6to4 embedding 10.0.0.1
    "http://[2002:7f00:1::1]/hook",  # 6to4 embedding 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 embedding 169.254.169.254
    "http://[64:ff9b:1::7f00:1]/hook",  # local-use NAT64 embedding 127.0.0.1
    "http://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1 (XOR-obfuscated)
    "http://198.18.0.1/hook",
    "http://192.0.0.1/hook",
    "http://192.88.99.1/hook",
    "http://240.0.0.1/hook",
    "http://255.255.255.255/hook",
    "http://[ff02::1]/hook",
    "http://[2001:db8::1]/hook",
]


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    return settings


@pytest.mark.parametrize("url", REFUSED)
def test_create_refuses_unsafe_url(cast, api, strict, url):
    r = api(cast.owner).post(
        "/api/v1/webhooks/", {"project": cast.project.pk, "url": url, "events": ["task.created"]}, format="json"
    )
    assert r.status_code == 400, r.content
    assert "url" in api_errors(r)
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize("url", ["http://93.184.216.34/hook", "https://[2606:4700:4700::1111]:8443/x?y=1"])
def test_create_accepts_public_address(cast, api, strict, url):
    r = api(cast.owner).post(
        "/api/v1/webhooks/", {"project": cast.project.pk, "url": url, "events": ["task.created"]}, format="json"
    )
    assert r.status_code == 201, r.content


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_refuses_unsafe_url(cast, api, strict, method):
    sub = SubscriptionFactory(project=cast.project, url="http://93.184.216.34/hook")
    r = getattr(api(cast.owner), method)(
        f"/api/v1/webhooks/{sub.pk}/", {"url": "http://169.254.169.254/", "events": ["task.created"]}, format="json"
    )
    assert r.status_code == 400 and "url" in api_errors(r)
    sub.refresh_from_db()
    assert sub.url == "http://93.184.216.34/hook"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"])
def test_connection_time_check_refuses_private_target(canary, strict, fast_retries, host):
    """A URL stored while allowed (or a name that now resolves privately) is refused at send time."""
    d = DeliveryFactory(subscription=SubscriptionFactory(url=canary.url(host=host)))
    assert deliver_webhook([d.pk])["retrying"] == 1
    assert WebhookAttempt.objects.get(delivery=d).error_class == "UnsafeTarget"
    time.sleep(0.2)
    assert canary.requests == []


def test_redirect_to_private_address_is_never_followed(receiver, canary, fast_retries):
    receiver.respond((307, {"Location": canary.url("/latest/meta-data/")}, ""))
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    deliver_webhook([d.pk])
    time.sleep(0.2)
    assert len(receiver.requests) == 1 and canary.requests == []


def test_proxy_environment_is_ignored(receiver, canary, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, canary.url("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url()))
    assert deliver_webhook([d.pk])["delivered"] == 1
    assert canary.requests == [] and len(receiver.requests) == 1


def test_connects_to_checked_address_with_original_host_header(receiver):
    """The request goes to the resolved, checked IP; the name only travels in Host (and SNI for https)."""
    d = DeliveryFactory(subscription=SubscriptionFactory(url=receiver.url(host="localhost")))
    assert deliver_webhook([d.pk])["delivered"] == 1
    assert receiver.requests[0]["headers"]["Host"] == f"localhost:{receiver.port}"


def test_rebinding_answer_after_check_is_not_used(receiver, canary, monkeypatch, strict):
    """The address checked is the address connected to: a resolver that answers public first and private
    later cannot steer the connection (the send path resolves once per attempt and pins that answer)."""
    import socket

    answers = iter(["93.184.216.34", "127.0.0.1", "127.0.0.1"])
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host == "rebind.example":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    target, addresses = ssrf.check_url(canary.url(host="rebind.example"))  # first answer: public
    assert [str(a) for a in addresses] == ["93.184.216.34"]
    d = DeliveryFactory(subscription=SubscriptionFactory(url=canary.url(host="rebind.example")))
    deliver_webhook([d.pk])  # second answer: loopback, refused before any connection
    assert WebhookAttempt.objects.get(delivery=d).error_class == "UnsafeTarget"
    assert canary.requests == []


@pytest.mark.parametrize(
    "address,public",
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("100.127.255.254", False),
        ("fe80::1%eth0", False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("fec0::1", False),
        ("2002:a00:1::1", False),
        ("64:ff9b::a00:1", False),
        ("192.0.0.9", False),
    ],
)
def test_address_classification(address, public):
    assert ssrf.is_public(ssrf.unwrap(address)) is public


def test_https_to_pinned_address_verifies_certificate_for_original_name(tls_receiver, settings):
    """Connecting to the checked IP keeps TLS honest: SNI and certificate check use the URL's host name."""
    good = tls_receiver("localhost")
    settings.WEBHOOK_CA_BUNDLE = good.certfile
    d = DeliveryFactory(subscription=SubscriptionFactory(url=good.url(host="localhost", scheme="https")))
    assert deliver_webhook([d.pk])["delivered"] == 1
    assert good.requests[0]["headers"]["Host"] == f"localhost:{good.port}"


def test_https_certificate_for_another_name_is_refused(tls_receiver, settings, fast_retries):
    wrong = tls_receiver("other.example")
    settings.WEBHOOK_CA_BUNDLE = wrong.certfile
    d = DeliveryFactory(subscription=SubscriptionFactory(url=wrong.url(host="localhost", scheme="https")))
    assert deliver_webhook([d.pk])["retrying"] == 1
    assert WebhookAttempt.objects.get(delivery=d).error_class == "ConnectError"
    assert wrong.requests == []


@pytest.mark.parametrize(
    "address,embedded",
    [
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::10.0.0.1", "10.0.0.1"),
        ("2002:c0a8:0101::1", "192.168.1.1"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b:1::a00:1", "10.0.0.1"),
        # Teredo: server 65.54.227.120, client 127.0.0.1 stored as its bitwise complement 80ff:fffe.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),
    ],
)
def test_embedded_ipv4_is_unwrapped_and_checked(strict, address, embedded):
    assert embedded in [str(v4) for v4 in ssrf.embedded_ipv4(address)]
    with pytest.raises(ssrf.UnsafeTarget, match="special-purpose"):
        ssrf.check_address(address)


@pytest.mark.parametrize(
    "address",
    ["fec0::1", "2002:808:808::1", "2001::1", "64:ff9b::808:808", "3fff::1", "100::1", "5f00::1", "4000::1"],
)
def test_special_purpose_ipv6_is_refused_even_when_embedding_a_public_address(strict, address):
    """is_global let fec0::/10 and 6to4 through; the whole special-purpose range is refused."""
    assert not ssrf.is_public(address)
    with pytest.raises(ssrf.UnsafeTarget):
        ssrf.check_address(address)


def test_allowed_networks_admit_only_what_is_listed(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    ssrf.check_address("127.0.0.1")
    ssrf.check_address("::ffff:127.0.0.1")  # the same host, mapped
    for address in ("127.0.0.2", "10.0.0.1", "192.168.1.1", "169.254.169.254", "::1", "fe80::1"):
        with pytest.raises(ssrf.UnsafeTarget):
            ssrf.check_address(address)


def test_allowed_networks_accept_a_comma_separated_string(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = "10.1.0.0/16, ::1/128"
    ssrf.check_address("10.1.2.3")
    ssrf.check_address("::1")
    with pytest.raises(ssrf.UnsafeTarget):
        ssrf.check_address("10.2.0.1")


@pytest.mark.parametrize("networks", [["0.0.0.0/0", "::/0"], ["128.0.0.0/1"], ["169.0.0.0/8", "fe00::/9"]])
def test_link_local_metadata_is_never_admitted_by_a_broader_network(settings, networks):
    settings.WEBHOOK_ALLOWED_NETWORKS = networks
    for address in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254"):
        with pytest.raises(ssrf.UnsafeTarget):
            ssrf.check_address(address)


def test_link_local_is_admitted_when_listed_explicitly(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["169.254.10.0/24"]
    ssrf.check_address("169.254.10.5")
    with pytest.raises(ssrf.UnsafeTarget):
        ssrf.check_address("169.254.169.254")


def test_resolve_and_check_returns_the_addresses_to_connect_to(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    assert [str(ip) for ip in ssrf.resolve_and_check("127.0.0.1", 80)] == ["127.0.0.1"]
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ssrf.UnsafeTarget, match="127.0.0.1"):
        ssrf.resolve_and_check("127.0.0.1", 80)


def test_update_refuses_a_target_outside_the_allow_list(cast, api, settings):
    """The allow-list is not all-or-nothing: 127.0.0.1 listed does not admit the metadata service."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    sub = SubscriptionFactory(project=cast.project, url="http://127.0.0.1:9/hook")
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://[fec0::1]/"):
        r = api(cast.owner).patch(f"/api/v1/webhooks/{sub.pk}/", {"url": url}, format="json")
        assert r.status_code == 400 and "url" in api_errors(r), r.content
