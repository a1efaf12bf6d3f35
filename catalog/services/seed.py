"""Catalog-only helpers of the demo shop: is there data, delete it, demo logins (`manage.py demo_admin`).

The simulator-driven seeder itself is `experiments.seeding` (`manage.py seed_demo`): catalog never imports
experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models.deletion import ProtectedError, RestrictedError

from catalog.models import (
    Brand,
    Category,
    Customer,
    Event,
    Order,
    OrderLine,
    Product,
    ShoppingSession,
    Visitor,
)


def demo_data_present() -> bool:
    """True when the catalog already holds products or customers (seeded or entered by hand)."""
    return Product.objects.exists() or Customer.objects.exists()


def demo_data_delete() -> dict[str, int]:
    """Delete catalog and behaviour data: order lines, orders, events, sessions, visitors, customers,
    products (their impressions cascade), brands, categories. Auth users are kept.

    Raises ValueError when another app's rows protect a product (nothing is deleted then, as the
    caller's transaction rolls back)."""
    deleted: dict[str, int] = {}
    try:
        for model in (OrderLine, Order, Event, ShoppingSession, Visitor, Customer, Product, Brand, Category):
            count, _ = model.objects.all().delete()
            deleted[model._meta.verbose_name_plural] = count
    except (ProtectedError, RestrictedError) as exc:
        names = sorted(
            {obj._meta.label for obj in exc.protected_objects}
            if hasattr(exc, "protected_objects")
            else {obj._meta.label for obj in exc.restricted_objects}
        )
        raise ValueError(f"cannot reset: rows in {', '.join(names)} still reference catalog data") from exc
    return deleted


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    customer: str = ""  # external id of the linked customer ("" for the admin)
    orders: int = 0
    events: int = 0


@transaction.atomic
def demo_logins_create(*, shoppers: int = 2) -> tuple[DemoLogin, list[DemoLogin]]:
    """Create (or reset) the superuser `admin` and up to `shoppers` demo shopper users, each with a
    fresh random password. Shopper users `shopper1..N` are linked to the seeded customers with the most
    orders (personalization allowed, not linked to anyone else), so logging in shows a real history.
    Returns (admin login, shopper logins); the shopper list is short or empty when there are too few
    such customers."""
    import secrets

    from django.contrib.auth import get_user_model
    from django.db.models import Count, Q

    if not 0 <= shoppers <= 3:
        raise ValueError(f"shoppers must be 0 to 3 (got {shoppers})")
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
    admin_password = secrets.token_urlsafe(12)
    admin.set_password(admin_password)
    admin.is_staff = admin.is_superuser = admin.is_active = True
    admin.save()

    usernames = [f"shopper{i}" for i in range(1, shoppers + 1)]
    existing = {u.username: u for u in User.objects.filter(username__in=usernames)}
    candidates = list(
        Customer.objects.exclude(consent=Customer.Consent.NONE)
        .filter(Q(user__isnull=True) | Q(user__username__in=usernames))
        .annotate(n_orders=Count("orders"))
        .filter(n_orders__gt=0)
        .order_by("-n_orders", "external_id")[:shoppers]
    )
    logins: list[DemoLogin] = []
    for username, customer in zip(usernames, candidates):
        user = existing.get(username) or User.objects.create(
            username=username, email=f"{username}@example.com"
        )
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_active = True
        user.save()
        Customer.objects.filter(user=user).exclude(pk=customer.pk).update(user=None)
        if customer.user_id != user.pk:
            customer.user = user
            customer.save(update_fields=["user"])
        logins.append(
            DemoLogin(
                username=username,
                password=password,
                customer=customer.external_id,
                orders=customer.n_orders,
                events=Event.objects.filter(customer=customer).count(),
            )
        )
    return DemoLogin(username="admin", password=admin_password), logins
