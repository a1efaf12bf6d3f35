"""Shopper identity writes: who is acting (Shopper), sign-up, linking a visitor cookie to a customer,
privacy and profile choices."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from catalog.models import Customer, Event, Visitor

logger = logging.getLogger(__name__)

WEB_CUSTOMER_PREFIX = "web-"


@dataclass(frozen=True)
class Shopper:
    """Who performs a storefront action: the visitor cookie, the shopping session and, when logged
    in, the customer. `context` is the event context (page, device, referrer)."""

    visitor_id: str
    session_id: str = ""
    customer: Customer | None = None
    context: dict[str, Any] = field(default_factory=dict)

    def event_fields(self) -> dict[str, Any]:
        """The identity fields of an event for `catalog.services.events_record`."""
        fields: dict[str, Any] = {"visitor_id": self.visitor_id, "session_id": self.session_id}
        if self.customer is not None:
            fields["customer"] = self.customer.external_id
        if self.context:
            fields["context"] = dict(self.context)
        return fields


def device_from_user_agent(user_agent: str) -> str:
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua:
        return "tablet"
    if "mobi" in ua or "android" in ua or "iphone" in ua:
        return "mobile"
    return "desktop" if ua else ""


def shopper_from_request(request: HttpRequest, *, customer: Customer | None = None) -> Shopper:
    """The Shopper for a storefront request (ids set by catalog.middleware.VisitorMiddleware)."""
    if customer is None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            customer = Customer.objects.filter(user=user).first()
    context = {
        "page": request.path[:200],
        "device": device_from_user_agent(request.headers.get("User-Agent", "")),
        "referrer": request.headers.get("Referer", "")[:300],
        "source": "server",
    }
    return Shopper(
        visitor_id=getattr(request, "visitor_id", ""),
        session_id=getattr(request, "shopping_session_id", ""),
        customer=customer,
        context=context,
    )


@transaction.atomic
def customer_register(
    *,
    username: str,
    email: str,
    password: str,
    age_band: str = "",
    gender: str = "",
    region: str = "",
    consent: str = Customer.Consent.BASIC,
):
    """Create the auth user and its linked Customer together. Returns the Customer.

    Inputs are assumed validated (the sign-up form checks uniqueness and password strength).
    """
    user = get_user_model().objects.create_user(username=username, email=email, password=password)
    return Customer.objects.create(
        external_id=f"{WEB_CUSTOMER_PREFIX}{user.pk}",
        user=user,
        age_band=age_band,
        gender=gender,
        region=region.strip(),
        consent=consent,
    )


def customer_ensure_for_user(*, user) -> Customer:
    """The user's Customer, created (consent: basic) for accounts made outside the sign-up page."""
    customer = Customer.objects.filter(user=user).first()
    if customer is not None:
        return customer
    customer, _ = Customer.objects.get_or_create(
        external_id=f"{WEB_CUSTOMER_PREFIX}{user.pk}", defaults={"user": user}
    )
    if customer.user_id != user.pk:  # an imported customer took that id without a user: link it
        customer.user = user
        customer.save(update_fields=["user"])
    return customer


@transaction.atomic
def visitor_link(*, visitor_id: str, customer: Customer) -> int:
    """Link the browser's visitor id to `customer` and attribute that visitor's anonymous events to
    the customer (what they did before logging in is theirs). Returns how many events were attributed."""
    if not visitor_id:
        return 0
    Visitor.objects.update_or_create(id=visitor_id, defaults={"customer": customer})
    return Event.objects.filter(visitor_id=visitor_id, customer__isnull=True).update(customer=customer)


def customer_profile_update(
    *, customer: Customer, age_band: str, gender: str, region: str, consent: str
) -> Customer:
    customer.age_band = age_band
    customer.gender = gender
    customer.region = region.strip()
    customer.consent = consent
    customer.save(update_fields=["age_band", "gender", "region", "consent"])
    logger.info("customer %s privacy/profile updated (consent=%s)", customer.external_id, consent)
    return customer
