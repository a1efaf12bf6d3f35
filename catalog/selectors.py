"""Catalog reads for the storefront: category tree, product listings (filters, sort, search),
popularity, carts, orders and recently viewed products.

Selectors never write and never raise Http404; views decide what a missing object means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from django.core.cache import cache
from django.db.models import Case, Count, IntegerField, Max, Min, Q, QuerySet, Value, When
from django.utils import timezone

from .event_weights import POPULARITY_WEIGHTS
from .models import Brand, Category, Customer, Event, Order, Product

CATEGORY_TREE_CACHE_KEY = "catalog:category-tree:v1"
CATEGORY_TREE_TTL = 300
POPULARITY_CACHE_KEY = "catalog:popularity:v2"
POPULARITY_TTL = 600
POPULARITY_WINDOW_DAYS = 30

SortKey = Literal["relevance", "popular", "newest", "price_asc", "price_desc"]
SORT_CHOICES: tuple[tuple[str, str], ...] = (
    ("relevance", "Relevance"),
    ("popular", "Most popular"),
    ("newest", "Newest"),
    ("price_asc", "Price: low to high"),
    ("price_desc", "Price: high to low"),
)


# --- category tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryNode:
    id: int
    name: str
    slug: str
    parent_id: int | None
    children: tuple[int, ...]


@dataclass(frozen=True)
class CategoryTree:
    """The whole category tree, loaded once (it is small) and cached."""

    nodes: Mapping[int, CategoryNode]
    roots: tuple[int, ...]

    def descendant_ids(self, category_id: int) -> list[int]:
        """`category_id` and every category below it (cycle-safe)."""
        out, stack, seen = [], [category_id], set()
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            seen.add(cid)
            out.append(cid)
            if cid in self.nodes:
                stack.extend(self.nodes[cid].children)
        return out

    def children_of(self, category_id: int | None) -> list[CategoryNode]:
        if category_id is not None and category_id not in self.nodes:
            return []
        ids = self.roots if category_id is None else self.nodes[category_id].children
        return sorted((self.nodes[i] for i in ids), key=lambda n: n.name.lower())


def category_menu_get(*, min_items: int = 4, max_items: int = 12) -> list[CategoryNode]:
    """Categories for the top menu and the home tiles: the roots, or, when a shop has only a few roots
    (e.g. "Electronics" and "Home Appliances"), their children, so the menu is useful."""
    tree = category_tree_get()
    roots = tree.children_of(None)
    if len(roots) >= min_items:
        return roots[:max_items]
    children = [child for root in roots for child in tree.children_of(root.id)]
    return (children or roots)[:max_items]


def category_tree_get(*, must_include: int | None = None) -> CategoryTree:
    """The cached tree; reloaded when `must_include` (a category id) is missing from the cached copy
    (a category created in the last few minutes)."""
    tree = cache.get(CATEGORY_TREE_CACHE_KEY)
    if isinstance(tree, CategoryTree) and (must_include is None or must_include in tree.nodes):
        return tree
    rows = list(Category.objects.values_list("id", "name", "slug", "parent_id"))
    children: dict[int, list[int]] = {r[0]: [] for r in rows}
    roots = []
    for cid, _name, _slug, parent_id in rows:
        if parent_id is None or parent_id not in children:
            roots.append(cid)
        else:
            children[parent_id].append(cid)
    nodes = {
        cid: CategoryNode(cid, name, slug, parent_id, tuple(children[cid]))
        for cid, name, slug, parent_id in rows
    }
    tree = CategoryTree(nodes=nodes, roots=tuple(sorted(roots, key=lambda i: nodes[i].name.lower())))
    cache.set(CATEGORY_TREE_CACHE_KEY, tree, CATEGORY_TREE_TTL)
    return tree


def category_get(*, slug: str) -> Category | None:
    return Category.objects.select_related("parent").filter(slug=slug).first()


# --- product listings ----------------------------------------------------------------------------


def products_active() -> QuerySet[Product]:
    return Product.objects.filter(is_active=True).select_related("category", "brand")


def product_get(*, pk: int) -> Product | None:
    """An active product with its category and brand, or None."""
    return products_active().filter(pk=pk).first()


def products_filter(
    *,
    category: Category | None = None,
    query: str = "",
    brand_slugs: Sequence[str] = (),
    price_min: Decimal | None = None,
    price_max: Decimal | None = None,
    in_stock_only: bool = False,
) -> QuerySet[Product]:
    """Active products in `category` (and its subcategories) matching every given filter.

    `query` is a keyword search: every word must appear in the title, description, brand or category
    name (case-insensitive). Semantic search replaces this later.
    """
    qs = products_active()
    if category is not None:
        qs = qs.filter(
            category_id__in=category_tree_get(must_include=category.pk).descendant_ids(category.pk)
        )
    for word in query.split()[:10]:
        qs = qs.filter(
            Q(title__icontains=word)
            | Q(description__icontains=word)
            | Q(brand__name__icontains=word)
            | Q(category__name__icontains=word)
        )
    if brand_slugs:
        qs = qs.filter(brand__slug__in=list(brand_slugs))
    if price_min is not None:
        qs = qs.filter(price__gte=price_min)
    if price_max is not None:
        qs = qs.filter(price__lte=price_max)
    if in_stock_only:
        qs = qs.filter(stock__gt=0)
    return qs


def products_sort(
    *, products: QuerySet[Product], sort: SortKey, query: str = ""
) -> QuerySet[Product] | list[int]:
    """Order a listing. Returns a queryset, or for `popular` the ordered list of product ids (the
    popularity scores live in the cache, not in a column, so that sort happens in Python)."""
    if sort == "price_asc":
        return products.order_by("price", "id")
    if sort == "price_desc":
        return products.order_by("-price", "id")
    if sort == "newest":
        return products.order_by("-created_at", "-id")
    if sort == "popular" or (sort == "relevance" and not query):
        scores = product_popularity_get()
        ids = list(products.values_list("id", flat=True))
        ids.sort(key=lambda pid: (-scores.get(pid, 0), pid))
        return ids
    # relevance with a query: title matches first, then the rest by popularity would need a score
    # column; a title-first ordering is what a keyword search can honestly offer.
    first_word = query.split()[0] if query.split() else ""
    return products.annotate(
        _title_hit=Case(
            When(title__icontains=first_word, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    ).order_by("_title_hit", "id")


def products_in_order(*, ids: Sequence[int]) -> list[Product]:
    """Active products for `ids`, in that order (missing or inactive ids are skipped)."""
    found = products_active().in_bulk(list(ids))
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class BrandFacet:
    slug: str
    name: str
    count: int


def brand_facets_get(*, products: QuerySet[Product]) -> list[BrandFacet]:
    """Brands present in `products` with how many products each has (for the filter sidebar)."""
    rows = (
        products.order_by()
        .exclude(brand=None)
        .values("brand__slug", "brand__name")
        .annotate(n=Count("id"))
        .order_by("brand__name")
    )
    return [BrandFacet(r["brand__slug"], r["brand__name"], r["n"]) for r in rows]


def price_bounds_get(*, products: QuerySet[Product]) -> tuple[Decimal | None, Decimal | None]:
    agg = products.order_by().aggregate(lo=Min("price"), hi=Max("price"))
    return agg["lo"], agg["hi"]


def brands_known(*, slugs: Iterable[str]) -> set[str]:
    return set(Brand.objects.filter(slug__in=list(slugs)).values_list("slug", flat=True))


# --- popularity ----------------------------------------------------------------------------------


def product_popularity_get() -> dict[int, float]:
    """product id -> recent events weighted by `catalog.event_weights.POPULARITY_WEIGHTS` (cached).

    The window is the last POPULARITY_WINDOW_DAYS days; when that window is empty (an old data set)
    all events count, so a demo database never shows an unordered shop.
    """
    scores = cache.get(POPULARITY_CACHE_KEY)
    if isinstance(scores, dict):
        return scores
    since = timezone.now() - timedelta(days=POPULARITY_WINDOW_DAYS)
    scores = _popularity(since=since) or _popularity(since=None)
    cache.set(POPULARITY_CACHE_KEY, scores, POPULARITY_TTL)
    return scores


def _popularity(*, since) -> dict[int, float]:
    qs = Event.objects.filter(type__in=list(POPULARITY_WEIGHTS), product__isnull=False)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    scores: dict[int, float] = {}
    for pid, etype, n in qs.order_by().values_list("product_id", "type").annotate(n=Count("id")):
        scores[pid] = scores.get(pid, 0) + POPULARITY_WEIGHTS[etype] * n
    return scores


def products_popular(
    *, limit: int = 8, exclude_ids: Iterable[int] = (), category: Category | None = None
) -> list[Product]:
    """The most popular active, in-stock products (ties and products with no events: newest first)."""
    exclude = set(exclude_ids)
    qs = products_active().filter(stock__gt=0)
    if category is not None:
        qs = qs.filter(
            category_id__in=category_tree_get(must_include=category.pk).descendant_ids(category.pk)
        )
    scores = product_popularity_get()
    ranked = [pid for pid in sorted(scores, key=lambda p: -scores[p]) if pid not in exclude]
    # Over-fetch: some popular ids may be inactive, out of stock or outside the category.
    picked = products_in_order(ids=ranked[: limit * 4])
    allowed = set(qs.filter(pk__in=[p.pk for p in picked]).values_list("pk", flat=True)) if picked else set()
    out = [p for p in picked if p.pk in allowed][:limit]
    if len(out) < limit:
        seen = exclude | {p.pk for p in out}
        out += list(qs.exclude(pk__in=seen).order_by("-created_at", "-id")[: limit - len(out)])
    return out


def products_newest(*, limit: int = 8) -> list[Product]:
    return list(products_active().filter(stock__gt=0).order_by("-created_at", "-id")[:limit])


# --- cart ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int
    line_total: Decimal
    available: bool  # False when the product ran out or has fewer in stock than the quantity
    impression_id: str | None


@dataclass(frozen=True)
class CartSummary:
    lines: tuple[CartLine, ...]
    total: Decimal
    count: int
    currency: str
    missing_ids: tuple[int, ...]  # ids in the session cart that are no longer sold

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def has_problems(self) -> bool:
        return any(not line.available for line in self.lines)

    @property
    def product_ids(self) -> list[int]:
        return [line.product.pk for line in self.lines]


def cart_summary_get(*, cart: Mapping[str, int], impressions: Mapping[str, str] | None = None) -> CartSummary:
    """Resolve a session cart ({"<product id>": quantity}) to products and totals in one query."""
    impressions = impressions or {}
    wanted: dict[int, int] = {}
    for key, qty in cart.items():
        try:
            pid, quantity = int(key), int(qty)
        except (TypeError, ValueError):
            continue
        if quantity > 0:
            wanted[pid] = quantity
    found = products_active().in_bulk(list(wanted))
    lines, total, count = [], Decimal("0"), 0
    currency = "USD"
    for pid, quantity in wanted.items():
        product = found.get(pid)
        if product is None:
            continue
        line_total = product.price * quantity
        lines.append(
            CartLine(
                product=product,
                quantity=quantity,
                line_total=line_total,
                available=product.stock >= quantity,
                impression_id=impressions.get(str(pid)),
            )
        )
        total += line_total
        count += quantity
        currency = product.currency
    missing = tuple(pid for pid in wanted if pid not in found)
    return CartSummary(lines=tuple(lines), total=total, count=count, currency=currency, missing_ids=missing)


# --- account -------------------------------------------------------------------------------------


def customer_for_user_get(*, user) -> Customer | None:
    """The customer linked to a signed-in user (None for anonymous users or users without one)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return Customer.objects.filter(user=user).first()


def customer_get(*, external_id: str) -> Customer | None:
    """The customer with this external id (the shop's own id, as REST clients and support staff give it)."""
    if not external_id:
        return None
    return Customer.objects.filter(external_id=external_id).first()


def customer_orders_list(*, customer: Customer, limit: int = 20) -> list[Order]:
    return list(
        Order.objects.filter(customer=customer)
        .prefetch_related("lines__product")
        .order_by("-created_at", "-id")[:limit]
    )


def order_get(*, pk: int) -> Order | None:
    return Order.objects.filter(pk=pk).select_related("customer").prefetch_related("lines__product").first()


def products_recently_viewed(
    *, customer: Customer | None = None, visitor_id: str = "", limit: int = 8
) -> list[Product]:
    """Distinct products this shopper viewed, most recent first."""
    who = Q()
    if customer is not None:
        who |= Q(customer=customer)
    if visitor_id:
        who |= Q(visitor_id=visitor_id)
    if not who:
        return []
    rows = (
        Event.objects.filter(who, type=Event.Type.VIEW, product__isnull=False)
        .order_by()
        .values("product_id")
        .annotate(last=Max("timestamp"))
        .order_by("-last")[: limit * 2]
    )
    return products_in_order(ids=[r["product_id"] for r in rows])[:limit]
