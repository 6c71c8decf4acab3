"""Where partner URLs may point, and the one HTTP request a delivery makes.

A partner chooses the URL, so a delivery must not become a way into Paydesk's own
network (SSRF): the host is resolved and every address it resolves to must be public,
when the endpoint is saved and again at each delivery (DNS can change in between). The
request then goes to the address that was checked, not to a second lookup, so a
rebinding resolver cannot swap it. Redirects are never followed; only the first bytes
of a response are read; timeouts are a few seconds (docs/partner-webhooks.md, "Safety").
"""

import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

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


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the checked address, with SNI and the certificate checked for the host
    as written in the URL (http.client would use the address for both)."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float):
        super().__init__(address, port, timeout=timeout, context=ssl.create_default_context())
        self.server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_hostname)


# Connections kept between deliveries (keep-alive), per thread, by address and host: a
# busy endpoint's requests reuse them. The standard library's http.client, not urllib3:
# per request it costs a fraction of urllib3's CPU, which bench/webhooks.py measured
# as the largest part of a delivery after the database.
_local = threading.local()
_MAX_CONNECTIONS = 50  # per thread; the oldest is closed beyond that


def _connection(target: Target, address: str) -> http.client.HTTPConnection:
    connections = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    key = (target.scheme, address, target.port, target.host)
    conn = connections.pop(key, None)
    if conn is None:
        timeout = settings.PAYDESK_WEBHOOKS_CONNECT_TIMEOUT
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(address, target.port, server_hostname=target.host, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(address, target.port, timeout=timeout)
    connections[key] = conn  # most recently used last
    while len(connections) > _MAX_CONNECTIONS:
        connections.pop(next(iter(connections))).close()
    return conn


def _forget(target: Target, address: str) -> None:
    conn = getattr(_local, "connections", {}).pop((target.scheme, address, target.port, target.host), None)
    if conn is not None:
        conn.close()


def post(target: Target, address: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `target` at `address` (from `resolve`). Never raises for the
    network: every outcome is an Answer. A kept connection the receiver has closed
    meanwhile is reopened once."""
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    headers = {**headers, "Host": host_header, "Accept-Encoding": "identity", "Content-Length": str(len(body))}
    limit = settings.PAYDESK_WEBHOOKS_RESPONSE_BODY_LIMIT
    for reused in (True, False):
        conn = _connection(target, address)
        fresh = conn.sock is None
        try:
            if fresh:
                conn.timeout = settings.PAYDESK_WEBHOOKS_CONNECT_TIMEOUT
                conn.connect()
            conn.sock.settimeout(settings.PAYDESK_WEBHOOKS_READ_TIMEOUT)
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
        except ConnectionRefusedError:
            _forget(target, address)
            return Answer(None, error="connection refused")
        except TimeoutError:
            _forget(target, address)
            return Answer(None, error="timed out")
        except ssl.SSLError as exc:
            _forget(target, address)
            return Answer(None, error=f"TLS error: {str(exc)[:150]}")
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            _forget(target, address)
            if not fresh and reused:
                continue  # the receiver closed a kept connection: once more on a new one
            return Answer(None, error=f"connection error: {type(exc).__name__}")
        except (OSError, http.client.HTTPException) as exc:
            _forget(target, address)
            return Answer(None, error=f"{'could not connect' if fresh else 'connection error'}: {type(exc).__name__}")
        break
    try:
        data = response.read(limit + 1)
    except (OSError, http.client.HTTPException):
        data = b""
        _forget(target, address)
    else:
        if len(data) > limit or not response.isclosed() or response.will_close:
            _forget(target, address)  # the rest is not read, or the receiver closes: not reusable
    return Answer(response.status, body=data[:limit])
