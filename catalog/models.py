"""Catalog (categories, brands, products), shoppers (customers, visitors, sessions), events, orders."""

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Category(models.Model):
    """A node in the category tree (parent is null for a root)."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=140, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    description = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name_per_parent"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="category_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name

    def ancestors(self) -> list["Category"]:
        """Root first, self last."""
        chain, node, seen = [], self, set()
        while node is not None and node.pk not in seen:
            seen.add(node.pk)
            chain.append(node)
            node = node.parent
        return list(reversed(chain))


class Brand(models.Model):
    class PriceTier(models.TextChoices):
        BUDGET = "budget", "Budget"
        MID = "mid", "Mid-range"
        PREMIUM = "premium", "Premium"

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=140, unique=True)
    price_tier = models.CharField(max_length=10, choices=PriceTier.choices, default=PriceTier.MID)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=255)
    slug = models.SlugField(max_length=280)
    description = models.TextField(blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    price = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="USD")
    stock = models.PositiveIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True)
    image = models.CharField(
        max_length=255, blank=True, help_text="Image URL; empty means the generated SVG placeholder."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["category", "is_active"]),
            models.Index(fields=["brand", "is_active"]),
            models.Index(fields=["price"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.sku})"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("catalog:product", args=[self.pk])

    @property
    def image_url(self) -> str:
        from django.urls import reverse

        return self.image or reverse("catalog:product_image", args=[self.pk])

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


class Customer(models.Model):
    """A known shopper. `external_id` is the shop's own id (used by the API and imports)."""

    class AgeBand(models.TextChoices):
        UNKNOWN = "", "Unknown"
        A18 = "18-24", "18-24"
        A25 = "25-34", "25-34"
        A35 = "35-44", "35-44"
        A45 = "45-54", "45-54"
        A55 = "55+", "55+"

    class Gender(models.TextChoices):
        UNKNOWN = "", "Unknown"
        FEMALE = "f", "Female"
        MALE = "m", "Male"
        OTHER = "x", "Other"

    class Consent(models.TextChoices):
        NONE = "none", "No personalization"
        BASIC = "basic", "Basic (on-site behaviour)"
        FULL = "full", "Full (behaviour and demographics)"

    external_id = models.CharField(max_length=64, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="customer"
    )
    age_band = models.CharField(max_length=8, choices=AgeBand.choices, blank=True, default="")
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True, default="")
    region = models.CharField(max_length=64, blank=True, default="")
    consent = models.CharField(max_length=8, choices=Consent.choices, default=Consent.BASIC)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["age_band", "gender", "region"])]

    def __str__(self) -> str:
        return self.external_id

    @property
    def personalization_allowed(self) -> bool:
        return self.consent != self.Consent.NONE


class Visitor(models.Model):
    """An anonymous browser, identified by the `rs_vid` cookie; linked to a customer on login."""

    id = models.CharField(primary_key=True, max_length=64)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="visitors"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.id


class ShoppingSession(models.Model):
    """A visit: a run of activity by one visitor (30 minutes of inactivity ends it)."""

    id = models.CharField(primary_key=True, max_length=64)
    visitor = models.ForeignKey(
        Visitor, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    started_at = models.DateTimeField(db_index=True)
    last_seen = models.DateTimeField()
    device = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(last_seen__gte=models.F("started_at")), name="session_time_order"
            ),
        ]

    def __str__(self) -> str:
        return self.id


class Event(models.Model):
    class Type(models.TextChoices):
        VIEW = "view", "View"
        CLICK = "click", "Click"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        REMOVE_FROM_CART = "remove_from_cart", "Remove from cart"
        PURCHASE = "purchase", "Purchase"
        SEARCH = "search", "Search"
        RATE = "rate", "Rate"
        DWELL = "dwell", "Dwell"

    # Which types need a product (search does not).
    PRODUCT_TYPES = frozenset(
        {"view", "click", "add_to_cart", "remove_from_cart", "purchase", "rate", "dwell"}
    )

    event_id = models.UUIDField(
        unique=True, default=uuid.uuid4, help_text="Client-supplied id; makes re-sends idempotent."
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    session_id = models.CharField(max_length=64, blank=True, default="")
    timestamp = models.DateTimeField()
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    dwell_ms = models.PositiveIntegerField(null=True, blank=True)
    query = models.CharField(max_length=255, blank=True, default="")
    rating = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(5)])
    impression_id = models.UUIDField(null=True, blank=True, db_index=True)
    context = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(fields=["customer", "timestamp"]),
            models.Index(fields=["visitor_id", "timestamp"]),
            models.Index(fields=["session_id", "timestamp"]),
            models.Index(fields=["product", "type"]),
            models.Index(fields=["type", "timestamp"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(type="search") | Q(product__isnull=False),
                name="event_product_required_unless_search",
            ),
            models.CheckConstraint(
                condition=Q(customer__isnull=False) | ~Q(visitor_id=""), name="event_has_customer_or_visitor"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | (Q(rating__gte=0) & Q(rating__lte=5)),
                name="event_rating_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.product_id or self.query} @ {self.timestamp:%Y-%m-%d %H:%M}"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", "Placed"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    visitor_id = models.CharField(max_length=64, blank=True, default="")
    session_id = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PLACED)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, default="USD")
    email = models.EmailField(blank=True, default="")
    name = models.CharField(max_length=120, blank=True, default="", help_text="Name given at checkout.")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["customer", "created_at"])]
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="order_total_non_negative")]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    impression_id = models.UUIDField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="orderline_unique_product_per_order"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orderline_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id} in order {self.order_id}"

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity
