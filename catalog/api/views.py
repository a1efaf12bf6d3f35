"""Catalog REST endpoints: event ingestion and the health check. Thin adapters over catalog.services."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.services import EventResult, EventsRecordResult, events_record
from recsite.api import (
    CSRF_FIELD,
    PUBLIC_AUTHENTICATION,
    EventsRateThrottle,
    PayloadTooLarge,
    PlainTextJSONParser,
    StorefrontOrAPIKey,
    events_body_max_bytes,
    is_api_key_request,
)

from .serializers import ErrorSerializer, EventInSerializer, EventsResponseSerializer, HealthSerializer

logger = logging.getLogger(__name__)

BROWSER_CUSTOMER_ERROR = "Browser requests cannot choose the customer; it comes from the login session."

_EXAMPLE_EVENT = {
    "event_id": "2f1c6a4e-8d0b-4b8e-9a51-3f4f3c1f2a10",
    "type": "view",
    "product_id": 42,
    "visitor_id": "3b9d0c2a8f1e4d6b",
    "session_id": "a1b2c3d4e5f60718",
    "timestamp": "2026-01-31T12:00:00Z",
    "context": {"page": "/products/42/", "device": "desktop", "referrer": ""},
}


class EventsView(APIView):
    """Record one behaviour event or a batch of up to RECSITE_EVENT_BATCH_MAX."""

    authentication_classes = PUBLIC_AUTHENTICATION
    permission_classes = [StorefrontOrAPIKey]
    throttle_classes = [EventsRateThrottle]
    parser_classes = [JSONParser, PlainTextJSONParser]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: the CSRF lookup may read the body, so refuse oversized ones first.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise ParseError("Invalid Content-Length header.") from None
        if length > events_body_max_bytes():
            raise PayloadTooLarge(
                f"Request body is {length} bytes; the limit is {events_body_max_bytes()}. "
                f"Send at most {settings.RECSITE_EVENT_BATCH_MAX} events per request."
            )
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="events_record",
        summary="Record behaviour events",
        description=(
            "Send one event object or a JSON list of up to "
            f"{settings.RECSITE_EVENT_BATCH_MAX} (for navigator.sendBeacon also "
            '`{"events": [...], "csrfmiddlewaretoken": "..."}` as text/plain). '
            "Each event is answered in `results` (same order) as accepted, duplicate (event_id already "
            "stored; nothing added) or rejected (with field -> reason). Good events of a mixed batch are "
            "stored. HTTP 200: none rejected; 207: some rejected; 400: all rejected or the body is "
            "unusable; 413: more than the batch limit; 403: CSRF check failed; 401: bad API key; 429: "
            "throttled."
        ),
        request=PolymorphicProxySerializer(
            component_name="EventOrBatch",
            serializers=[EventInSerializer, EventInSerializer(many=True)],
            resource_type_field_name=None,
            many=False,
        ),
        responses={
            200: EventsResponseSerializer,
            207: OpenApiResponse(
                EventsResponseSerializer, description="Some events rejected; the rest stored."
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description="Unusable body, or every event rejected (then counts and results are included too).",
            ),
            401: OpenApiResponse(ErrorSerializer, description="Invalid, expired or revoked API key."),
            403: OpenApiResponse(ErrorSerializer, description="CSRF check failed and no API key given."),
            413: OpenApiResponse(ErrorSerializer, description="Batch or body too large."),
            415: OpenApiResponse(
                ErrorSerializer, description="Content-Type is not JSON (or text/plain JSON)."
            ),
            429: OpenApiResponse(ErrorSerializer, description="Too many requests."),
        },
        examples=[
            OpenApiExample("One event", value=_EXAMPLE_EVENT, request_only=True),
            OpenApiExample(
                "A batch",
                value=[
                    _EXAMPLE_EVENT,
                    {
                        "event_id": "0d7e8f1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
                        "type": "search",
                        "query": "usb-c cable",
                        "visitor_id": "3b9d0c2a8f1e4d6b",
                    },
                ],
                request_only=True,
            ),
        ],
        tags=["events"],
    )
    def post(self, request: Request) -> Response:
        events = _events_from_body(request.data)
        if isinstance(events, Response):
            return events
        limit = settings.RECSITE_EVENT_BATCH_MAX
        if len(events) > limit:
            return _error(
                f"Batch of {len(events)} events is over the limit of {limit}; split it into smaller requests.",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )

        if is_api_key_request(request):
            result = events_record(events=events)
        else:
            result = _record_for_browser(request, events)

        body: dict[str, Any] = {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
            "results": [
                {"index": r.index, "event_id": r.event_id, "status": r.status, "errors": r.errors}
                for r in result.results
            ],
        }
        if result.rejected == 0:
            code = status.HTTP_200_OK
        elif result.rejected == len(result.results):
            code = status.HTTP_400_BAD_REQUEST
            noun = "event was" if result.rejected == 1 else f"{result.rejected} events were"
            body = {"error": f"The {noun} rejected; see results for the reasons.", **body}
        else:
            code = status.HTTP_207_MULTI_STATUS
        return Response(body, status=code)


def _events_from_body(data: Any) -> list[Any] | Response:
    """The list of events in the body, or a 400 answer saying what is wrong with the body."""
    if isinstance(data, dict) and "events" in data:  # envelope: {"events": [...], "csrfmiddlewaretoken": ...}
        extra = sorted(set(data) - {"events", CSRF_FIELD})
        if extra:
            return _error(f"Unknown top-level keys next to 'events': {', '.join(map(str, extra))}.")
        data = data["events"]
        if not isinstance(data, list):
            return _error("'events' must be a list of event objects.")
    if isinstance(data, dict):
        if not data:
            return _error("Empty body: send one event object or a list of event objects.")
        return [{k: v for k, v in data.items() if k != CSRF_FIELD}]
    if isinstance(data, list):
        if not data:
            return _error("Empty batch: send at least one event.")
        return data
    return _error(
        f"Body must be a JSON object (one event) or a list of event objects, got {type(data).__name__}."
    )


def _record_for_browser(request: Request, events: list[Any]) -> EventsRecordResult:
    """Browser (session) requests: who did it comes from the session and cookies, not from the body."""
    django_request = request._request
    customer = _session_customer(request)
    visitor_id = getattr(django_request, "visitor_id", "")
    session_id = getattr(django_request, "shopping_session_id", "")

    pre_rejected: dict[int, EventResult] = {}
    passed: list[Any] = []
    positions: list[int] = []
    for index, event in enumerate(events):
        if isinstance(event, dict):
            if event.get("customer") not in (None, customer):
                pre_rejected[index] = EventResult(
                    index, str(event.get("event_id"))[:64], "rejected", {"customer": BROWSER_CUSTOMER_ERROR}
                )
                continue
            event = dict(event)
            if customer:
                event["customer"] = customer
            if visitor_id and not event.get("visitor_id"):
                event["visitor_id"] = visitor_id
            if session_id and not event.get("session_id"):
                event["session_id"] = session_id
        passed.append(event)
        positions.append(index)

    recorded = events_record(events=passed)
    if not pre_rejected:
        return recorded
    results = list(pre_rejected.values())
    for position, r in zip(positions, recorded.results, strict=True):
        results.append(EventResult(position, r.event_id, r.status, r.errors))
    results.sort(key=lambda r: r.index)
    return EventsRecordResult(
        accepted=recorded.accepted,
        duplicates=recorded.duplicates,
        rejected=recorded.rejected + len(pre_rejected),
        results=tuple(results),
    )


def _session_customer(request: Request) -> str | None:
    user = request.user
    if not user or not user.is_authenticated:
        return None
    linked = getattr(user, "customer", None)  # reverse one-to-one: None when the user has no Customer
    return linked.external_id if linked is not None else None


def _error(message: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"error": message, "detail": message}, status=code)


class HealthView(APIView):
    """Liveness and readiness: one `SELECT 1` and one cache read. The cheapest endpoint on purpose."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="health",
        summary="Database and cache reachable",
        responses={
            200: HealthSerializer,
            503: OpenApiResponse(HealthSerializer, description="The database or the cache is unreachable."),
        },
        auth=[],
        tags=["health"],
    )
    def get(self, request: Request) -> Response:
        database = _database_ok()
        cache_ok = _cache_ok()
        healthy = database and cache_ok
        return Response(
            {"status": "ok" if healthy else "degraded", "database": database, "cache": cache_ok},
            status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:  # any driver error means "not reachable" to a health check
        logger.warning("health: database check failed", exc_info=True)
        return False


def _cache_ok() -> bool:
    try:
        cache.get("recsite:health")
        return True
    except Exception:  # redis-py raises ConnectionError/TimeoutError; others are as bad for a probe
        logger.warning("health: cache check failed", exc_info=True)
        return False
