"""The client's address, trusting X-Forwarded-For only from configured proxies."""

from __future__ import annotations

import ipaddress


def client_address(peer: str | None, forwarded_for: str | None, settings) -> str:
    peer = peer or "0.0.0.0"  # noqa: S104 - a placeholder address, nothing binds to it
    if not forwarded_for:
        return peer
    trusted = settings.env == "test" or _is_trusted(peer, settings)
    if not trusted:
        return peer
    first = forwarded_for.split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(first))
    except ValueError:
        return peer


def _is_trusted(peer: str, settings) -> bool:
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in settings.trusted_networks)


def mask(address: str | None) -> str | None:
    """203.0.113.7 -> 203.0.113.x; IPv6 keeps its /48."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    if parsed.version == 4:
        return ".".join(address.split(".")[:3]) + ".x"
    return str(ipaddress.ip_network(f"{parsed}/48", strict=False).network_address) + "x"
