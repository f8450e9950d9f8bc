"""The client's address, trusting X-Forwarded-For only from configured proxies."""

from __future__ import annotations

import ipaddress


def client_address(peer: str | None, forwarded_for: str | None, settings) -> str:
    """Who sent the request: the peer, unless it is a trusted proxy; then the nearest hop of
    X-Forwarded-For that is not itself a trusted proxy, read from the right. Proxies append what
    they saw, so the left end is whatever the client wrote and cannot choose a rate-limit key."""
    peer = peer or "0.0.0.0"  # noqa: S104 - a placeholder address, nothing binds to it
    if not forwarded_for:
        return peer
    trusting_everyone = settings.env == "test"  # tests name their client in the header
    if not (trusting_everyone or _is_trusted(peer, settings)):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a chain we cannot read names nobody
        if trusting_everyone or not any(address in net for net in settings.trusted_networks):
            return str(address)
    return str(ipaddress.ip_address(hops[0]))  # every hop a trusted proxy: the first one is the client


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
