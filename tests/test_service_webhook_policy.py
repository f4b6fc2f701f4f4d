"""Webhook targets are restricted by the site's ``[service]`` policy: https to public addresses by
default, loopback/link-local/private only when ``webhook_allow`` names them; refused with a 400 at
registration and again before a delivery."""

from __future__ import annotations

import httpx
import pytest

from pipeline.core.config import Service
from pipeline.service.tokens import TokenStore
from pipeline.service.webhooks import WebhookPolicy
from tests.service_kit import running

PUBLIC = "https://93.184.215.14/hook"  # a global address: no name to resolve, no network needed


@pytest.mark.parametrize(("url", "says"), [
    ("http://93.184.215.14/hook", "scheme must be https"),
    ("file:///etc/passwd", "scheme must be https"),
    ("ftp://93.184.215.14/x", "scheme must be https"),
    ("https://127.0.0.1:8443/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://10.1.2.3/hook", "private"),
    ("https://192.168.0.7/hook", "private"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https:///hook", "no host"),
    ("https://[zz]/hook", "not a valid URL"),
    (None, "must be a string"),
    ("https://93.184.215.14/" + "x" * 2000, "at most 2000"),
])
def test_default_policy_refuses(url, says):
    refusal = WebhookPolicy(Service()).refusal(url)
    assert refusal is not None and says in refusal, refusal


def test_default_policy_allows_public_https():
    assert WebhookPolicy(Service()).refusal(PUBLIC) is None


def test_allow_list_names_hosts_addresses_and_networks():
    policy = WebhookPolicy(Service(webhook_schemes=["http", "https"],
                                   webhook_allow=["localhost", "10.20.0.0/16", "::1", "*.hooks.internal"]))
    for url in ("http://localhost:9000/h", "http://10.20.3.4/h", "https://[::1]/h", "https://a.hooks.internal/h",
                "http://93.184.215.14/h"):
        assert policy.refusal(url) is None, url
    for url, says in (("http://10.21.0.1/h", "private"), ("https://127.0.0.2/h", "loopback"),
                      ("https://hooks.internal.evil/h", "does not resolve")):
        refusal = policy.refusal(url)
        assert refusal is not None and says in refusal, (url, refusal)


def test_registration_is_refused_with_a_clear_400(site):
    from pipeline.service.app import create_app

    token, _ = TokenStore(site).create("astro")
    auth = {"Authorization": f"Bearer {token}"}
    with running(create_app(site)) as base:
        for url, says in (("http://127.0.0.1:9/hook", "scheme must be https"),
                          ("https://127.0.0.1:9/hook", "loopback"), ("https://169.254.169.254/", "link-local")):
            r = httpx.put(f"{base}/api/webhook", json={"url": url}, headers=auth)
            assert r.status_code == 400 and says in r.json()["error"], r.text
        ok = httpx.put(f"{base}/api/webhook", json={"url": PUBLIC}, headers=auth)
        assert ok.status_code == 200 and ok.json()["webhook"] == PUBLIC


def test_delivery_checks_the_policy_again(site):
    """A webhook stored before the policy was tightened is not POSTed to."""
    from pipeline.service.notifications import Notifications

    assert Notifications(site)._post("http://127.0.0.1:9/hook", {}).startswith("refused by the webhook policy")
