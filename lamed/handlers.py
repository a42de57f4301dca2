"""Lambda entry points: event -> validated request -> store -> response.

Each handler accepts an API Gateway REST proxy event, or a Lambda function URL's event
(payload format 2.0, ``"version": "2.0"``), and returns ``{statusCode, headers, body}``,
the same for both, except that a function URL's answers carry no ``Access-Control-*``
header: the URL's ``Cors`` configuration adds those and answers preflights itself (AWS
keeps the function's own beside them, and a browser refuses ``*, *``). Given Lamed's flat event dict (old wiring with a
mapping template) it returns the plain value and raises on errors, as Lamed did.
The store is built once per warm container from the config and reused, so warm
invocations open no new Redis connection. Only the standard library and redis-py.
"""

import json
import logging
from urllib.parse import parse_qsl

import redis

from lamed import names
from lamed.cluster_store import ClusterStore
from lamed.config import DEFAULT_NAMESPACE, ConfigError, load_config
from lamed.connection import explain, is_retryable, open_store
from lamed.declared import Declarations, Refused
from lamed.store import BoundReached, ContentionError, KeyConflict, Store

logger = logging.getLogger("lamed")

FUNCTION_URL_VERSION = "2.0"
FUNCTION_URL_ALLOW = "GET,OPTIONS"
CORS_PREFIX = "access-control-"
RESPONSE_HEADERS = {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": "*",
    "Cache-Control": "no-cache, no-store, must-revalidate",
}

_store: Store | ClusterStore | None = None
_settings: dict = {}  # the Redis settings of the config, to explain failures
_declared = Declarations(DEFAULT_NAMESPACE)  # the config's declared experiments
_logged_setup_problems: set[str] = set()


class BadRequest(ValueError):
    """A request parameter is missing or malformed (HTTP 400)."""


class NotFound(LookupError):
    """The named experiment does not exist (HTTP 404)."""


def use_store(store: Store | ClusterStore | None, settings: dict | None = None, declared: Declarations | None = None) -> None:
    """Make the handlers use ``store`` and the ``declared`` experiments (none by default) (``lamed
    serve`` and tests); None reloads both from the config."""
    global _store, _settings, _declared
    _store, _settings, _declared = store, settings or {}, declared or Declarations(DEFAULT_NAMESPACE)


def get_store() -> Store | ClusterStore:
    """The store of this container, built from the config on first use (with its declarations)."""
    global _store, _settings, _declared
    if _store is None:
        config = load_config()
        for warning in config.warnings:
            logger.warning(warning)
        _settings, _declared = config.redis, Declarations.of(config)
        _store = open_store(config.redis, config.uuid_expiry_seconds, config.bounds)
    return _store


def declarations() -> Declarations:
    """The declared experiments of this container's config (read with its store)."""
    get_store()
    return _declared


def _redis_failure(exc: redis.RedisError) -> dict:
    """503 for what a retry can fix (the client sends the event again), else 500; the cause logged."""
    if is_retryable(exc):
        logger.error("Redis unavailable: %s", exc)
        return _response(503, {"error": f"Redis unavailable, try again: {exc}"})
    problem = explain(exc, _settings, "the deployed config")
    if problem not in _logged_setup_problems:  # once per container: every request would repeat it
        _logged_setup_problems.add(problem)
        logger.error("cannot use Redis: %s", problem)
    return _response(500, {"error": "the backend cannot use its Redis as configured; see its logs"})


# -- request parsing -------------------------------------------------------------


def _is_proxy_event(event) -> bool:
    return isinstance(event, dict) and ("httpMethod" in event or "requestContext" in event)


def _is_function_url_event(event) -> bool:
    return isinstance(event, dict) and event.get("version") == FUNCTION_URL_VERSION


def _parameters(event) -> dict:
    if _is_function_url_event(event):
        # 2.0 joins a repeated parameter's values with commas; the raw query, decoded as API
        # Gateway REST and lamed serve decode it (last value wins, + is a space), answers alike.
        try:
            return dict(parse_qsl(event.get("rawQueryString") or "", keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            raise BadRequest("the query has percent-encoding that is not UTF-8") from None
    if _is_proxy_event(event):
        return event.get("queryStringParameters") or {}
    if isinstance(event, dict):
        return event
    raise BadRequest("the event must be an object of parameters")


def _parameter(parameters: dict, name: str, default: str | None = None) -> str:
    value = parameters.get(name)
    if value is None or value == "":
        if default is not None:
            return default
        raise BadRequest(f"missing required parameter '{name}'")
    if not isinstance(value, str):
        raise BadRequest(f"parameter '{name}' must be a string")
    problem = names.problem(name, value)
    if problem:
        raise BadRequest(f"parameter '{name}' {problem}")
    return value


def _namespace(parameters: dict) -> str:
    return _parameter(parameters, "namespace", DEFAULT_NAMESPACE)


def _days(parameters: dict) -> bool:
    """``days=1``: each experiment carries its daily counts; absent, empty or ``0``: Lamed's shape."""
    value = parameters.get("days") or "0"
    if value not in ("0", "1"):
        raise BadRequest("parameter 'days' must be 1 (with the daily counts) or 0")
    return value == "1"


# -- responses -------------------------------------------------------------------


def _response(status: int, body) -> dict:
    return {"statusCode": status, "headers": dict(RESPONSE_HEADERS), "body": json.dumps(body)}


def _function_url_method(event) -> dict | None:
    """A function URL passes every method but the preflights its ``Cors`` answers: an OPTIONS
    that is no preflight gets the methods, and all but GET are refused."""
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")
    if method == "OPTIONS":
        return {"statusCode": 200, "headers": {"Allow": FUNCTION_URL_ALLOW}, "body": ""}
    if method != "GET":
        response = _response(405, {"error": f"{method} is not allowed here: send GET"})
        response["headers"]["Allow"] = FUNCTION_URL_ALLOW
        return response
    return None


def _without_cors(response: dict) -> dict:
    """A function URL's answer: its ``Cors`` configuration adds the CORS headers, once."""
    response["headers"] = {name: value for name, value in response["headers"].items() if not name.lower().startswith(CORS_PREFIX)}
    return response


def _handle(event, action):
    """Run ``action(parameters)`` and shape its value or error for the event's kind."""
    if not _is_proxy_event(event):
        return action(_parameters(event))
    if _is_function_url_event(event):
        return _without_cors(_function_url_method(event) or _answer(event, action))
    return _answer(event, action)


def _answer(event, action) -> dict:
    """The proxy response for ``action(parameters)``: its value, or its error as a status."""
    try:
        return _response(200, action(_parameters(event)))
    except (BadRequest, Refused) as exc:
        return _response(400, {"error": str(exc)})
    except NotFound as exc:
        return _response(404, {"error": str(exc)})
    except BoundReached as exc:
        return _response(429, {"error": str(exc)})
    except KeyConflict as exc:
        logger.error("%s", exc)
        return _response(500, {"error": "this event's Redis keys hold other data; nothing was counted; see the backend's logs"})
    except ContentionError as exc:
        logger.warning("%s", exc)
        return _response(503, {"error": "too many concurrent updates of this event; try again"})
    except redis.RedisError as exc:
        return _redis_failure(exc)
    except ConfigError as exc:
        logger.error("configuration error: %s", exc)
        return _response(500, {"error": "the backend's configuration is invalid; see its logs"})
    except Exception:
        logger.exception("unexpected error")
        return _response(500, {"error": "internal error; see the backend's logs"})


# -- entry points ----------------------------------------------------------------


def track(event, context=None):
    """Count one event: namespace, experiment, variant, event, uuid."""

    def action(parameters):
        request = {
            "namespace": _namespace(parameters),
            **{name: _parameter(parameters, name) for name in ("experiment", "variant", "event", "uuid")},
        }
        for name in names.PRINTED:  # reports print them later: no control characters (the rest checked above)
            if names.has_control(request[name]):
                raise BadRequest(f"parameter '{name}' {names.CONTROL_PROBLEM}")
        admitted = declarations().admit(*(request[key] for key in ("namespace", "experiment", "variant", "event")))
        counted = admitted and get_store().track(**request)
        return {"counted": counted} if _is_proxy_event(event) else None

    return _handle(event, action)


def all_experiments(event, context=None):
    """Every experiment's counts (or those named in ``scope``; with ``days=1`` their daily
    counts too), after Lamed's meta entry."""

    def action(parameters):
        raw_scope = parameters.get("scope") or None
        if raw_scope is not None and not (isinstance(raw_scope, str) and names.encodable(raw_scope)):
            raise BadRequest("parameter 'scope' must be a comma-separated string of experiment names")
        scope = [name.strip() for name in raw_scope.split(",") if name.strip()] if raw_scope else None
        namespace, days = _namespace(parameters), _days(parameters)
        entries = declarations().shape(namespace, get_store().results(namespace, scope, days), scope, days)
        return [{"meta": {"scope": raw_scope}}, *entries]

    return _handle(event, action)


def _named_experiment(event, operate):
    """Handle a request that names one experiment.

    ``operate(store, namespace, name, parameters)`` returns the response body, or None when
    the experiment does not exist (a 404).
    """

    def action(parameters):
        namespace, name = _namespace(parameters), _parameter(parameters, "experiment")
        body = operate(get_store(), namespace, name, parameters)
        if body is None:
            raise NotFound(f"no experiment '{name}' in namespace '{namespace}'")
        return body

    return _handle(event, action)


def experiment(event, context=None):
    """One experiment's counts: namespace, experiment (and ``days``)."""

    def read(store, namespace, name, parameters):
        days = _days(parameters)
        return declarations().shape_one(namespace, name, store.experiment(namespace, name, days), days)

    return _named_experiment(event, read)


def delete(event, context=None):
    """Remove one experiment's counters and index entries: namespace, experiment."""

    def remove(store, namespace, name, parameters):
        removed = store.delete(namespace, name)
        return None if removed is None else {"deleted": name, "namespace": namespace, "counters": removed}

    return _named_experiment(event, remove)
