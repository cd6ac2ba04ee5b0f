"""The SSRF guard: webhooks may not target the service's own network unless configured to."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from chorus.jobs.errors import InvalidInput


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def check_webhook_url(url: str, allow_private: bool, allowed_networks: Sequence[str] = ()) -> None:
    """InvalidInput unless every address the host resolves to is public, in ``allowed_networks``, or
    ``allow_private`` is set."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise InvalidInput("invalid_webhook", "the webhook URL has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise InvalidInput("webhook_unresolvable", f"the webhook host {host!r} does not resolve: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if _forbidden(address) and not any(address in ipaddress.ip_network(net) for net in allowed_networks):
            raise InvalidInput(
                "webhook_forbidden_address", f"the webhook host {host!r} resolves to a non-public address ({address})"
            )
