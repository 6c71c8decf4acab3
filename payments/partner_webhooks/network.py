"""Where partner URLs may point, and the one HTTP request a delivery makes.

A partner chooses the URL, so a delivery must not become a way into Paydesk's own
network (SSRF): the host is resolved and every address it resolves to must be public,
when the endpoint is saved and again at each delivery (DNS can change in between). The
request then goes to the address that was checked, not to a second lookup, so a
rebinding resolver cannot swap it. Redirects are never followed; only the first bytes
of a response are read; timeouts are a few seconds (docs/partner-webhooks.md, "Safety").
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from django.conf import settings

# Cloud metadata services. Most are link-local or private already; some are not
# (Azure's wire server is a public address), so they are named.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "168.63.129.16", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data"})


class UrlRefused(Exception):
    """The URL may not be used (the message says why, for the partner)."""


def address_class(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is refused (None: public, allowed)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "not a public address (it reaches this machine)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, each checked; UrlRefused if one is not allowed."""
    if host.lower().rstrip(".") in METADATA_HOSTS:
        raise UrlRefused(f"{host} is a cloud metadata service.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"{host} cannot be resolved ({exc}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not settings.PAYDESK_WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        for raw in addresses:
            why = address_class(ipaddress.ip_address(raw.split("%", 1)[0]))
            if why:
                raise UrlRefused(f"{host} resolves to {raw}, {why}; webhooks go to public addresses only.")
    if not addresses:
        raise UrlRefused(f"{host} cannot be resolved.")
    return addresses


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written, for the Host header, SNI and the certificate check
    port: int
    path: str  # with the query string


def parse(url: str) -> Target:
    """The parts of a partner URL, or UrlRefused saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"Not a valid URL ({exc}).") from None
    if parts.scheme not in ("https", "http"):
        raise UrlRefused("Use an https:// URL.")
    if parts.scheme == "http" and not settings.PAYDESK_WEBHOOKS_ALLOW_INSECURE_URLS:
        raise UrlRefused("Use an https:// URL: events are sent over TLS only.")
    if parts.username or parts.password:
        raise UrlRefused("Leave credentials out of the URL; check the webhook signature instead.")
    if not parts.hostname:
        raise UrlRefused("The URL has no host.")
    if parts.fragment:
        raise UrlRefused("Leave the #fragment out of the URL.")
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
    )


def check_url(url: str) -> Target:
    """At create and update: the URL is well formed and its host resolves to allowed addresses."""
    target = parse(url)
    resolve(target.host, target.port)
    return target


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, timed out, unreachable, URL refused)
    body: bytes = b""  # at most PAYDESK_WEBHOOKS_RESPONSE_BODY_LIMIT bytes
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# One pool per (checked address, host) and process, kept between deliveries so that a
# busy endpoint's connections are reused (keep-alive).
_pools = urllib3.PoolManager(num_pools=200, maxsize=8, block=False, retries=False)


def post(target: Target, address: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `target` at `address` (from `resolve`). Never raises for the
    network: every outcome is an Answer."""
    pool_kwargs = {"server_hostname": target.host, "assert_hostname": target.host} if target.scheme == "https" else {}
    pool = _pools.connection_from_host(address, target.port, target.scheme, pool_kwargs=pool_kwargs)
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host:  # an IPv6 literal
        host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
    limit = settings.PAYDESK_WEBHOOKS_RESPONSE_BODY_LIMIT
    timeout = urllib3.Timeout(
        connect=settings.PAYDESK_WEBHOOKS_CONNECT_TIMEOUT, read=settings.PAYDESK_WEBHOOKS_READ_TIMEOUT
    )
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": host_header, "Accept-Encoding": "identity"},
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.NewConnectionError as exc:  # first: urllib3 2 derives it from a timeout error
        refused = isinstance(exc.__cause__, ConnectionRefusedError) or "refused" in str(exc).lower()
        return Answer(None, error="connection refused" if refused else "could not connect")
    except urllib3.exceptions.TimeoutError:
        return Answer(None, error="timed out")
    except urllib3.exceptions.SSLError as exc:
        return Answer(None, error=f"TLS error: {str(exc)[:150]}")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Answer(None, error=f"connection error: {type(exc).__name__}")
    try:
        data = response.read(limit + 1, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError):
        data, complete = b"", False
    else:
        complete = len(data) <= limit
    if not complete:
        response.close()  # the rest is not read: this connection cannot be reused
    response.release_conn()
    return Answer(response.status, body=data[:limit])
