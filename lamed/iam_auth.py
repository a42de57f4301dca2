"""ElastiCache IAM authentication: the short-lived token that stands in for a Redis password.

A cache user with IAM authentication logs in with ``AUTH <user-id> <token>``, where the
token is a SigV4-presigned ``GET http://{cache}/?Action=connect&User={user-id}`` (plus
``ResourceType=ServerlessCache`` for a serverless cache), signed for the service
``elasticache`` with the caller's credentials (a Lambda's role) and valid 15 minutes.
redis-py asks the provider for credentials on each new connection; a token is reused
for 10 minutes of wall-clock time (ElastiCache checks its ``X-Amz-Date`` against the wall
clock, which a frozen Lambda container's monotonic clock does not follow), then signed
anew; a token Redis refuses is discarded at once (:class:`TokenRetry`), so the retry signs
a new one. botocore is imported here only, so only this path needs it.
"""

import copy
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import quote

import botocore.session
import redis
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from redis.credentials import CredentialProvider
from redis.retry import Retry

SERVICE = "elasticache"
TOKEN_VALID_SECONDS = 900  # what ElastiCache accepts at most
RENEW_AFTER_SECONDS = 600  # sign anew well before a token expires


class IamAuthError(redis.AuthenticationError):
    """No token can be signed here (no AWS credentials or region); a retry will not help."""


def connect_url(cache: str, user: str, serverless: bool) -> str:
    """The request whose presigned form is the token."""
    url = f"http://{cache}/?Action=connect&User={quote(user, safe='')}"
    return url + "&ResourceType=ServerlessCache" if serverless else url


class ElastiCacheIamProvider(CredentialProvider):
    """redis-py credentials ``(user, token)`` for an IAM-enabled ElastiCache user."""

    def __init__(
        self,
        user: str,
        cache: str,
        serverless: bool = False,
        region: str | None = None,
        session=None,
        clock: Callable[[], float] = time.time,
    ):
        self.user = user
        self.cache = cache
        self.serverless = serverless
        self._region = region
        self._session = session or botocore.session.get_session()  # or a boto3 Session: both get_credentials()
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._signed_at = 0.0

    def get_credentials(self) -> tuple[str, str]:
        with self._lock:
            if self._token is None or self._clock() - self._signed_at >= RENEW_AFTER_SECONDS:
                self._token = self.sign_token()
                self._signed_at = self._clock()
            return self.user, self._token

    def discard(self) -> None:
        """Forget the token (Redis refused it): the next connection signs a new one."""
        with self._lock:
            self._token = None

    def region(self) -> str:
        region = self._region or self._session.get_config_variable("region") or os.environ.get("AWS_REGION")
        if not region:
            raise IamAuthError(
                "no AWS region to sign the ElastiCache IAM token for — fix: set AWS_REGION (the cache's region)"
            )
        return region

    def sign_token(self) -> str:
        """A new token, signed now with the session's current credentials."""
        try:
            credentials = self._session.get_credentials()
            frozen = credentials.get_frozen_credentials() if credentials else None
        except BotoCoreError as exc:
            raise IamAuthError(f"the AWS credentials to sign the ElastiCache IAM token failed to load: {exc}") from exc
        if frozen is None or not frozen.access_key:
            raise IamAuthError(
                "no AWS credentials to sign the ElastiCache IAM token — fix: run where the role's credentials are "
                "(a deployed function has them), or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
            )
        request = AWSRequest(method="GET", url=connect_url(self.cache, self.user, self.serverless))
        SigV4QueryAuth(frozen, SERVICE, self.region(), expires=TOKEN_VALID_SECONDS).add_auth(request)
        return request.prepare().url.removeprefix("http://")


class TokenRetry(Retry):
    """redis-py's Retry that discards the provider's token when Redis refuses it, so the retry
    (and every later connection) authenticates with a new one instead of the refused one."""

    def __init__(self, provider: ElastiCacheIamProvider, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider = provider

    def __deepcopy__(self, memo):
        # redis-py deep-copies a client's Retry into each connection: the copies share the provider
        clone = copy.copy(self)
        clone._backoff = copy.deepcopy(self._backoff, memo)
        return clone

    def call_with_retry(self, do, fail, *args, **kwargs):
        def failed(error, *rest):
            if isinstance(error, redis.AuthenticationError):
                self.provider.discard()
            return fail(error, *rest)

        return super().call_with_retry(do, failed, *args, **kwargs)
