"""Calling the handlers as AWS does: a REST proxy event or a function URL event (payload 2.0) in,
the status and JSON body out."""

import json
from urllib.parse import parse_qsl


def proxy_event(params=None, method="GET", path="/track"):
    """An API Gateway REST (v1) proxy event, as the deployed API sends it."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Origin": "https://example.org"},
        "multiValueHeaders": {"Origin": ["https://example.org"]},
        "queryStringParameters": params,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"stage": "prod", "httpMethod": method, "identity": {"sourceIp": "127.0.0.1"}},
        "body": None,
        "isBase64Encoded": False,
    }


def call(handler, params=None, **kwargs):
    response = handler(proxy_event(params, **kwargs), None)
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    assert response["headers"]["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def function_url_event(raw_query: str, method: str = "GET") -> dict:
    """A Lambda function URL's event, in the shape AWS documents for payload format 2.0."""
    joined = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": raw_query,
        "headers": {"origin": "https://example.org", "accept": "*/*", "host": "abc.lambda-url.eu-west-1.on.aws"},
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795521600000,
        },
        "isBase64Encoded": False,
    }
    if joined:
        event["queryStringParameters"] = joined
    return event
