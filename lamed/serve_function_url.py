"""``lamed serve``'s ``/function-url/`` path: what a Lambda function URL with lamed's ``Cors`` does.

A request becomes the URL's event (payload format 2.0) for ``lamed.track``, and the URL's
``Cors`` configuration (:data:`lamed.aws.resources.FUNCTION_URL_CORS`, the one deploy sets)
acts as AWS documents it (https://docs.aws.amazon.com/lambda/latest/dg/urls-configuration.html#urls-cors):
a preflight is answered from the configuration alone, without invoking the function; every
other answer gets the configured headers *beside* the function's own, duplicates kept (so a
function that adds ``Access-Control-Allow-Origin`` too is refused by the browser, as reported
against real AWS in aws-powertools/powertools-lambda-python#4163 and
hummingbird-project/hummingbird-examples#130).
"""

import time
import uuid
from typing import Callable
from urllib.parse import SplitResult, parse_qsl

from lamed.aws.resources import FUNCTION_URL_CORS

PATH = "/function-url"  # any path below goes to lamed.track as a 2.0 event


def is_function_url(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def is_preflight(method: str, headers) -> bool:
    """A CORS preflight: OPTIONS with an Origin and the method the browser means to send."""
    return method == "OPTIONS" and bool(headers.get("Origin")) and bool(headers.get("Access-Control-Request-Method"))


def _allowed_origin(origin: str | None, cors: dict) -> str | None:
    allowed = cors.get("AllowOrigins") or []
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def preflight_headers(origin: str | None, cors: dict) -> dict:
    """What the URL answers a preflight with: the configuration, and nothing of the function."""
    allowed = _allowed_origin(origin, cors)
    if allowed is None:
        return {}
    headers = {"Access-Control-Allow-Origin": allowed}
    for name, key in (("Methods", "AllowMethods"), ("Headers", "AllowHeaders")):
        if cors.get(key):
            headers[f"Access-Control-Allow-{name}"] = ",".join(cors[key])
    if cors.get("MaxAge"):
        headers["Access-Control-Max-Age"] = str(cors["MaxAge"])
    return headers


def response_headers(origin: str | None, cors: dict) -> list[tuple[str, str]]:
    """The headers the URL adds to every answer that is not a preflight."""
    allowed = _allowed_origin(origin, cors)
    if allowed is None:
        return []
    added = [("Access-Control-Allow-Origin", allowed)]
    if cors.get("ExposeHeaders"):
        added.append(("Access-Control-Expose-Headers", ",".join(cors["ExposeHeaders"])))
    if cors.get("AllowCredentials"):
        added.append(("Access-Control-Allow-Credentials", "true"))
    return added


def respond(
    handler: Callable[[dict, object], dict],
    method: str,
    url: SplitResult,
    headers,
    body: tuple[str | None, bool],
    client: dict,
    cors: dict = FUNCTION_URL_CORS,
) -> dict:
    """The URL's answer to one request: a preflight from ``cors``, else the handler's response
    with ``cors``'s headers added as extra header lines (``multiValueHeaders``)."""
    origin = headers.get("Origin")
    if is_preflight(method, headers):
        return {"statusCode": 200, "headers": preflight_headers(origin, cors), "body": ""}
    response = handler(event(method, url, headers, body, client), None)
    added = response.setdefault("multiValueHeaders", {})
    for name, value in response_headers(origin, cors):
        added.setdefault(name, []).append(value)
    return response


def event(method: str, url: SplitResult, headers, body: tuple[str | None, bool], client: dict) -> dict:
    """The Lambda function URL event (payload format 2.0) for this request.

    ``client`` has the request's ``protocol``, ``sourceIp`` and ``userAgent``; ``body`` is
    the text and whether it is base64.
    """
    path = url.path[len(PATH):] or "/"
    joined = {}
    for name, value in headers.items():
        joined[name.lower()] = f"{joined[name.lower()]},{value}" if name.lower() in joined else value
    parameters = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    text, encoded = body
    result = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": url.query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "domainName": headers.get("Host"),
            "http": {"method": method, "path": path, **client},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if parameters:
        result["queryStringParameters"] = parameters
    if text is not None:
        result["body"] = text
    return result
