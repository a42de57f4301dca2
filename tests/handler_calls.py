"""Calling the handlers as API Gateway does: a REST proxy event in, the status and JSON body out."""

import json


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
