"""The ElastiCache IAM token's life: its age is wall-clock time (ElastiCache checks X-Amz-Date against
the wall clock), and a token Redis refuses is discarded so the retry authenticates with a new one."""

import datetime
import time

import botocore.auth
import pytest

from lamed.connection import open_store
from lamed.iam_auth import ElastiCacheIamProvider
from test_redis_auth import aws_credentials, ca_file, clean_tls, frozen_clock  # noqa: F401 (fixtures)


def test_the_token_s_age_is_measured_on_the_wall_clock(aws_credentials):
    """A frozen Lambda container's monotonic clock stands still while the wall clock (and the token's
    X-Amz-Date) moves on: the age must follow the clock the signature was dated with."""
    assert ElastiCacheIamProvider("u", "c", True)._clock is time.time


def test_a_refused_token_is_discarded_and_the_retry_signs_a_new_one(clean_tls, aws_credentials, frozen_clock):
    settings = {
        "url": f"rediss://127.0.0.1:{clean_tls.port}",
        "ssl_ca_certs": ca_file(clean_tls),
        "iam": {"user": "iam-user", "cache": "my-cache", "serverless": True},
    }
    store = open_store(settings, 86400)
    provider = store.client.connection_pool.connection_kwargs["credential_provider"]
    admin = clean_tls.client()
    _, first = provider.get_credentials()
    admin.acl_setuser("iam-user", enabled=True, passwords=[f"+{first}"], keys=["*"], commands=["+@all"])
    try:
        assert store.track("ns", "e", "a", "participate", "u1") is True
        frozen_clock[0] += datetime.timedelta(seconds=1)  # a second later, a new token differs (X-Amz-Date)
        second = provider.sign_token()
        admin.acl_setuser("iam-user", enabled=True, reset_passwords=True, passwords=[f"+{second}"])  # the first is refused now
        store.client.connection_pool.disconnect()
        assert store.track("ns", "e", "a", "participate", "u2") is True  # the refused token was not reused
        assert provider.get_credentials()[1] == second
    finally:
        admin.acl_deluser("iam-user")
