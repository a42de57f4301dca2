"""`lamed serve` over real HTTP: routes, methods, the API-key rule, CORS, events, bad input, the CLI."""

import json
import socket
import stat
import threading

import pytest
import requests

from lamed import handlers, serve
from lamed.serve import CORS_HEADERS, ROUTES, Route, local_api_key, make_server
from lamed.store import Store
from serve_cli import LamedServe

API_KEY = "test-key-0123456789abcdef"
KEYED = ("/experiments", "/experiment", "/delete")


@pytest.fixture(scope="module")
def server(redis_server):
    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client())) as running:
        yield running.start()
    handlers.use_store(None)


@pytest.fixture
def api(server, redis_client):
    """The server's base URL, on a flushed Redis."""
    return server.url


def track(api, uuid, event="participate", variant="red", experiment="button colour", prefix="/prod"):
    query = f"experiment={experiment.replace(' ', '+')}&variant={variant}&event={event}&uuid={uuid}"
    return requests.get(f"{api}{prefix}/track?{query}", timeout=5)


def keyed(method, url, key=API_KEY, **kwargs):
    return requests.request(method, url, headers={"x-api-key": key} if key else {}, timeout=5, **kwargs)


def test_track_counts_once_per_uuid_under_both_paths(api):
    first = track(api, "u1")
    assert (first.status_code, first.json()) == (200, {"counted": True})
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    assert track(api, "u1", prefix="").json() == {"counted": False}
    assert track(api, "u2", prefix="").json() == {"counted": True}
    assert track(api, "u1", event="bought").json() == {"counted": True}
    body = keyed("GET", f"{api}/prod/experiments").json()
    assert body == [
        {"meta": {"scope": None}},
        {
            "experiment": "button colour",  # AlephBet's '+' for a space is decoded
            "goals": [{"goal": "bought", "results": [{"label": "red", "successes": 1, "trials": 2}]}],
            "variants": [{"label": "red", "trials": 2}],
        },
    ]


def test_handler_errors_pass_through(api):
    response = requests.get(f"{api}/prod/track?experiment=x&variant=red&event=participate", timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "missing required parameter 'uuid'"}
    missing = keyed("GET", f"{api}/prod/experiment?experiment=nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "no experiment 'nope' in namespace 'alephbet'"})


@pytest.mark.parametrize("path", KEYED)
@pytest.mark.parametrize("key", [None, "wrong-key", API_KEY[:-1]])
def test_keyed_routes_refuse_a_missing_or_wrong_key(api, path, key):
    method = "DELETE" if path == "/delete" else "GET"
    response = keyed(method, f"{api}/prod{path}?experiment=button+colour", key=key)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_keyed_routes_answer_the_right_key(api):
    track(api, "u1")
    track(api, "u1", experiment="other")
    one = keyed("GET", f"{api}/prod/experiment?experiment=button+colour")
    assert one.status_code == 200 and one.json()["variants"] == [{"label": "red", "trials": 1}]
    scoped = keyed("GET", f"{api}/experiments?scope=other")
    assert [entry.get("experiment") for entry in scoped.json()] == [None, "other"]
    deleted = keyed("DELETE", f"{api}/prod/delete?experiment=button+colour")
    assert deleted.json() == {"deleted": "button colour", "namespace": "alephbet", "counters": 1}
    assert [entry.get("experiment") for entry in keyed("GET", f"{api}/prod/experiments").json()] == [None, "other"]


@pytest.mark.parametrize("path", ["/track", *KEYED])
@pytest.mark.parametrize("prefix", ["", "/prod"])
def test_cors_preflight_needs_no_key(api, path, prefix):
    response = requests.options(
        f"{api}{prefix}{path}",
        headers={"Origin": "http://page.test", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "x-api-key"},
        timeout=5,
    )
    assert response.status_code == 200
    for name, value in CORS_HEADERS.items():
        assert response.headers[name] == value
    assert response.content == b""


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [("/track", "POST", "GET,OPTIONS"), ("/track", "DELETE", "GET,OPTIONS"), ("/experiments", "PUT", "GET,OPTIONS"),
     ("/experiment", "PATCH", "GET,OPTIONS"), ("/delete", "GET", "DELETE,OPTIONS"), ("/track", "BREW", "GET,OPTIONS")],
)
def test_a_wrong_method_is_405(api, path, method, allowed):
    response = keyed(method, f"{api}/prod{path}?experiment=x")
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert "error" in response.json()


@pytest.mark.parametrize("path", ["/prod", "/nope", "/prod/nope", "/track/", "/dev/track", "/prod/prod/track"])
def test_other_paths_are_404_json(api, path):
    response = requests.get(f"{api}{path}", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"error": f"no route {path}"}


def test_the_event_is_an_api_gateway_rest_proxy_event(redis_server):
    seen = []

    def echo(event, context):
        seen.append(event)
        return {"statusCode": 201, "headers": {"X-Echo": "yes"}, "multiValueHeaders": {"X-Multi": ["a", "b"]},
                "body": "ok"}

    routes = {**ROUTES, "/echo": Route(("GET", "POST"), echo, api_key_required=True)}
    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client()), routes) as echo_server:
        echo_server.start()
        plain = requests.get(f"{echo_server.url}/echo", headers={"x-api-key": API_KEY}, timeout=5)
        query = requests.post(
            f"{echo_server.endpoint('/echo')}?a=1+2&a=3&b=&c=%C3%A9", data=b"\xff\x00",
            headers={"X-Api-Key": API_KEY, "X-Twice": "1"}, timeout=5,
        )
        text = requests.post(echo_server.endpoint("/echo"), data="{\"v\": 1}", headers={"x-api-key": API_KEY}, timeout=5)
    assert (plain.status_code, plain.text, plain.headers["X-Echo"]) == (201, "ok", "yes")
    assert plain.headers["X-Multi"] == "a, b"
    assert query.status_code == text.status_code == 201
    first, second, third = seen
    assert first["queryStringParameters"] is None and first["multiValueQueryStringParameters"] is None
    assert (first["body"], first["isBase64Encoded"]) == (None, False)
    assert (first["path"], first["resource"], first["httpMethod"]) == ("/echo", "/echo", "GET")
    assert first["requestContext"]["path"] == "/prod/echo"
    assert second["queryStringParameters"] == {"a": "3", "b": "", "c": "é"}
    assert second["multiValueQueryStringParameters"] == {"a": ["1 2", "3"], "b": [""], "c": ["é"]}
    assert second["headers"]["X-Twice"] == "1" and second["multiValueHeaders"]["X-Twice"] == ["1"]
    assert (second["body"], second["isBase64Encoded"]) == ("/wA=", True)
    context = second["requestContext"]
    assert (context["stage"], context["httpMethod"], context["path"]) == ("prod", "POST", "/prod/echo")
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["apiKey"] == API_KEY
    assert (third["body"], third["isBase64Encoded"]) == ('{"v": 1}', False)


def test_track_events_carry_no_api_key(redis_server):
    seen = []
    routes = {"/track": Route(("GET",), lambda event, context: seen.append(event) or {"statusCode": 200})}
    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client()), routes) as probe:
        probe.start()
        assert requests.get(f"{probe.url}/track", headers={"x-api-key": "anything"}, timeout=5).status_code == 200
    assert seen[0]["requestContext"]["identity"]["apiKey"] is None


# -- malformed and oversized requests, over raw sockets -----------------------------


def raw(server, data: bytes, read_all=True) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as connection:
        connection.sendall(data)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
            if not read_all:
                break
    return b"".join(chunks)


def status_and_json(reply: bytes):
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /track HTTP/1.1.1\r\n\r\n", 400),
        (b"GET /track HTTP/x\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /prod/track?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /prod/track HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
        (b"GET /prod/track HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n", 431),
        (b"GET /prod/track HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (n, b"a" * 1000) for n in range(20)) + b"\r\n", 431),
        (b"POST /prod/track HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"POST /prod/track HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /prod/track HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
        (b"POST /prod/track HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),
        (b"POST /prod/track HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
        (b"GET nowhere HTTP/1.1\r\n\r\n", 400),
    ],
    ids=["garbage", "bad-version", "bad-version-word", "tls-hello", "line-too-long", "url-too-long",
         "header-too-long", "too-many-headers", "headers-too-big", "body-too-big", "negative-length",
         "word-length", "superscript-length", "chunked", "no-slash"],
)
def test_malformed_and_oversized_requests_get_a_4xx_json_and_the_server_stays_up(server, request_bytes, status):
    reply = raw(server, request_bytes)
    assert status_and_json(reply)[0] == status
    assert b"Connection: close" in reply
    assert "error" in status_and_json(reply)[1]
    assert requests.get(f"{server.url}/prod/nope", timeout=5).status_code == 404


def test_a_client_that_hangs_or_vanishes_does_not_block_others(server, redis_client):
    with socket.create_connection(server.server_address[:2], timeout=5) as stalled:
        stalled.sendall(b"GET /prod/track?experiment=")  # never finished
        with socket.create_connection(server.server_address[:2], timeout=5) as gone:
            gone.sendall(b"GET /prod/track HTTP/1.1\r\nContent")
        assert track(server.url, "u1").json() == {"counted": True}


def test_keep_alive_serves_several_requests_on_one_connection(server, redis_client):
    query = b"/prod/track?experiment=e&variant=v&event=participate&uuid="
    pipelined = b"".join(b"GET " + query + b"%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(3))
    reply = raw(server, pipelined + b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.count(b'{"counted": true}') == 3
    assert reply.count(b"HTTP/1.1 404") == 1


# -- the local API key -------------------------------------------------------------


def test_the_local_api_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    key = local_api_key()
    path = tmp_path / ".lamed" / "serve-api-key"
    assert len(key) >= 40 and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_api_key() == key
    path.write_text("\n")
    with pytest.raises(serve.ServeError, match="is empty"):
        local_api_key()


# -- the command -------------------------------------------------------------------


def test_lamed_serve_prints_how_to_use_it_and_stops_cleanly(tmp_path):
    with LamedServe(tmp_path) as running:
        key = (tmp_path / ".lamed" / "serve-api-key").read_text().strip()
        assert track(running.url, "u1").json() == {"counted": True}
        assert keyed("GET", f"{running.url}/prod/experiments", key=key).status_code == 200
        assert keyed("GET", f"{running.url}/prod/experiments", key=API_KEY).status_code == 403
        second = LamedServe(tmp_path)
        assert second.launch().wait(timeout=30) == 1
        assert "another `lamed serve` is using" in second.output and "Traceback" not in second.output
    assert running.process.returncode == 0
    output = running.output
    assert f"track:        {running.url}/prod/track" in output
    assert f"track (2.0):  {running.url}/function-url/  (as a Lambda function URL)" in output
    assert f"experiments:  {running.url}/prod/experiments" in output
    assert f"dashboard:    {running.url}/  (asks for the API key)" in output
    assert f"API key:      {key}" in output
    assert f'new AlephBet.LamedAdapter("{running.url}/prod/track", "alephbet")' in output
    assert "lamed serve: stopped" in output
    assert sum(part.stat().st_size for part in (tmp_path / ".lamed" / "data" / "appendonlydir").glob("*.aof")) > 0
    assert "ready to exit" in (tmp_path / ".lamed" / "data" / "redis.log").read_text()
    assert "Traceback" not in output


def test_lamed_serve_uses_the_configured_redis_and_key(tmp_path, redis_server, redis_client):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"redis": {"port": redis_server.port}, "namespace": "shop", "serve": {"use_config_redis": True}}))
    env = {"LAMED_CONFIG": str(config), "LAMED_API_KEY": API_KEY}
    with LamedServe(tmp_path, env=env) as running:
        assert track(running.url, "u1").json() == {"counted": True}
        assert keyed("GET", f"{running.url}/prod/experiments").status_code == 200
    assert redis_client.get("alephbet:counters:button colour:participate:red") == "1"
    assert f"the Redis configured in {config}" in running.output
    assert '"shop");' in running.output
    assert not (tmp_path / ".lamed" / "data").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"redis": {"port": 1}, "serve": {"use_config_redis": True}}, "cannot use the Redis configured in"),
        ({"redis": []}, '"redis" must be an object'),
        ({"redis": {"url": "htp://localhost:6379"}}, '"redis.url" must start with redis://, rediss:// or unix://, not "htp://" — fix: "redis://localhost:6379"'),
    ],
)
def test_lamed_serve_reports_a_bad_redis_config_in_one_line(tmp_path, config, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    failing = LamedServe(tmp_path, env={"LAMED_CONFIG": str(path)})
    assert failing.launch().wait(timeout=30) == 1
    lines = failing.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


def test_lamed_serve_reports_a_busy_port_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        failing = LamedServe(tmp_path, "--api-key", API_KEY, port=taken.getsockname()[1])
        assert failing.launch().wait(timeout=30) == 1
    assert "choose another --port" in failing.output and "Traceback" not in failing.output
    assert "ready to exit" in (tmp_path / ".lamed" / "data" / "redis.log").read_text()  # the embedded Redis stopped


def test_a_stop_signal_landing_while_a_request_starts_still_stops_the_server(redis_server):
    # SIGTERM's handler raises in the main thread wherever it is; socketserver wraps the
    # start of each request in `except Exception`, which must not swallow the stop.
    stopped = []

    def stop_now(request, client_address):
        request.close()
        raise serve._Stopped()

    with make_server("127.0.0.1", 0, API_KEY, Store(redis_server.client())) as local:
        local.process_request = stop_now

        def serve_until_stopped():
            try:
                local.serve_forever(poll_interval=0.05)
            except serve._Stopped:
                stopped.append(True)

        thread = threading.Thread(target=serve_until_stopped, daemon=True)
        thread.start()
        socket.create_connection(local.server_address).close()
        thread.join(timeout=10)
        if thread.is_alive():
            local.shutdown()  # the stop was swallowed: end the loop before failing
        assert stopped == [True]
    handlers.use_store(None)


def test_the_function_url_path_hands_lamed_track_payload_2_0_events(api, redis_server, redis_client, monkeypatch):
    handlers.use_store(Store(redis_server.client()))  # earlier tests may have made other servers
    seen = []
    original = handlers.track
    monkeypatch.setattr(serve.lamed, "track", lambda event, context=None: seen.append(event) or original(event, context))
    query = "experiment=button+colour&variant=red&variant=blue&event=participate&uuid=u1"
    first = requests.get(f"{api}/function-url/?{query}", headers={"Origin": "https://shop.example"}, timeout=5)
    again = requests.get(f"{api}/function-url/any/path?{query}", timeout=5)
    assert (first.status_code, first.json(), again.json()) == (200, {"counted": True}, {"counted": False})
    assert first.headers["Access-Control-Allow-Origin"] == "*"  # once: the URL's Cors adds it, the function not
    assert redis_client.get("alephbet:counters:button colour:participate:blue") == "1"
    event = seen[0]
    assert event["version"] == "2.0" and event["rawPath"] == "/" and event["rawQueryString"] == query
    assert event["queryStringParameters"]["variant"] == "red,blue"  # 2.0 joins repeated values
    assert event["requestContext"]["http"]["method"] == "GET" and event["headers"]["origin"] == "https://shop.example"
    assert seen[1]["rawPath"] == "/any/path"
    preflight = requests.options(f"{api}/function-url/", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}, timeout=5)
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Methods"] == "GET"
    assert len(seen) == 2  # the URL's Cors answered the preflight, not lamed.track
    posted = requests.post(f"{api}/function-url/?{query}", timeout=5)
    assert posted.status_code == 405 and posted.json() == {"error": "POST is not allowed here: send GET"}
