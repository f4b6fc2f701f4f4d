"""Where a user's webhook may point: the site's ``[service] webhook_schemes`` and ``webhook_allow``.

A webhook makes the server send requests on a user's behalf, so by default it may only be an
``https`` URL whose host resolves to public addresses: no loopback, link-local (cloud metadata
services), private, shared or reserved ones, which would let a user reach into the site's own
network. ``webhook_allow`` names the hosts, addresses or networks that are allowed all the same.
The URL is checked when it is registered (a 400 naming the rule) and again before every delivery
(names may resolve differently later); deliveries do not follow redirects.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pipeline.core.config import Service

MAX_URL = 2000
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookPolicy:
    """The checks of one site's ``[service]`` settings."""

    def __init__(self, settings: Service) -> None:
        self.schemes = tuple(settings.webhook_schemes)
        self.names: list[str] = []
        self.networks: list[_Network] = []
        for entry in settings.webhook_allow:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.append(entry.lower().rstrip("."))

    def _host_allowed(self, host: str) -> bool:
        return any(host == n or (n.startswith("*.") and host.endswith(n[1:])) for n in self.names)

    def refusal(self, url: object) -> str | None:
        """Why ``url`` may not be a webhook, or None when it may (resolving its host name)."""
        if not isinstance(url, str) or len(url) > MAX_URL:
            return f"url must be a string of at most {MAX_URL} characters"
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            return f"url {url[:80]!r} is not a valid URL ({exc})"
        if parts.scheme not in self.schemes:
            return (f"url {url[:80]!r}: the scheme must be {' or '.join(self.schemes)} "
                    "(this site's [service] webhook_schemes)")
        if not host:
            return f"url {url[:80]!r} has no host"
        host = host.lower().rstrip(".")
        if self._host_allowed(host):
            return None
        try:
            infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError):
            return f"url {url[:80]!r}: host {host[:60]} does not resolve"
        for info in infos:
            address = _unmapped(ipaddress.ip_address(info[4][0].split("%")[0]))
            if not address.is_global and not any(address in net for net in self.networks):
                return (f"url {url[:80]!r}: host {host[:60]} is {_kind(address)} ({address}); webhooks must reach "
                        "public addresses unless this site's [service] webhook_allow names the host or network")
        return None


def _unmapped(address: _Address) -> _Address:
    """An IPv4 address written as IPv6 (``::ffff:127.0.0.1``) is judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: _Address) -> str:
    for attribute, name in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                            ("is_unspecified", "unspecified"), ("is_multicast", "multicast"),
                            ("is_private", "a private address")):
        if getattr(address, attribute):
            return name
    return "not a public address"
