"""Whom a per-client limit counts against: the client's address, an IPv6 client by its /64. No I/O.

The public pages' rate limits (``bot.web.certificates``) and the console's sign-in failures
(``bot.console.guard``) both count per client, and both hand this ``request.remote_addr``: the TCP peer,
or behind TRUSTED_PROXIES the address werkzeug's ProxyFix read from X-Forwarded-For.

An IPv6 subscriber is handed a whole /64 and a host may take any address in it: counting single
addresses would give it 2**64 budgets. An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what a
dual-stack socket reports for an IPv4 peer) counts as that IPv4 client.
"""

from __future__ import annotations

import ipaddress

UNKNOWN = "unknown"


def counted_client(remote_addr: str | None) -> str:
    """The address a limit counts for ``remote_addr``; an IPv6 address as its /64 network (``2001:db8::/64``).

    Never empty (Flask-Limiter skips a limit with an empty key): text that is no address counts as
    itself, no address at all as ``"unknown"``.
    """
    address = remote_addr or ""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
