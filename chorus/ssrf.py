"""The SSRF guard: webhooks may not target the service's own network unless configured to.

Link-local addresses (169.254.0.0/16, fe80::/10) and the clouds' instance-metadata endpoints are refused
always, even where private targets are allowed for development: they hand out credentials.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from chorus.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack…
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)


def never_allowed(address: Address) -> bool:
    return address.is_link_local or address in METADATA_ADDRESSES or address.is_multicast or address.is_unspecified


def non_public(address: Address) -> bool:
    return address.is_loopback or address.is_private or address.is_reserved or not address.is_global


def check_webhook_url(url: str, allow_private: bool, allowed_networks: Sequence[str] = ()) -> None:
    """InvalidInput unless every address the host resolves to is public, in ``allowed_networks``, or
    loopback/private with ``allow_private`` set; link-local and metadata addresses never pass."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise InvalidInput("invalid_webhook", "the webhook URL has no host")
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise InvalidInput("webhook_unresolvable", f"the webhook host {host!r} does not resolve: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if never_allowed(address):
            raise InvalidInput(
                "webhook_forbidden_address",
                f"the webhook host {host!r} resolves to a link-local or metadata address ({address})",
            )
        allowed = allow_private or any(address in ipaddress.ip_network(net) for net in allowed_networks)
        if non_public(address) and not allowed:
            raise InvalidInput(
                "webhook_forbidden_address", f"the webhook host {host!r} resolves to a non-public address ({address})"
            )
