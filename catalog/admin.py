"""Admin for the catalog: products and their tree, shoppers (with their event timeline), events, orders.

Every changelist joins what it shows (list_select_related / annotations), so a page costs a fixed number
of queries however many rows it lists. Big tables (events) skip the full COUNT(*) and are view-only.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .models import Brand, Category, Customer, Event, Order, OrderLine, Product, ShoppingSession, Visitor

TIMELINE_LIMIT = 50
ORDERS_LIMIT = 20
LOW_STOCK = 5


def _link(model: str, pk: Any, text: Any) -> SafeString:
    return format_html('<a href="{}">{}</a>', reverse(f"admin:catalog_{model}_change", args=[pk]), text)


# --- catalog ---


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent", "product_count"]
    list_select_related = ["parent"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "slug"]
    autocomplete_fields = ["parent"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        return super().get_queryset(request).annotate(n_products=Count("products"))

    @admin.display(description="products", ordering="n_products")
    def product_count(self, obj: Category) -> int:
        return obj.n_products


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price_tier", "product_count"]
    list_filter = ["price_tier"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Brand]:
        return super().get_queryset(request).annotate(n_products=Count("products"))

    @admin.display(description="products", ordering="n_products")
    def product_count(self, obj: Brand) -> int:
        return obj.n_products


class StockFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock_level"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("out", "Out of stock"), ("low", f"Low (1-{LOW_STOCK})"), ("in", f"In stock (> {LOW_STOCK})")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        if self.value() == "out":
            return queryset.filter(stock=0)
        if self.value() == "low":
            return queryset.filter(stock__gte=1, stock__lte=LOW_STOCK)
        if self.value() == "in":
            return queryset.filter(stock__gt=LOW_STOCK)
        return queryset


class PriceBandFilter(admin.SimpleListFilter):
    title = "price"
    parameter_name = "price_band"
    BANDS = [("0-25", 0, 25), ("25-100", 25, 100), ("100-500", 100, 500), ("500-", 500, None)]

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, f"{low}+" if high is None else f"{low} to {high}") for key, low, high in self.BANDS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        for key, low, high in self.BANDS:
            if self.value() == key:
                queryset = queryset.filter(price__gte=Decimal(low))
                return queryset if high is None else queryset.filter(price__lt=Decimal(high))
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "sku",
        "title",
        "category",
        "brand",
        "price",
        "currency",
        "stock",
        "is_active",
        "created_at",
    ]
    list_display_links = ["sku", "title"]
    list_editable = ["price", "stock", "is_active"]
    list_select_related = ["category", "brand"]
    list_filter = ["is_active", StockFilter, PriceBandFilter, "category", "brand", "currency"]
    search_fields = ["=sku", "title"]
    autocomplete_fields = ["category", "brand"]
    prepopulated_fields = {"slug": ["title"]}
    readonly_fields = ["created_at", "image_preview"]
    date_hierarchy = "created_at"
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["sku", "title", "slug", "category", "brand", "is_active"]}),
        ("Price and stock", {"fields": ["price", "currency", "stock"]}),
        ("Content", {"fields": ["description", "attributes", "image", "image_preview"]}),
        ("History", {"fields": ["created_at"]}),
    ]

    @admin.display(description="image")
    def image_preview(self, obj: Product) -> str:
        if not obj.pk:
            return "-"
        return format_html('<img src="{}" alt="" style="max-height:120px">', obj.image_url)

    @admin.action(description="Activate selected products", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        n = queryset.update(is_active=True)
        self.message_user(request, f"{n} product(s) activated.", messages.SUCCESS)

    @admin.action(
        description="Deactivate selected products (hidden from the shop and recommendations)",
        permissions=["change"],
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        n = queryset.update(is_active=False)
        self.message_user(request, f"{n} product(s) deactivated.", messages.SUCCESS)


# --- shoppers ---


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["external_id", "user", "age_band", "gender", "region", "consent", "created_at"]
    list_select_related = ["user"]
    list_filter = ["consent", "age_band", "gender", "region"]
    search_fields = ["=external_id", "user__username", "user__email"]
    autocomplete_fields = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "activity_summary", "event_timeline", "recent_orders", "visitor_ids"]
    fieldsets = [
        (None, {"fields": ["external_id", "user", "consent", "created_at"]}),
        ("Demographics", {"fields": ["age_band", "gender", "region"]}),
        ("Activity", {"fields": ["activity_summary", "event_timeline", "recent_orders", "visitor_ids"]}),
    ]

    def _events(self, obj: Customer) -> QuerySet[Event]:
        """The customer's events, and those of their browsers before they logged in."""
        visitors = list(obj.visitors.values_list("id", flat=True))
        condition = Q(customer=obj) | Q(visitor_id__in=visitors) if visitors else Q(customer=obj)
        return Event.objects.filter(condition)

    @admin.display(description="events by type")
    def activity_summary(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        counts = self._events(obj).order_by().values("type").annotate(n=Count("id")).order_by("-n")
        if not counts:
            return "No events yet."
        summary = ", ".join(f"{row['type']}: {row['n']}" for row in counts)
        url = reverse("admin:catalog_event_changelist") + f"?customer__exact={obj.pk}"
        return format_html('{} (<a href="{}">all of this customer\'s events</a>)', summary, url)

    @admin.display(description=f"event timeline (latest {TIMELINE_LIMIT}, newest first)")
    def event_timeline(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        events = list(
            self._events(obj)
            .select_related("product")
            .only(
                "id",
                "type",
                "timestamp",
                "session_id",
                "query",
                "quantity",
                "value",
                "dwell_ms",
                "rating",
                "impression_id",
                "product__id",
                "product__title",
                "product__sku",
            )
            .order_by("-timestamp", "-id")[:TIMELINE_LIMIT]
        )
        if not events:
            return "No events yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _link("event", e.pk, f"{e.timestamp:%Y-%m-%d %H:%M:%S}"),
                    e.get_type_display(),
                    _link("product", e.product_id, e.product.title) if e.product_id else e.query or "-",
                    _event_detail(e),
                    "yes" if e.impression_id else "",
                    e.session_id[:12],
                )
                for e in events
            ),
        )
        return format_html(
            '<table class="rs-timeline"><thead><tr><th>when</th><th>type</th><th>product / query</th>'
            "<th>detail</th><th>from a recommendation</th><th>session</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description=f"orders (latest {ORDERS_LIMIT})")
    def recent_orders(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        orders = list(obj.orders.annotate(n_lines=Count("lines")).order_by("-created_at")[:ORDERS_LIMIT])
        if not orders:
            return "No orders."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            (
                (
                    _link("order", o.pk, f"#{o.pk}"),
                    f"{o.created_at:%Y-%m-%d %H:%M}",
                    o.get_status_display(),
                    o.total,
                    o.currency,
                    o.n_lines,
                )
                for o in orders
            ),
        )
        return format_html(
            "<table><thead><tr><th>order</th><th>placed</th><th>status</th><th>total</th><th>lines</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="browsers (visitor ids)")
    def visitor_ids(self, obj: Customer) -> str:
        if not obj.pk:
            return "-"
        ids = list(obj.visitors.values_list("id", flat=True)[:20])
        return ", ".join(ids) or "None linked."


def _event_detail(e: Event) -> str:
    parts = []
    if e.quantity != 1:
        parts.append(f"qty {e.quantity}")
    if e.value is not None:
        parts.append(f"value {e.value}")
    if e.dwell_ms is not None:
        parts.append(f"{e.dwell_ms / 1000:.1f} s")
    if e.rating is not None:
        parts.append(f"rating {e.rating:g}")
    return ", ".join(parts)


@admin.register(Visitor)
class VisitorAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "created_at", "last_seen"]
    list_select_related = ["customer"]
    search_fields = ["=id", "customer__external_id"]
    raw_id_fields = ["customer"]
    readonly_fields = ["created_at", "last_seen"]
    date_hierarchy = "last_seen"
    show_full_result_count = False


@admin.register(ShoppingSession)
class ShoppingSessionAdmin(admin.ModelAdmin):
    list_display = ["id", "visitor", "customer", "started_at", "last_seen", "device"]
    list_select_related = ["visitor", "customer"]
    list_filter = ["device"]
    search_fields = ["=id", "=visitor__id", "customer__external_id"]
    raw_id_fields = ["visitor", "customer"]
    date_hierarchy = "started_at"
    show_full_result_count = False


# --- events (read-mostly: they are facts; delete is allowed for clean-up and privacy requests) ---


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "timestamp",
        "type",
        "product",
        "customer",
        "visitor_id",
        "session_id",
        "quantity",
        "value",
        "from_recommendation",
    ]
    list_select_related = ["product", "customer"]
    list_filter = ["type", "timestamp", ("impression_id", admin.EmptyFieldListFilter)]
    search_fields = [
        "=event_id",
        "=visitor_id",
        "=session_id",
        "=customer__external_id",
        "=product__sku",
        "query",
    ]
    date_hierarchy = "timestamp"
    raw_id_fields = ["product", "customer"]
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-timestamp", "-id"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Event | None = None) -> bool:
        return False  # the change page still shows (read-only) for users with view permission

    @admin.display(description="from a recommendation", boolean=True)
    def from_recommendation(self, obj: Event) -> bool:
        return obj.impression_id is not None

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        # "=event_id" is a UUID column: a term that is not a UUID cannot match it (and must not reach it).
        term = request.GET.get("q", "").strip()
        try:
            uuid.UUID(term)
        except ValueError:
            return [f for f in self.search_fields if f != "=event_id"]
        return list(self.search_fields)


# --- orders ---


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    fields = ["product", "quantity", "unit_price", "line_total", "impression_id"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OrderLine]:
        return super().get_queryset(request).select_related("product")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "customer", "status", "total", "currency", "line_count", "email"]
    list_select_related = ["customer"]
    list_filter = ["status", "currency", "created_at"]
    search_fields = ["=id", "=customer__external_id", "email", "=visitor_id"]
    raw_id_fields = ["customer"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = ["total", "currency", "created_at", "visitor_id", "session_id"]
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return super().get_queryset(request).annotate(n_lines=Count("lines"))

    @admin.display(description="lines", ordering="n_lines")
    def line_count(self, obj: Order) -> int:
        return obj.n_lines


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ["id", "order", "product", "quantity", "unit_price", "line_total", "impression_id"]
    list_select_related = ["order", "product"]
    search_fields = ["=order__id", "=product__sku", "product__title"]
    raw_id_fields = ["order", "product"]
    list_filter = [("impression_id", admin.EmptyFieldListFilter)]
    show_full_result_count = False
