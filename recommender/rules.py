"""Business rules: pure functions over candidate lists and product attributes.

Pure: no Django, no ORM. `recommender.serving` loads every attribute the rules need in one query
(`ProductAttrs`) and hands over the shopper context (`RuleContext`); each rule returns the kept
candidates (in order) and the removed ones with the reason, stamps the label of the rule on every
candidate it touched, and reports its effect per item (`RuleOutcome.effects`: filtered, boosted, demoted,
reordered, capped or pinned, with the item's position before and after that rule), which the decision
trace shows. Invalid parameters raise `RuleParamsError` (a ValueError with merchandiser-readable
`messages`; forms and the admin turn it into a ValidationError).

Rules run in phases, each phase in the merchandiser's `position` order:

1. filters   in stock, active, price range, include/exclude categories and brands, exclude purchased / cart
2. scoring   boost brands / categories, freshness (multiply the score; re-sort within a tier)
3. rerank    diversity (MMR), at most N per brand / category
4. pins      pinned SKUs at fixed positions (a pinned item must still pass the filters)

Candidates carry a `tier` (0 = the widget's own strategy, 1.. = fallbacks): ordering is
(tier, -score), so a boost never lifts a fallback item above the strategy's own items by accident of
score scales, and MMR uses rank-based relevance for the same reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .serving.trace import RuleEffect


class RuleParamsError(ValueError):
    """Invalid rule parameters; `messages` are shown to the merchandiser as they are."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.messages = [message]


# --------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Candidate:
    product_id: int
    score: float
    engine: str
    reason: str = ""
    tier: int = 0
    rules: tuple[str, ...] = ()

    def touched(self, label: str) -> Candidate:
        return replace(self, rules=self.rules + (label,))


@dataclass(frozen=True)
class ProductAttrs:
    product_id: int
    sku: str
    title: str
    category_id: int
    category_name: str
    category_path: tuple[int, ...]  # root first, own category last
    brand_id: int | None
    price: float
    stock: int
    is_active: bool
    created_ts: float  # unix seconds
    currency: str = "USD"
    image: str = ""


@dataclass(frozen=True)
class RuleContext:
    purchased: frozenset[int] = frozenset()
    cart: frozenset[int] = frozenset()
    now_ts: float = 0.0
    k: int = 8
    # Pairwise item similarity in [0, 1] for MMR; None -> category/brand overlap.
    similarity: Callable[[int, int], float] | None = None


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    params: Mapping[str, Any]
    position: int = 0


@dataclass
class RuleOutcome:
    """kept: the surviving candidates in order; removed: (candidate, label of the rule that removed it);
    effects: (product id, what one rule did to it), in the order the rules ran."""

    kept: list[Candidate]
    removed: list[tuple[Candidate, str]] = field(default_factory=list)
    effects: list[tuple[int, RuleEffect]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Validation (WidgetRule.clean and the admin form): messages a merchandiser understands.

FILTER_KINDS = (
    "in_stock",
    "active_only",
    "price_range",
    "include_categories",
    "exclude_categories",
    "include_brands",
    "exclude_brands",
    "exclude_purchased",
    "exclude_in_cart",
)
SCORE_KINDS = ("boost_brands", "boost_categories", "freshness")
RERANK_KINDS = ("diversity", "max_per_brand", "max_per_category")
PIN_KINDS = ("pin_skus",)
ALL_KINDS = FILTER_KINDS + SCORE_KINDS + RERANK_KINDS + PIN_KINDS

HELP: dict[str, str] = {
    "in_stock": "No parameters. Hides products with zero stock.",
    "active_only": "No parameters. Hides deactivated products.",
    "price_range": 'Minimum and/or maximum price, e.g. {"min": 10, "max": 200}.',
    "include_categories": 'Only products in these categories (sub-categories included): {"categories": [3, 7]}.',
    "exclude_categories": 'Hide products in these categories (sub-categories included): {"categories": [12]}.',
    "include_brands": 'Only these brands: {"brands": [1, 4]}.',
    "exclude_brands": 'Hide these brands: {"brands": [9]}.',
    "exclude_purchased": "No parameters. Hides what the shopper already bought.",
    "exclude_in_cart": "No parameters. Hides what is already in the shopper's cart.",
    "boost_brands": 'Multiply the score of these brands: {"brands": [2], "factor": 1.5} (factor above 0; below 1 demotes).',
    "boost_categories": 'Multiply the score of these categories: {"categories": [5], "factor": 2}.',
    "freshness": 'Boost new products: {"factor": 1.5, "half_life_days": 14} (a product N half-lives old gets a boost of (factor-1)/2^N).',
    "diversity": 'Maximal marginal relevance: {"lambda": 0.7} (1 = relevance only, 0 = diversity only).',
    "max_per_brand": 'At most N items of one brand: {"n": 2}.',
    "max_per_category": 'At most N items of one category: {"n": 2}.',
    "pin_skus": 'Pin products at positions (1 = first): {"pins": [{"sku": "SKU-00042", "position": 1}]}.',
}

NO_PARAMS = frozenset({"in_stock", "active_only", "exclude_purchased", "exclude_in_cart"})


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None or value == "":
        raise RuleParamsError(f"{what} must be a number.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleParamsError(f"{what} must be a number, not {value!r}.") from None
    if not math.isfinite(number):
        raise RuleParamsError(f"{what} must be a finite number.")
    return number


def _whole(value: Any, what: str, *, minimum: int = 1, maximum: int = 100) -> int:
    number = _number(value, what)
    if number != int(number):
        raise RuleParamsError(f"{what} must be a whole number, not {value}.")
    if not minimum <= number <= maximum:
        raise RuleParamsError(f"{what} must be between {minimum} and {maximum}, not {int(number)}.")
    return int(number)


def _id_list(params: Mapping[str, Any], key: str, label: str, known: set[int] | None) -> list[int]:
    singular = {"categories": "category", "brands": "brand"}.get(key, key)
    raw = params.get(key)
    if not isinstance(raw, list) or not raw:
        raise RuleParamsError(f"{label}: choose at least one {singular}.")
    ids = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
            raise RuleParamsError(f"{label}: {value!r} is not a valid {singular} id.")
        ids.append(int(value))
    if known is not None:
        missing = sorted(set(ids) - known)
        if missing:
            raise RuleParamsError(f"{label}: no {key} with id {', '.join(map(str, missing))}.")
    return sorted(set(ids))


def rule_params_validate(
    kind: str,
    params: Any,
    *,
    known_categories: set[int] | None = None,
    known_brands: set[int] | None = None,
    known_skus: set[str] | None = None,
) -> dict[str, Any]:
    """The cleaned parameters for a rule of `kind`, or RuleParamsError with a merchandiser-readable message.

    `known_*` (optional) check that referenced categories / brands / SKUs exist.
    """
    label = dict(_KIND_LABELS).get(kind)
    if label is None:
        raise RuleParamsError(f"Unknown rule type {kind!r}.")
    if params in (None, ""):
        params = {}
    if not isinstance(params, dict):
        raise RuleParamsError(f'{label}: parameters must be a JSON object such as {{"n": 2}}.')
    if kind in NO_PARAMS:
        if params:
            raise RuleParamsError(f"{label} takes no parameters; leave them empty ({{}}).")
        return {}
    allowed = _ALLOWED_KEYS[kind]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise RuleParamsError(
            f"{label}: unknown setting {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}."
        )
    if kind == "price_range":
        low = _number(params["min"], "Price range: minimum") if params.get("min") not in (None, "") else None
        high = _number(params["max"], "Price range: maximum") if params.get("max") not in (None, "") else None
        if low is None and high is None:
            raise RuleParamsError("Price range: give a minimum, a maximum, or both.")
        if (low is not None and low < 0) or (high is not None and high < 0):
            raise RuleParamsError("Price range: prices cannot be negative.")
        if low is not None and high is not None and low > high:
            raise RuleParamsError(f"Price range: minimum {low:g} is above maximum {high:g}.")
        return {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    if kind in ("include_categories", "exclude_categories"):
        return {"categories": _id_list(params, "categories", label, known_categories)}
    if kind in ("include_brands", "exclude_brands"):
        return {"brands": _id_list(params, "brands", label, known_brands)}
    if kind in ("boost_brands", "boost_categories"):
        key = "brands" if kind == "boost_brands" else "categories"
        ids = _id_list(params, key, label, known_brands if key == "brands" else known_categories)
        factor = _number(params.get("factor"), f"{label}: factor")
        if not 0 < factor <= 100:
            raise RuleParamsError(
                f"{label}: factor must be above 0 and at most 100 (1 changes nothing), not {factor:g}."
            )
        return {key: ids, "factor": factor}
    if kind == "freshness":
        factor = _number(params.get("factor", 1.5), "Freshness boost: factor")
        if not 1 <= factor <= 100:
            raise RuleParamsError(f"Freshness boost: factor must be between 1 and 100, not {factor:g}.")
        half_life = _number(params.get("half_life_days", 14), "Freshness boost: half-life in days")
        if not 0 < half_life <= 3650:
            raise RuleParamsError(
                f"Freshness boost: half-life must be between 0 and 3650 days, not {half_life:g}."
            )
        return {"factor": factor, "half_life_days": half_life}
    if kind == "diversity":
        lam = _number(params.get("lambda", 0.7), "Diversity: lambda")
        if not 0 <= lam <= 1:
            raise RuleParamsError(f"Diversity: lambda must be between 0 and 1, not {lam:g}.")
        return {"lambda": lam}
    if kind in ("max_per_brand", "max_per_category"):
        return {"n": _whole(params.get("n"), f"{label}: N", minimum=1, maximum=100)}
    if kind == "pin_skus":
        pins = params.get("pins")
        if not isinstance(pins, list) or not pins:
            raise RuleParamsError(
                'Pin SKUs: add at least one pin, e.g. {"pins": [{"sku": "SKU-1", "position": 1}]}.'
            )
        cleaned, positions, skus = [], set(), set()
        for pin in pins:
            if not isinstance(pin, dict) or not isinstance(pin.get("sku"), str) or not pin["sku"].strip():
                raise RuleParamsError(f"Pin SKUs: each pin needs a SKU and a position, got {pin!r}.")
            sku = pin["sku"].strip()
            position = _whole(pin.get("position"), f"Pin SKUs: position of {sku}", minimum=1, maximum=100)
            if position in positions:
                raise RuleParamsError(f"Pin SKUs: two products are pinned at position {position}.")
            if sku in skus:
                raise RuleParamsError(f"Pin SKUs: {sku} is pinned twice.")
            if known_skus is not None and sku not in known_skus:
                raise RuleParamsError(f"Pin SKUs: no product with SKU {sku}.")
            positions.add(position)
            skus.add(sku)
            cleaned.append({"sku": sku, "position": position})
        return {"pins": sorted(cleaned, key=lambda p: p["position"])}
    raise RuleParamsError(f"Unknown rule type {kind!r}.")  # pragma: no cover - every kind handled above


_KIND_LABELS = (
    ("in_stock", "In stock only"),
    ("active_only", "Active products only"),
    ("price_range", "Price range"),
    ("include_categories", "Only these categories"),
    ("exclude_categories", "Exclude categories"),
    ("include_brands", "Only these brands"),
    ("exclude_brands", "Exclude brands"),
    ("exclude_purchased", "Exclude items already purchased"),
    ("exclude_in_cart", "Exclude items in the cart"),
    ("boost_brands", "Boost brands"),
    ("boost_categories", "Boost categories"),
    ("pin_skus", "Pin SKUs"),
    ("max_per_brand", "At most N per brand"),
    ("max_per_category", "At most N per category"),
    ("diversity", "Diversity"),
    ("freshness", "Freshness boost"),
)
_ALLOWED_KEYS: dict[str, set[str]] = {
    "price_range": {"min", "max"},
    "include_categories": {"categories"},
    "exclude_categories": {"categories"},
    "include_brands": {"brands"},
    "exclude_brands": {"brands"},
    "boost_brands": {"brands", "factor"},
    "boost_categories": {"categories", "factor"},
    "freshness": {"factor", "half_life_days"},
    "diversity": {"lambda", "similarity"},
    "max_per_brand": {"n"},
    "max_per_category": {"n"},
    "pin_skus": {"pins"},
}


def rule_label(kind: str, params: Mapping[str, Any]) -> str:
    """Short human label of a rule with its parameters (stamped on the items it touched)."""
    base = dict(_KIND_LABELS).get(kind, kind)
    if kind == "price_range":
        return f"{base} {params.get('min', '')}–{params.get('max', '')}".replace("– ", "–").strip()
    if kind in ("boost_brands", "boost_categories"):
        return f"{base} ×{params.get('factor', 1):g}"
    if kind in ("max_per_brand", "max_per_category"):
        return base.replace("N", str(params.get("n", "N")))
    if kind == "diversity":
        return f"Diversity (MMR λ={params.get('lambda', 0.7):g})"
    return base


# --------------------------------------------------------------------------------------------------
# Rules


def candidates_sort(cands: Sequence[Candidate]) -> list[Candidate]:
    """Tier first, then score (best first); stable."""
    return sorted(cands, key=lambda c: (c.tier, -c.score))


Effects = list[tuple[int, RuleEffect]]


def _filter(
    cands: Sequence[Candidate], keep: Callable[[Candidate], bool], kind: str, label: str, effects: Effects
) -> RuleOutcome:
    out = RuleOutcome(kept=[])
    for i, c in enumerate(cands):
        if keep(c):
            out.kept.append(c)
        else:
            out.removed.append((c, label))
            effects.append((c.product_id, RuleEffect(kind, label, "filtered", i, None)))
    return out


def _filter_predicate(
    kind: str, params: Mapping[str, Any], attrs: Mapping[int, ProductAttrs], ctx: RuleContext
) -> Callable[[int], bool]:
    """Predicate over product ids for a filter rule (unknown products never pass)."""

    def known(fn: Callable[[ProductAttrs], bool]) -> Callable[[int], bool]:
        return lambda pid: pid in attrs and fn(attrs[pid])

    if kind == "in_stock":
        return known(lambda a: a.stock > 0)
    if kind == "active_only":
        return known(lambda a: a.is_active)
    if kind == "price_range":
        low, high = params.get("min"), params.get("max")
        return known(lambda a: (low is None or a.price >= low) and (high is None or a.price <= high))
    if kind in ("include_categories", "exclude_categories"):
        cats = set(params.get("categories", ()))
        inside = known(lambda a: bool(cats.intersection(a.category_path)))
        return (
            inside
            if kind == "include_categories"
            else known(lambda a: not cats.intersection(a.category_path))
        )
    if kind in ("include_brands", "exclude_brands"):
        brands = set(params.get("brands", ()))
        if kind == "include_brands":
            return known(lambda a: a.brand_id in brands)
        return known(lambda a: a.brand_id not in brands)
    if kind == "exclude_purchased":
        return lambda pid: pid not in ctx.purchased
    if kind == "exclude_in_cart":
        return lambda pid: pid not in ctx.cart
    raise ValueError(f"not a filter rule: {kind}")


def _boost(
    cands: Sequence[Candidate],
    attrs: Mapping[int, ProductAttrs],
    factor_of: Callable[[ProductAttrs], float],
    kind: str,
    label: str,
    effects: Effects,
) -> list[Candidate]:
    out = []
    touched: dict[int, tuple[int, float]] = {}  # product id -> (position before, factor)
    for i, c in enumerate(cands):
        a = attrs.get(c.product_id)
        factor = factor_of(a) if a is not None else 1.0
        if factor != 1.0:
            # A negative score scaled by a factor above 1 would fall; divide instead so a boost always lifts.
            score = c.score * factor if c.score >= 0 else c.score / factor
            c = replace(c, score=score).touched(label if "×" in label else f"{label} ×{factor:.2f}")
            touched[c.product_id] = (i, factor)
        out.append(c)
    out = candidates_sort(out)
    if touched:
        for j, c in enumerate(out):
            hit = touched.get(c.product_id)
            if hit is not None:
                before, factor = hit
                effect = "boosted" if factor > 1 else "demoted"
                effects.append((c.product_id, RuleEffect(kind, label, effect, before, j, f"×{factor:g}")))
    return out


def _attribute_similarity(a: ProductAttrs | None, b: ProductAttrs | None) -> float:
    if a is None or b is None:
        return 0.0
    sim = 0.0
    if a.category_id == b.category_id:
        sim += 0.6
    elif set(a.category_path[:-1]) & set(b.category_path[:-1]):
        sim += 0.3
    if a.brand_id is not None and a.brand_id == b.brand_id:
        sim += 0.4
    return sim


def mmr_rerank(
    cands: Sequence[Candidate],
    *,
    lam: float,
    sim: Callable[[int, int], float],
    k: int,
    label: str,
    effects: Effects | None = None,
    kind: str = "diversity",
) -> list[Candidate]:
    """Maximal marginal relevance over the top of the list.

    Relevance is rank-based, rel_i = 1 - rank_i / n (scale-free across engines); each step picks
    argmax_i  lam * rel_i - (1 - lam) * max_{j selected} sim(i, j). Only the first k slots are
    reordered; the rest keep their order after them. Items whose position changed are stamped (and
    reported as "reordered" effects when `effects` is a list).
    """
    n = len(cands)
    if n <= 1 or lam >= 1.0:
        return list(cands)
    rel = [1.0 - i / n for i in range(n)]
    remaining = list(range(n))
    selected: list[int] = []
    max_sim = [0.0] * n
    while remaining and len(selected) < k:
        best = max(remaining, key=lambda i: (lam * rel[i] - (1 - lam) * max_sim[i], -i))
        selected.append(best)
        remaining.remove(best)
        pid = cands[best].product_id
        for i in remaining:
            s = sim(cands[i].product_id, pid)
            if s > max_sim[i]:
                max_sim[i] = s
    order = selected + remaining
    out = []
    for new_pos, old in enumerate(order):
        c = cands[old]
        if new_pos != old and new_pos < k:
            c = c.touched(f"{label}: moved {old + 1}→{new_pos + 1}")
            if effects is not None:
                effects.append((c.product_id, RuleEffect(kind, label, "reordered", old, new_pos)))
        out.append(c)
    return out


def _cap(
    cands: Sequence[Candidate],
    attrs: Mapping[int, ProductAttrs],
    key: Callable[[ProductAttrs], Any],
    n: int,
    kind: str,
    label: str,
    effects: Effects,
) -> RuleOutcome:
    seen: Counter = Counter()
    out = RuleOutcome(kept=[])
    for i, c in enumerate(cands):
        a = attrs.get(c.product_id)
        group = key(a) if a is not None else None
        if group is not None and seen[group] >= n:
            out.removed.append((c, label))
            effects.append((c.product_id, RuleEffect(kind, label, "capped", i, None, f"more than {n}")))
            continue
        seen[group] += 1
        out.kept.append(c)
    return out


def _phase(kind: str) -> int:
    if kind in FILTER_KINDS:
        return 0
    if kind in SCORE_KINDS:
        return 1
    if kind in RERANK_KINDS:
        return 2
    return 3


def rules_apply(
    cands: Sequence[Candidate],
    rules: Sequence[RuleSpec],
    attrs: Mapping[int, ProductAttrs],
    ctx: RuleContext,
    *,
    pinned_ids: Mapping[str, int] | None = None,
) -> RuleOutcome:
    """Apply `rules` (phase order, then position) to `cands`; returns kept (ordered) and removed items and
    every rule's effect on every item it touched, with 0-based positions in that rule's input and output.

    `pinned_ids` maps pinned SKUs to product ids (the caller loads their attributes into `attrs`).
    Duplicate product ids keep their first (best) occurrence.
    """
    seen: set[int] = set()
    unique = []
    for c in candidates_sort(cands):
        if c.product_id not in seen:
            seen.add(c.product_id)
            unique.append(c)
    current = unique
    removed: list[tuple[Candidate, str]] = []
    effects: Effects = []
    if not rules:
        return RuleOutcome(kept=current, removed=removed, effects=effects)
    by_phase = sorted(rules, key=lambda r: (_phase(r.kind), r.position))
    filters = [r for r in by_phase if r.kind in FILTER_KINDS]
    for rule in by_phase:
        kind = rule.kind
        label = rule_label(kind, rule.params)
        p = rule.params
        if kind in FILTER_KINDS:
            pred = _filter_predicate(kind, p, attrs, ctx)
            res = _filter(current, lambda c, pred=pred: pred(c.product_id), kind, label, effects)
            current, removed = res.kept, removed + res.removed
        elif kind == "boost_brands":
            brands, f = set(p.get("brands", ())), float(p.get("factor", 1))
            current = _boost(
                current,
                attrs,
                lambda a, brands=brands, f=f: f if a.brand_id in brands else 1.0,
                kind,
                label,
                effects,
            )
        elif kind == "boost_categories":
            cats, f = set(p.get("categories", ())), float(p.get("factor", 1))
            current = _boost(
                current,
                attrs,
                lambda a, cats=cats, f=f: f if cats.intersection(a.category_path) else 1.0,
                kind,
                label,
                effects,
            )
        elif kind == "freshness":
            f, half = float(p.get("factor", 1.5)), float(p.get("half_life_days", 14))

            def fresh(a: ProductAttrs, f: float = f, half: float = half) -> float:
                age_days = max(0.0, (ctx.now_ts - a.created_ts) / 86400.0)
                return round(1.0 + (f - 1.0) * 0.5 ** (age_days / half), 4)

            current = _boost(current, attrs, fresh, kind, "Freshness boost", effects)
        elif kind == "diversity":
            sim = ctx.similarity or (lambda i, j: _attribute_similarity(attrs.get(i), attrs.get(j)))
            current = mmr_rerank(
                current, lam=float(p.get("lambda", 0.7)), sim=sim, k=ctx.k, label=label, effects=effects
            )
        elif kind in ("max_per_brand", "max_per_category"):
            key = (lambda a: a.brand_id) if kind == "max_per_brand" else (lambda a: a.category_id)
            res = _cap(current, attrs, key, int(p["n"]), kind, label, effects)
            current, removed = res.kept, removed + res.removed
        elif kind == "pin_skus":
            current, pin_removed = _pins(
                current, p.get("pins", ()), attrs, ctx, filters, pinned_ids or {}, effects
            )
            removed += pin_removed
    return RuleOutcome(kept=current, removed=removed, effects=effects)


def _pins(
    cands: list[Candidate],
    pins: Sequence[Mapping[str, Any]],
    attrs: Mapping[int, ProductAttrs],
    ctx: RuleContext,
    filters: Sequence[RuleSpec],
    pinned_ids: Mapping[str, int],
    effects: Effects,
) -> tuple[list[Candidate], list[tuple[Candidate, str]]]:
    removed: list[tuple[Candidate, str]] = []
    index_of = {c.product_id: i for i, c in enumerate(cands)}
    placed: list[tuple[int, Candidate]] = []
    for pin in sorted(pins, key=lambda p: p["position"]):
        pid = pinned_ids.get(pin["sku"])
        if pid is None:
            continue  # the SKU no longer exists: nothing to pin
        label = f"Pinned at position {pin['position']}"
        before = index_of.get(pid)
        base = (
            cands[before]
            if before is not None
            else Candidate(product_id=pid, score=0.0, engine="pinned", reason="Featured", tier=0)
        )
        failed = next(
            (f for f in filters if not _filter_predicate(f.kind, f.params, attrs, ctx)(pid)),
            None,
        )
        if failed is not None:  # a pinned item must still be in stock, active, in range, ...
            failed_label = rule_label(failed.kind, failed.params)
            removed.append((base.touched(label), failed_label))
            effects.append(
                (pid, RuleEffect(failed.kind, failed_label, "filtered", before, None, f"pin {pin['sku']}"))
            )
            continue
        placed.append((pin["position"] - 1, base.touched(label)))
    if not placed:
        return list(cands), removed
    pinned = {c.product_id for _, c in placed}
    rest = [c for c in cands if c.product_id not in pinned]
    for index, cand in placed:  # ascending positions: earlier inserts never shift later pins
        rest.insert(min(index, len(rest)), cand)
    after = {c.product_id: i for i, c in enumerate(rest) if c.product_id in pinned}
    for _, cand in placed:
        pid = cand.product_id
        effects.append((pid, RuleEffect("pin_skus", cand.rules[-1], "pinned", index_of.get(pid), after[pid])))
    return rest, removed
