import json
import socket
import subprocess
import sys
import threading

import pytest

import lamed
from lamed import handlers
from lamed.redis_server import free_port
from handler_calls import call, function_url_event, proxy_event


def hit(uuid, event="participate", variant="red", experiment="button", namespace=None):
    params = {"experiment": experiment, "variant": variant, "event": event, "uuid": uuid}
    if namespace:
        params["namespace"] = namespace
    return call(lamed.track, params)


def test_handler_strings_resolve_lazily():
    assert lamed.track is handlers.track
    assert lamed.all is handlers.all_experiments
    assert lamed.experiment is handlers.experiment
    assert lamed.delete is handlers.delete
    with pytest.raises(AttributeError):
        lamed.nope  # noqa: B018


def test_importing_the_handlers_pulls_in_no_cli_stack():
    code = (
        "import sys, lamed; lamed.track; lamed.all; lamed.delete; lamed.experiment; "
        "bad = [m for m in ('boto3', 'botocore', 'click', 'jinja2', 'requests') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_track_counts_and_deduplicates(handler_store, redis_client):
    assert hit("u1") == (200, {"counted": True})
    assert hit("u1") == (200, {"counted": False})
    assert hit("u2", event="click") == (200, {"counted": True})
    assert redis_client.get("alephbet:counters:button:participate:red") == "1"
    assert redis_client.get("alephbet:counters:button:click:red") == "1"


def test_track_honours_namespace(handler_store, redis_client):
    hit("u1", namespace="staging")
    assert redis_client.get("staging:counters:button:participate:red") == "1"
    assert not redis_client.exists("alephbet:experiments")


def test_all_returns_meta_then_experiments_with_variants(handler_store):
    hit("u1")
    hit("u2", variant="blue")
    hit("u1", event="click")
    hit("u3", experiment="other")
    status, body = call(lamed.all, None, path="/experiments")
    assert status == 200
    assert body[0] == {"meta": {"scope": None}}
    assert [entry["experiment"] for entry in body[1:]] == ["button", "other"]
    assert body[1]["goals"] == [{"goal": "click", "results": [
        {"label": "blue", "successes": 0, "trials": 1},
        {"label": "red", "successes": 1, "trials": 1},
    ]}]
    assert body[2] == {"experiment": "other", "goals": [], "variants": [{"label": "red", "trials": 1}]}


def test_all_with_scope(handler_store):
    hit("u1")
    hit("u1", experiment="other")
    hit("u1", experiment="third")
    status, body = call(lamed.all, {"scope": "third,button"}, path="/experiments")
    assert status == 200
    assert body[0] == {"meta": {"scope": "third,button"}}
    assert [entry["experiment"] for entry in body[1:]] == ["third", "button"]


def test_experiment_and_delete(handler_store, redis_client):
    hit("u1")
    status, body = call(lamed.experiment, {"experiment": "button"}, path="/experiment")
    assert status == 200 and body["variants"] == [{"label": "red", "trials": 1}]
    status, body = call(lamed.delete, {"experiment": "button"}, method="DELETE", path="/delete")
    assert (status, body) == (200, {"deleted": "button", "namespace": "alephbet", "counters": 1})
    assert redis_client.keys("alephbet:*") == []
    assert call(lamed.experiment, {"experiment": "button"})[0] == 404
    status, body = call(lamed.delete, {"experiment": "button"}, method="DELETE")
    assert status == 404 and "no experiment 'button'" in body["error"]


def test_flat_lamed_events_return_plain_values(handler_store):
    assert lamed.track({"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}, None) is None
    assert lamed.all({"namespace": "alephbet"}, None) == [
        {"meta": {"scope": None}},
        {"experiment": "e", "goals": [], "variants": [{"label": "a", "trials": 1}]},
    ]
    assert lamed.experiment({"experiment": "e"}, None)["experiment"] == "e"
    assert lamed.delete({"experiment": "e"}, None)["counters"] == 1
    with pytest.raises(ValueError, match="missing required parameter 'uuid'"):
        lamed.track({"experiment": "e", "variant": "a", "event": "participate"}, None)


GOOD = {"experiment": "e", "variant": "a", "event": "participate", "uuid": "u"}


@pytest.mark.parametrize(
    "params, message",
    [
        (None, "missing required parameter 'experiment'"),
        ({**GOOD, "experiment": ""}, "missing required parameter 'experiment'"),
        ({k: v for k, v in GOOD.items() if k != "variant"}, "missing required parameter 'variant'"),
        ({k: v for k, v in GOOD.items() if k != "event"}, "missing required parameter 'event'"),
        ({k: v for k, v in GOOD.items() if k != "uuid"}, "missing required parameter 'uuid'"),
        ({**GOOD, "uuid": "x" * 257}, "parameter 'uuid' is longer than 256 characters"),
        ({**GOOD, "experiment": "x" * 257}, "parameter 'experiment' is longer than 256 characters"),
        ({**GOOD, "namespace": "a:b"}, "parameter 'namespace' must not contain ':'"),
        ({**GOOD, "event": "a:b"}, "parameter 'event' must not contain ':'"),
        ({**GOOD, "variant": "a:b"}, "parameter 'variant' must not contain ':'"),
    ],
)
def test_bad_track_input_is_a_400_naming_the_parameter(handler_store, redis_client, params, message):
    assert call(lamed.track, params) == (400, {"error": message})
    assert redis_client.keys("*") == []


def test_a_256_character_value_is_accepted(handler_store):
    assert hit("x" * 256, experiment="e" * 256)[0] == 200


def test_experiment_and_delete_require_experiment(handler_store):
    assert call(lamed.experiment, {})[0] == 400
    assert call(lamed.delete, None, method="DELETE") == (400, {"error": "missing required parameter 'experiment'"})


def config_file(tmp_path, monkeypatch, redis_settings):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"redis": redis_settings}))
    monkeypatch.setenv("LAMED_CONFIG", str(path))
    handlers.use_store(None)


def test_handlers_build_their_store_from_the_config(tmp_path, monkeypatch, redis_server, redis_client):
    config_file(tmp_path, monkeypatch, {"url": redis_server.url})
    try:
        assert hit("u1") == (200, {"counted": True})
        assert redis_client.get("alephbet:counters:button:participate:red") == "1"
    finally:
        handlers.use_store(None)


def test_redis_down_is_a_503_not_a_200(tmp_path, monkeypatch, caplog):
    config_file(tmp_path, monkeypatch, {"port": free_port()})
    try:
        status, body = hit("u1")
        assert status == 503 and body["error"].startswith("Redis unavailable")
        assert call(lamed.all, None)[0] == 503
    finally:
        handlers.use_store(None)
    assert "Redis unavailable" in caplog.text


def test_a_hung_redis_times_out_as_a_503(tmp_path, monkeypatch):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_and_say_nothing():
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_say_nothing)
    thread.start()
    config_file(tmp_path, monkeypatch, {"port": silent.getsockname()[1], "socket_timeout": 0.2})
    try:
        status, body = hit("u1")
        assert status == 503
        assert "timeout" in body["error"].lower() or "timed out" in body["error"].lower(), body
    finally:
        handlers.use_store(None)
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        silent.close()


def test_a_malformed_config_is_a_500_without_details_leaking(tmp_path, monkeypatch, caplog):
    path = tmp_path / "config.json"
    path.write_text("{broken")
    monkeypatch.setenv("LAMED_CONFIG", str(path))
    handlers.use_store(None)
    try:
        assert hit("u1") == (500, {"error": "the backend's configuration is invalid; see its logs"})
    finally:
        handlers.use_store(None)
    assert "not valid JSON" in caplog.text


def test_an_unexpected_error_is_a_500_with_a_log_line(handler_store, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(handler_store, "results", explode)
    status, body = call(lamed.all, None)
    assert (status, body) == (500, {"error": "internal error; see the backend's logs"})
    assert "boom" in caplog.text


def test_endless_contention_is_a_503_so_the_client_retries(handler_store, monkeypatch, redis_client):
    monkeypatch.setattr(handler_store, "_count_if_new", lambda flag, writes: None)  # EXEC always aborted
    status, body = hit("u1")
    assert (status, body) == (503, {"error": "too many concurrent updates of this event; try again"})
    assert redis_client.keys("*") == []


# -- Lambda function URL events (payload format 2.0) ---------------------------------


TRACK_QUERY = "namespace=shop&experiment=button+colour&variant=red&event=participate&uuid=u-1"


def test_a_function_url_event_counts_and_answers_exactly_as_a_rest_event(handler_store, redis_client):
    first = lamed.track(function_url_event(TRACK_QUERY))
    again = lamed.track(function_url_event(TRACK_QUERY))
    rest = lamed.track(proxy_event({"namespace": "shop", "experiment": "button colour", "variant": "red", "event": "participate", "uuid": "u-1"}))
    assert first["statusCode"] == 200 and json.loads(first["body"]) == {"counted": True}
    assert json.loads(again["body"]) == {"counted": False} and again["statusCode"] == rest["statusCode"]
    assert first["body"] == again["body"].replace("false", "true") and again["body"] == rest["body"]
    # The URL's Cors configuration adds the CORS headers (lamed.serve_function_url): the function, none.
    assert first["headers"] == {name: value for name, value in rest["headers"].items() if not name.startswith("Access-Control-")}
    assert redis_client.get("shop:counters:button colour:participate:red") == "1"


def test_a_repeated_parameter_counts_its_last_value_as_rest_does(handler_store, redis_client):
    response = lamed.track(function_url_event(TRACK_QUERY + "&variant=blue"))
    assert json.loads(response["body"]) == {"counted": True}
    assert redis_client.get("shop:counters:button colour:participate:blue") == "1"
    assert not redis_client.exists("shop:counters:button colour:participate:red,blue")


@pytest.mark.parametrize(
    ("raw_query", "error"),
    [
        ("experiment=e&variant=a&event=participate", "missing required parameter 'uuid'"),
        ("experiment=e&variant=a%3Ab&event=participate&uuid=u", "parameter 'variant' must not contain ':'"),
        ("experiment=e&variant=%ff&event=participate&uuid=u", "the query has percent-encoding that is not UTF-8"),
    ],
)
def test_function_url_bad_requests_are_400s_naming_the_problem(handler_store, raw_query, error):
    response = lamed.track(function_url_event(raw_query))
    assert response["statusCode"] == 400 and json.loads(response["body"]) == {"error": error}
    assert not [name for name in response["headers"] if name.startswith("Access-Control-")]


def test_function_url_redis_down_is_the_same_503(tmp_path, monkeypatch):
    config_file(tmp_path, monkeypatch, {"port": free_port()})
    try:
        response = lamed.track(function_url_event(TRACK_QUERY))
    finally:
        handlers.use_store(None)
    assert response["statusCode"] == 503 and json.loads(response["body"])["error"].startswith("Redis unavailable")


def test_function_url_options_that_is_no_preflight_and_other_methods(handler_store, redis_client):
    """The URL's Cors answers preflights itself; any other OPTIONS reaches the function."""
    options = lamed.track(function_url_event("", method="OPTIONS"))
    assert options == {"statusCode": 200, "headers": {"Allow": "GET,OPTIONS"}, "body": ""}
    posted = lamed.track(function_url_event(TRACK_QUERY, method="POST"))
    assert posted["statusCode"] == 405 and posted["headers"]["Allow"] == "GET,OPTIONS"
    assert json.loads(posted["body"]) == {"error": "POST is not allowed here: send GET"}
    assert redis_client.keys("*") == []


def test_function_url_events_get_the_same_429_beyond_the_bounds(redis_server, redis_client):
    from lamed.config import Bounds
    from lamed.store import Store

    handlers.use_store(Store(redis_server.client(), bounds=Bounds(max_experiments=1, max_variants=20)))
    try:
        assert lamed.track(function_url_event("experiment=first&variant=a&event=participate&uuid=u"))["statusCode"] == 200
        over = lamed.track(function_url_event("experiment=second&variant=a&event=participate&uuid=u"))
        rest = lamed.track(proxy_event({"experiment": "second", "variant": "a", "event": "participate", "uuid": "u"}))
    finally:
        handlers.use_store(None)
    assert over["statusCode"] == 429 and over["body"] == rest["body"]
    assert "max_experiments" in json.loads(over["body"])["error"]
