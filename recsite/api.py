"""Shared REST plumbing: one error shape, API-key and storefront (CSRF) authentication, scoped throttles.

Error shape: every 4xx/5xx answer from DRF is ``{"error": "<one sentence>", "detail": <original detail>}``.

Authentication for public write endpoints (``authentication_classes = PUBLIC_AUTHENTICATION`` plus
``permission_classes = [StorefrontOrAPIKey]``):

- ``Authorization: Api-Key <key>`` (djangorestframework-api-key): server-to-server; no CSRF. A wrong,
  expired or revoked key is a 401; it never falls back to the session.
- Otherwise the browser's own Django session, and the CSRF check runs for *every* such request,
  anonymous shoppers included (DRF's SessionAuthentication checks CSRF only for logged-in users).
  The token comes, in order, from the ``X-CSRFToken`` header, the ``csrfmiddlewaretoken`` query
  parameter, or a top-level ``csrfmiddlewaretoken`` key of a JSON object body (for
  ``navigator.sendBeacon``, which cannot set headers). A request with neither gets 403 with a message
  that says what to send.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_api_key.models import APIKey
from rest_framework_api_key.permissions import KeyParser

from .memo import Memo

CSRF_FIELD = "csrfmiddlewaretoken"
CSRF_HELP = (
    "Browser clients: send the csrftoken cookie with the X-CSRFToken header "
    f"(or a {CSRF_FIELD} query parameter / body key for sendBeacon). "
    "Server clients: send 'Authorization: Api-Key <key>' (create one with `manage.py create_api_key NAME`)."
)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Wrap DRF errors as {"error": <message>, "detail": <original detail>} so clients read one shape."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail and len(detail) == 1:
        message = str(detail["detail"])
    elif isinstance(detail, dict | list):
        message = "Invalid input."
    else:
        message = str(detail)
    response.data = {"error": message, "detail": detail}
    return response


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "Request body too large."
    default_code = "payload_too_large"


class PlainTextJSONParser(JSONParser):
    """JSON sent as text/plain: what ``navigator.sendBeacon(url, string)`` produces (no preflight)."""

    media_type = "text/plain"


# --- authentication ---


class APIKeyAuthentication:
    """``Authorization: Api-Key <key>`` → (AnonymousUser, APIKey). No header → not this scheme."""

    keyword = "Api-Key"

    def authenticate(self, request: Any) -> tuple[Any, APIKey] | None:
        # KeyParser.get_from_authorization understands "Api-Key <key>" whatever API_KEY_CUSTOM_HEADER says.
        key = KeyParser().get_from_authorization(request._request)
        if key is None:
            return None
        key = key.strip()
        api_key = api_key_verify(key)
        if api_key is None or api_key.has_expired or api_key.revoked:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser(), api_key

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


# Verified keys are remembered per process (sha256 of the key -> APIKey) for RECSITE_API_KEY_CACHE_SECONDS
# (default 30; 0 = verify every request, as the test settings do): a request with a known key then costs no
# query and no hash check. Expiry is re-checked on every request from the remembered row; a revocation or
# deletion saved in this process clears the memo at once (signals below), in other worker processes it
# takes effect within the TTL. Wrong keys are never remembered.
API_KEY_MEMO_MAX = 10_000


def _api_key_seconds() -> float:
    return float(getattr(settings, "RECSITE_API_KEY_CACHE_SECONDS", 30.0))


api_key_memo: Memo[APIKey] = Memo(maxsize=API_KEY_MEMO_MAX, ttl=_api_key_seconds)


def api_key_verify(key: str) -> APIKey | None:
    """The APIKey row for a plaintext key, or None (not revoked/expired-checked: the caller does that)."""
    remember = _api_key_seconds() > 0
    digest = hashlib.sha256(key.encode()).digest()
    if remember:
        hit = api_key_memo.get(digest)
        if hit is not None:
            return hit
    try:
        api_key = APIKey.objects.get_from_key(key)
    except APIKey.DoesNotExist:
        return None
    if remember and api_key is not None:
        api_key_memo.set(digest, api_key)
    return api_key


def api_key_memo_clear(**_: Any) -> None:
    api_key_memo.clear()


post_save.connect(api_key_memo_clear, sender=APIKey, dispatch_uid="recsite-api-key-memo-save")
post_delete.connect(api_key_memo_clear, sender=APIKey, dispatch_uid="recsite-api-key-memo-delete")


class StorefrontSessionAuthentication(SessionAuthentication):
    """The browser's session, with the CSRF check enforced for anonymous shoppers too."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        django_request: HttpRequest = request._request
        self.enforce_csrf(request)
        django_request.recsite_csrf_ok = True  # type: ignore[attr-defined]
        user = getattr(django_request, "user", None)
        if user is None or not user.is_active or not user.is_authenticated:
            return None
        return user, None

    def enforce_csrf(self, request: Any) -> None:
        django_request: HttpRequest = request._request
        if django_request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        meta_key = settings.CSRF_HEADER_NAME
        if not django_request.META.get(meta_key):
            token = django_request.GET.get(CSRF_FIELD) or _token_from_json_body(django_request)
            if token:
                django_request.META[meta_key] = token

        check = CSRFCheck(lambda _request: None)  # type: ignore[arg-type]
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF check failed: {reason} {CSRF_HELP}")


def _token_from_json_body(request: HttpRequest) -> str | None:
    """`csrfmiddlewaretoken` at the top of a JSON object body (sendBeacon cannot set headers)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    # Beacons are small (browsers cap them at about 64 KiB); never read a body Django would refuse.
    if not length or length > (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or events_body_max_bytes()):
        return None
    body = request.body  # cached by Django; DRF's parser reads it again from memory
    if CSRF_FIELD.encode() not in body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    token = data.get(CSRF_FIELD) if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


def events_body_max_bytes() -> int:
    """Largest accepted request body (500 events with a full context object fit with room to spare)."""
    return max(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0, 4 * 1024 * 1024)


PUBLIC_AUTHENTICATION = [APIKeyAuthentication, StorefrontSessionAuthentication]


class StorefrontOrAPIKey(BasePermission):
    """A valid API key, or a browser request that passed the CSRF check."""

    message = f"Authentication required. {CSRF_HELP}"

    def has_permission(self, request: Any, view: Any) -> bool:
        if isinstance(request.auth, APIKey):
            return True
        return bool(getattr(request._request, "recsite_csrf_ok", False))


def is_api_key_request(request: Any) -> bool:
    return isinstance(getattr(request, "auth", None), APIKey)


# --- throttling ---


class ClientRateThrottle(SimpleRateThrottle):
    """Rate limit per client: API key, else logged-in user, else IP address. `scope` picks the rate.

    The rate is read from settings on each request (DRF's class attribute is frozen at import), so
    `override_settings(REST_FRAMEWORK=...)` works in tests and a settings change needs no code change.
    """

    scope = "anon"

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise exceptions.APIException(f"No throttle rate set for scope {self.scope!r}.")
        return rates[self.scope]

    def get_cache_key(self, request: Any, view: Any) -> str:
        if isinstance(request.auth, APIKey):
            ident = f"key:{request.auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class EventsRateThrottle(ClientRateThrottle):
    scope = "events"


# --- OpenAPI (drf-spectacular) descriptions of the two schemes above ---

from drf_spectacular.extensions import OpenApiAuthenticationExtension  # noqa: E402


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = APIKeyAuthentication
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`; create a key with `python manage.py create_api_key NAME`.",
        }


class StorefrontSessionScheme(OpenApiAuthenticationExtension):
    target_class = StorefrontSessionAuthentication
    name = "storefrontSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken",
            "description": "Browser session: the csrftoken cookie plus this header (or csrfmiddlewaretoken "
            "in the query string or JSON body for sendBeacon). Anonymous shoppers are CSRF-checked too.",
        }
