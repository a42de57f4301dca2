"""The CORS headers a browser sees for /track, on both ways lamed deploys it, through `lamed serve`.

- The REST path (``/prod/track``): API Gateway's Lambda proxy integration passes the function's
  headers through as they are, and the OPTIONS method's MOCK integration answers the preflight
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-cors.html).
- The function URL (``/function-url/``): its ``Cors`` configuration answers the preflight and adds
  its headers beside the function's own on every other answer
  (https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors; duplicates reported
  in aws-powertools/powertools-lambda-python#4163), which :mod:`lamed.serve_function_url` models.

Each CORS header must arrive exactly once: a browser refuses ``Access-Control-Allow-Origin: *, *``.
"""

import http.client
from urllib.parse import urlsplit

import pytest
from handler_calls import function_url_event

from lamed import handlers, serve
from lamed.serve import make_server
from lamed.store import Store

ORIGIN = "https://shop.example"
TRACK = "experiment=button+colour&variant=red&event=participate&uuid=u1"
PATHS = {"rest": "/prod/track", "function URL": "/function-url/"}


@pytest.fixture(scope="module")
def server(redis_server):
    with make_server("127.0.0.1", 0, "key", Store(redis_server.client())) as running:
        yield running.start()
    handlers.use_store(None)


def seen(server, method: str, target: str, **headers) -> tuple[int, dict[str, list[str]]]:
    """The status and every header line (lower-cased name -> values, in order) of one answer."""
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request(method, target, headers={"Origin": ORIGIN, **headers})
        response = connection.getresponse()
        response.read()
        lines: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            lines.setdefault(name.lower(), []).append(value)
        return response.status, lines
    finally:
        connection.close()


def cors(lines: dict) -> dict:
    return {name.lower(): values for name, values in lines.items() if name.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_a_track_answer_carries_the_origin_once(server, redis_client, path):
    status, lines = seen(server, "GET", f"{path}?{TRACK}")
    assert status == 200 and cors(lines) == {"access-control-allow-origin": ["*"]}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_a_refused_track_carries_the_origin_once(server, redis_client, path):
    status, lines = seen(server, "GET", f"{path}?experiment=x&variant=a&event=participate")
    assert status == 400 and cors(lines) == {"access-control-allow-origin": ["*"]}


def test_the_rest_preflight_is_the_mock_integration_s(server):
    status, lines = seen(server, "OPTIONS", PATHS["rest"], **{"Access-Control-Request-Method": "GET"})
    assert status == 200 and cors(lines) == {
        "access-control-allow-origin": ["*"],
        "access-control-allow-methods": ["GET,OPTIONS"],
        "access-control-allow-headers": ["Content-Type,X-Api-Key"],
    }


def test_the_function_url_preflight_is_answered_by_its_cors_without_the_function(server, monkeypatch):
    monkeypatch.setattr(serve.lamed, "track", lambda event, context=None: pytest.fail("the function was invoked"))
    status, lines = seen(
        server, "OPTIONS", PATHS["function URL"],
        **{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-key"},
    )
    assert status == 200 and cors(lines) == {
        "access-control-allow-origin": ["*"],
        "access-control-allow-methods": ["GET"],
        "access-control-allow-headers": ["content-type,x-api-key"],
    }


def test_through_a_function_url_lamed_track_itself_adds_no_cors_header(server, redis_client):
    """What a function URL with ``Cors`` would duplicate: the handler's own headers."""
    for query in (TRACK, "experiment=x"):
        assert cors(handlers.track(function_url_event(query))["headers"]) == {}
