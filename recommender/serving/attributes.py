"""Product attributes the rules and the reason labels read (`recommender.rules.ProductAttrs`): one query for
those not memoised, plus the category tree (memoised for a minute, or reloaded at once when a product's
category is not in it yet, so a new category is never served with a truncated path).

Per-process memo bounds, documented in docs/benchmarks/serving.md: an entry lives at most
RECSITE_SERVING_ATTRS_SECONDS (default 30; 0 = off, as the test settings do), so an item that sells out or
is deactivated can still be served for up to 30 s (the product page and the cart read the database). The
longer TTL is what makes the memo pay: measured on the 50k-product benchmark, 30 s serves ~96% of a cached
personalized request's attribute lookups from memory, 5 s ~63%.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db.models import Q

from catalog.models import Category, Product
from recsite.memo import Memo

from ..rules import ProductAttrs

ATTRS_MEMO_MAX = 100_000  # entries (measured: 50,000 entries take 30 MiB)
_ATTR_FIELDS = tuple(f.name for f in dataclasses.fields(ProductAttrs))


def serving_attrs_seconds() -> float:
    return float(getattr(settings, "RECSITE_SERVING_ATTRS_SECONDS", 30.0))


# pid -> ProductAttrs fields in order, as a plain tuple of str / int / float: the garbage collector stops
# tracking those, so a full memo does not lengthen its pauses (ProductAttrs instances would).
_attrs_memo: Memo[tuple[Any, ...]] = Memo(maxsize=ATTRS_MEMO_MAX, ttl=serving_attrs_seconds)
_categories_memo: Memo[dict[int, tuple[int | None, str]]] = Memo(maxsize=1, ttl=60)


def attrs_memo_stats() -> dict[str, int]:
    """Product-attribute lookups served from / missing the memo since the last clear."""
    return {"hits": _attrs_memo.hits, "misses": _attrs_memo.misses}


def attrs_state_reset() -> None:
    _attrs_memo.clear()
    _categories_memo.clear()


def categories_get(needed: Iterable[int] = ()) -> dict[int, tuple[int | None, str]]:
    """category id -> (parent id, name): one query per process per minute, or at once when a needed
    category is not known yet."""
    hit = _categories_memo.get("all")
    if hit is not None and all(c in hit for c in needed):
        return hit
    cats = {
        pk: (parent, name) for pk, parent, name in Category.objects.values_list("pk", "parent_id", "name")
    }
    _categories_memo.set("all", cats)
    return cats


def category_path(category_id: int, cats: dict[int, tuple[int | None, str]]) -> tuple[int, ...]:
    path, node, seen = [], category_id, set()
    while node is not None and node not in seen:
        seen.add(node)
        path.append(node)
        node = cats.get(node, (None, ""))[0]
    return tuple(reversed(path))


def product_attrs_load(product_ids: Iterable[int] = (), skus: Iterable[str] = ()) -> dict[int, ProductAttrs]:
    """Attributes the rules need, for the given products and SKUs: one query (plus the memoised category
    tree) for those not in the per-process memo; none when all are memoised."""
    ids, skus = list(set(product_ids)), list(set(skus))
    if not ids and not skus:
        return {}
    out: dict[int, ProductAttrs] = {}
    if serving_attrs_seconds() > 0:
        hits = _attrs_memo.get_many(ids)
        out = {pid: ProductAttrs(*row) for pid, row in hits.items()}
        ids = [pid for pid in ids if pid not in hits]
        if not ids and not skus:
            return out
    loaded = _product_attrs_query(ids, skus)
    out.update(loaded)
    _attrs_memo.set_many({pid: tuple(getattr(a, f) for f in _ATTR_FIELDS) for pid, a in loaded.items()})
    return out


def _product_attrs_query(ids: list[int], skus: list[str]) -> dict[int, ProductAttrs]:
    rows = list(
        Product.objects.filter(Q(pk__in=ids) | Q(sku__in=skus)).values_list(
            "pk",
            "sku",
            "title",
            "category_id",
            "brand_id",
            "price",
            "stock",
            "is_active",
            "created_at",
            "currency",
            "image",
        )
    )
    cats = categories_get({r[3] for r in rows})
    out = {}
    for pk, sku, title, cat, brand, price, stock, active, created, currency, image in rows:
        out[pk] = ProductAttrs(
            product_id=pk,
            sku=sku,
            title=title,
            category_id=cat,
            category_name=cats.get(cat, (None, ""))[1],
            category_path=category_path(cat, cats),
            brand_id=brand,
            price=float(price),
            stock=stock,
            is_active=active,
            created_ts=created.timestamp() if created else 0.0,
            currency=currency,
            image=image,
        )
    return out


def product_titles(product_ids: Iterable[int]) -> dict[int, str]:
    """Product titles for reason labels, through the attributes memo (no query when all are memoised)."""
    return {pid: a.title for pid, a in product_attrs_load(product_ids).items()}
