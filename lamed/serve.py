"""``lamed serve``: a local stand-in for API Gateway in front of lamed's own handlers.

Each HTTP request becomes an API Gateway REST (v1) proxy event for ``lamed.track``,
``lamed.all``, ``lamed.experiment`` or ``lamed.delete``, whose ``{statusCode, headers,
body}`` is written back. Routes, the API-key rule and the CORS preflight are those of
the deployed API. Redis is the configured one, else an embedded ``redis-server``
persisting under ``~/.lamed/data``.
"""

import base64
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
from typing import Callable
from urllib.parse import parse_qsl, urlsplit

import redis

import lamed
from lamed import dashboard, handlers
from lamed.config import DEFAULT_NAMESPACE, DEFAULT_UUID_EXPIRY_SECONDS, find_config_path, lamed_home, load_config
from lamed.cluster_store import ClusterStore
from lamed.connection import address, check_mode, explain, open_store
from lamed.redis_server import RedisServer, RedisServerError
from lamed.snippet import render_snippet
from lamed.store import Store

logger = logging.getLogger("lamed.serve")

STAGE = "prod"
API_KEY_HEADER = "x-api-key"
API_KEY_FILE = "serve-api-key"
DATA_DIR = "data"
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 16384
MAX_BODY_BYTES = 1024 * 1024
MAX_QUERY_FIELDS = 100
IDLE_TIMEOUT_SECONDS = 30

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET,DELETE,OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type,X-Api-Key",
}


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
}


# -- the local API key -------------------------------------------------------------


def local_api_key() -> str:
    """The key kept in ``~/.lamed/serve-api-key`` (mode 0600), generated on first use."""
    path = lamed_home() / API_KEY_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
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
    headers = {"Content-Type": "application/json", **CORS_HEADERS, **(extra_headers or {})}
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def _error(status: int, message: str, **extra_headers) -> dict:
    return _json_response(status, {"error": message}, extra_headers)


class RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into a proxy event, routes it, writes the response."""

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # so even a garbled request line gets a status line
    server_version = "lamed-serve"
    sys_version = ""
    timeout = IDLE_TIMEOUT_SECONDS
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def __getattr__(self, name):
        # Every method token reaches the router, which answers 404 or 405 like API Gateway.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _dispatch(self) -> None:
        try:
            response = self._respond()
        except Exception:
            logger.exception("serve: unexpected error on %s %s", self.command, self.path)
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
        url = urlsplit(self.path)
        if not url.path.startswith("/"):
            return self._refuse(HTTPStatus.BAD_REQUEST, "the request target must be a path")
        body = self._read_body()
        if isinstance(body, dict):
            return body
        stage_prefix = f"/{STAGE}"
        resource = url.path[len(stage_prefix):] if url.path.startswith(stage_prefix + "/") else url.path
        route = self.server.routes.get(resource)
        if route is None:
            return _error(HTTPStatus.NOT_FOUND, f"no route {url.path}")
        if self.command == "OPTIONS":
            return {"statusCode": 200, "headers": {**CORS_HEADERS, "Content-Type": "application/json"}, "body": ""}
        if self.command not in route.methods:
            allowed = ",".join((*route.methods, "OPTIONS"))
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{url.path} answers {allowed}", Allow=allowed)
        sent_key = self.headers.get(API_KEY_HEADER)
        if route.api_key_required and not (sent_key and hmac.compare_digest(sent_key, self.server.api_key)):
            return _json_response(HTTPStatus.FORBIDDEN, {"message": "Forbidden"})
        try:
            query = parse_qsl(url.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, f"more than {MAX_QUERY_FIELDS} query parameters")
        event = self._event(resource, url.path, query, body, sent_key if route.api_key_required else None)
        return route.handler(event, None)

    def _refuse(self, status: int, message: str) -> dict:
        """An error answered before reading the body, so the connection must close."""
        self.close_connection = True
        return _error(status, message)

    def _read_body(self) -> bytes | None | dict:
        """The request body, None when there is none, or an error response."""
        if self.headers.get("Transfer-Encoding"):
            return self._refuse(HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        if not (length.isascii() and length.isdigit()):
            return self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length must be a whole number")
        if int(length) > MAX_BODY_BYTES:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is longer than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(int(length)) if int(length) else None

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
        try:
            text, encoded = (body.decode("utf-8"), False) if body is not None else (None, False)
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
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
        logger.info("%s %s", self.address_string(), format % args)


class LamedServer(ThreadingHTTPServer):
    """The local API: ``routes`` (see :data:`ROUTES`), checked against ``api_key``."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api_key: str, routes: dict | None = None):
        self.api_key = api_key
        self.routes = dict(ROUTES if routes is None else routes)
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
    host: str, port: int, api_key: str, store: Store | ClusterStore, routes: dict | None = None, settings: dict | None = None
) -> LamedServer:
    """A bound, not yet serving, local API whose handlers use ``store`` (on the Redis of ``settings``).

    The handlers' store is process-wide (as in a Lambda container): the last server made
    decides it, and ``handlers.use_store(None)`` gives it back to the config.
    """
    handlers.use_store(store, settings)
    return LamedServer((host, port), api_key, routes)


# -- the command -----------------------------------------------------------------------


def _open_store(stack: ExitStack, config) -> tuple[Store | ClusterStore, dict, str]:
    """The configured Redis (with its settings) when the config names one, else an embedded redis-server."""
    expiry = config.uuid_expiry_seconds if config else DEFAULT_UUID_EXPIRY_SECONDS
    if config and "redis" in config.raw:
        try:
            store = open_store(config.redis, expiry)
            store.client.ping()
            check_mode(store.client, config.redis)
        except redis.RedisError as exc:
            raise ServeError(f"cannot use the Redis configured in {config.path}: {explain(exc, config.redis, str(config.path))}") from exc
        stack.callback(store.client.close)
        return store, config.redis, f"the Redis configured in {config.path} ({address(config.redis)})"
    data_dir = lamed_home() / DATA_DIR
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = stack.enter_context(open(data_dir / "serve.lock", "w"))
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ServeError(f"another `lamed serve` is using {data_dir}: stop it first") from None
    try:
        server = stack.enter_context(RedisServer(data_dir=data_dir))
    except RedisServerError as exc:
        raise ServeError(f"the embedded Redis did not start: {exc}") from exc
    return Store(server.client(), expiry), {}, f"embedded redis-server on port {server.port}, data in {data_dir}"


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
            server = make_server(host, port, api_key, store, settings=settings)
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from exc
        stack.callback(server.server_close)
        stack.callback(handlers.use_store, None)
        echo(
            f"lamed serve: the lamed API on {server.url} ({redis_description})\n"
            f"  track:        {server.endpoint('/track')}\n"
            f"  experiments:  {server.endpoint('/experiments')}  (header x-api-key)\n"
            f"  dashboard:    {server.url}/  (asks for the API key)\n"
            f"  API key:      {api_key}\n"
            f"Paste this into your page (namespace {namespace!r}):\n\n"
            f"{render_snippet(server.endpoint('/track'), namespace)}\n"
            "Ctrl-C stops the server."
        )
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
        stack.callback(signal.signal, signal.SIGTERM, previous)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, _Stopped):
            echo("lamed serve: stopped")
