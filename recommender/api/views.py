"""REST: `GET /api/v1/recommendations/<widget_slug>`. A thin adapter over recommender.serving."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.models import Customer, Product
from catalog.selectors import customer_for_user_get, customer_get
from recsite.api import PUBLIC_AUTHENTICATION, ClientRateThrottle, StorefrontOrAPIKey, is_api_key_request

from .. import serving
from ..views import BadRequest, parse_id_list, parse_k
from .serializers import ApiErrorSerializer, RecommendationsResponseSerializer

logger = logging.getLogger(__name__)

BROWSER_CUSTOMER_ERROR = (
    "Browser requests cannot choose the customer; it comes from the login session. "
    "Server clients: send 'Authorization: Api-Key <key>'."
)


class BadParameter(APIException):
    status_code = 400
    default_code = "bad_parameter"
    default_detail = "Bad query parameter."


class RecommendationsRateThrottle(ClientRateThrottle):
    """Per-client rate limit; fails open (with a warning) when the cache that counts requests is down, so
    an outage of Redis degrades rate limiting, not recommendations.

    On Redis it is a fixed-window counter: one pipelined INCR + EXPIRE round trip per request, constant
    size. (DRF's default keeps a list of every request time in the window and reads and rewrites it on
    each request: two round trips, a payload that grows with the rate, and lost updates between
    concurrent workers.) A client may get up to twice the rate across a window boundary. Other cache
    backends (the local-memory cache of tests and `runserver`) use DRF's sliding window.
    """

    scope = "recommendations"
    _window_end: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            client = _redis_client(self.cache)
            if client is None or self.rate is None:
                return super().allow_request(request, view)
            key = self.get_cache_key(request, view)
            if key is None:
                return True
            window = int(self.timer() // self.duration)
            self._window_end = float((window + 1) * self.duration)
            full_key = self.cache.make_and_validate_key(f"{key}:w{window}")
            pipe = client.pipeline(transaction=False)
            pipe.incr(full_key)
            pipe.expire(full_key, int(self.duration) + 1)
            count = pipe.execute()[0]
            return int(count) <= self.num_requests
        except Exception:
            logger.warning("throttle cache unavailable; allowing the request", exc_info=True)
            return True

    def wait(self) -> float | None:
        if self._window_end is not None:
            return max(0.0, self._window_end - self.timer())
        return super().wait()


def _redis_client(cache: Any) -> Any:
    """The redis-py client behind Django's RedisCache (None for other backends)."""
    from django.core.cache.backends.redis import RedisCacheClient

    inner = getattr(cache, "_cache", None)
    return inner.get_client(write=True) if isinstance(inner, RedisCacheClient) else None


def _customer_of(request: Request) -> Customer | None:
    return customer_for_user_get(user=request.user)


class RecommendationsView(APIView):
    authentication_classes = PUBLIC_AUTHENTICATION
    permission_classes = [StorefrontOrAPIKey]
    throttle_classes = [RecommendationsRateThrottle]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="recommendations_get",
        summary="Recommendations of a widget for a shopper",
        description=(
            "Runs the widget's strategy (batch-precomputed or live candidates), its business rules and "
            "fallbacks, logs one impression per item and returns the items with reason labels and "
            "impression ids. Browser requests use the logged-in customer and the rs_vid visitor cookie; "
            "API-key clients name the shopper with `customer` (the shop's customer id) and/or `visitor`."
        ),
        parameters=[
            OpenApiParameter(
                "widget_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="Widget slug."
            ),
            OpenApiParameter(
                "customer", OpenApiTypes.STR, description="Customer external id (API keys only)."
            ),
            OpenApiParameter(
                "visitor", OpenApiTypes.STR, description="Anonymous visitor id (rs_vid cookie)."
            ),
            OpenApiParameter(
                "product",
                OpenApiTypes.INT,
                description="Product being viewed (similar items, bought together).",
            ),
            OpenApiParameter(
                "k", OpenApiTypes.INT, description="Number of items, 1-100 (default: the widget's)."
            ),
            OpenApiParameter(
                "session_items",
                OpenApiTypes.STR,
                description="Comma-separated product ids seen in this session or in the cart (at most 50).",
            ),
        ],
        responses={
            200: RecommendationsResponseSerializer,
            400: OpenApiResponse(ApiErrorSerializer, description="Bad k, product or session_items."),
            403: OpenApiResponse(ApiErrorSerializer, description="A browser request named a customer."),
            404: OpenApiResponse(
                ApiErrorSerializer, description="Unknown or disabled widget, customer or product."
            ),
            429: OpenApiResponse(ApiErrorSerializer, description="Throttled."),
        },
        examples=[
            OpenApiExample(
                "Two items",
                response_only=True,
                value={
                    "widget": "home-personalized",
                    "title": "Recommended for you",
                    "request_id": "8c6f0d5e-3a1b-4f3e-9d2a-7b6c5d4e3f21",
                    "items": [
                        {
                            "product_id": 42,
                            "sku": "SKU-00042",
                            "title": "Trail running shoe",
                            "price": "89.00",
                            "currency": "USD",
                            "url": "/products/42/",
                            "image": "/products/42/image.svg",
                            "score": 0.83,
                            "reason": "Because you viewed Hiking socks",
                            "impression_id": "0b7e9f2c-1d3a-4c5b-8e6f-9a0b1c2d3e4f",
                            "engine": "ease",
                            "position": 0,
                        }
                    ],
                },
            )
        ],
        tags=["recommendations"],
    )
    def get(self, request: Request, widget_slug: str) -> Response:
        widget = serving.widget_enabled_get(widget_slug)
        if widget is None:
            raise NotFound(f"No enabled widget {widget_slug!r}.")
        params = request.query_params
        unknown = sorted(set(params) - {"customer", "visitor", "product", "k", "session_items", "format"})
        if unknown:
            raise BadParameter(f"Unknown parameter(s): {', '.join(unknown)}.")
        try:
            k = parse_k(params.get("k"))
            session_items = parse_id_list(params.get("session_items"))
            product_ids = parse_id_list(params.get("product"), name="product")
        except BadRequest as exc:
            raise BadParameter(str(exc)) from None
        api_key = is_api_key_request(request)
        customer = None
        external_id = params.get("customer", "")
        if external_id:
            if not api_key:
                raise PermissionDenied(BROWSER_CUSTOMER_ERROR)
            customer = customer_get(external_id=external_id)
            if customer is None:
                raise NotFound(f"Unknown customer {external_id!r}.")
        elif not api_key:
            customer = _customer_of(request)
        visitor = params.get("visitor", "") or (
            "" if api_key else getattr(request._request, "visitor_id", "")
        )
        if visitor and (len(visitor) > 64 or not all(c.isalnum() or c in "-_" for c in visitor)):
            raise BadParameter("visitor must be 1-64 letters, digits, '-' or '_'.")
        if len(product_ids) > 1:
            raise BadParameter("product takes one product id.")
        # Existence checked through serving's product-attributes memo: no query for known products, and
        # the attributes are then at hand for the rules and reason labels.
        known = serving.product_attrs_load([*product_ids, *session_items])
        product = None
        if product_ids:
            if product_ids[0] not in known:
                raise NotFound(f"Unknown product {product_ids[0]}.")
            # serving reads only the product's pk; a pk-only instance saves fetching the whole row.
            product = Product(pk=product_ids[0])
        if session_items:
            missing = [p for p in session_items if p not in known]
            if missing:
                raise NotFound(f"Unknown product(s) in session_items: {', '.join(map(str, missing))}.")
        request_id = uuid.uuid4()
        attrs: dict[int, serving.ProductAttrs] = {}
        recs = serving.recommendations_get(
            widget=widget,
            customer=customer,
            visitor=visitor or None,
            product=product,
            session_items=session_items,
            k=k,
            request_id=request_id,
            attrs_out=attrs,
        )
        return Response(
            {
                "widget": widget.slug,
                "title": widget.title,
                "request_id": str(request_id),
                "items": items_render(recs, attrs),
            }
        )


def items_render(
    recs: list[serving.Recommendation], attrs: dict[int, Any] | None = None
) -> list[dict[str, Any]]:
    """Recommendations -> JSON items with the product fields a client renders (from `attrs`, the
    attributes serving already loaded; one query for any that are missing)."""
    attrs = dict(attrs or {})
    missing = [r.product_id for r in recs if r.product_id not in attrs]
    if missing:
        attrs.update(serving.product_attrs_load(missing))
    detail = reverse("catalog:product", args=[0])
    image = reverse("catalog:product_image", args=[0])
    items = []
    for rec in recs:
        row = attrs.get(rec.product_id)
        if row is None:
            continue
        pk = str(rec.product_id)
        items.append(
            {
                "product_id": rec.product_id,
                "sku": row.sku,
                "title": row.title,
                "price": f"{row.price:.2f}",
                "currency": row.currency,
                "url": detail.replace("/0/", f"/{pk}/", 1),
                "image": row.image or image.replace("/0/", f"/{pk}/", 1),
                "score": round(rec.score, 6),
                "reason": rec.reason,
                "impression_id": str(rec.impression_id) if rec.impression_id else None,
                "engine": rec.engine,
                "position": rec.position,
            }
        )
    return items
