"""`recommendations_get`: the serving pipeline, read top-down as its stages.

    0. variant     registered serving hooks (experiments) may swap in the shopper's variant
    1. shopper     `shopper.shopper_load`: history, purchases, cart, consent
    2. candidates  `candidates.candidates_get` per strategy: the widget's own, then its fallback, trending,
                   popular, until the rules leave k items
    3. ranking     `ranking.pool_extend`: one pool ordered by (tier, score), reason labels
    4. rules       `rules.rules_run`: filters, boosts, diversity, caps, pins, with every rule's effect
    5. slots       `slots.slots_fill`: the first k take the slots -> Recommendations (+ impression rows)
    6. log         `impressions.impressions_write`: impressions and the decision trace, bulk-written

Resilience: a dead cache, a missing or corrupt artifact, or an engine that raises degrades to the next
fallback with a logged warning; the function only raises for programming errors in its arguments.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from catalog.models import Customer, Product

from ..models import Widget
from ..rules import Candidate, ProductAttrs, RuleOutcome, RuleSpec
from .attributes import product_attrs_load
from .candidates import PERSONAL_STRATEGIES, CandidateSource, candidates_get
from .hooks import serving_hooks
from .impressions import impressions_write, trace_recording
from .loading import heap_freeze_once
from .ranking import attrs_needed, pool_extend, source_new_items
from .rules import pinned_skus, pins_resolve, rule_context_make, rules_run
from .shopper import shopper_load
from .slots import Recommendation, slots_fill
from .trace import DecisionTrace
from .tracing import TraceDraft
from .widgets import widget_rules

logger = logging.getLogger("recommender.serving")

CANDIDATE_FACTOR = 4  # over-fetch so filters still leave k items
MIN_CANDIDATES = 40


class StageClock:
    """Milliseconds per stage, accumulated (the candidates / ranking / rules stages repeat per fallback)."""

    __slots__ = ("last", "ms")

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (now - self.last) * 1000.0
        self.last = now


def variant_apply(
    *, widget: Widget, customer: Customer | None, visitor: str | None, context: dict[str, Any], log: bool
) -> tuple[Widget, list[RuleSpec] | None, dict[str, Any]]:
    """Stage 0: every registered hook may replace the widget (an experiment's variant), its rules, and add
    to the context it logs (experiment, variant)."""
    rules = None
    for hook in serving_hooks():
        applied = hook.variant_apply(
            widget=widget, customer=customer, visitor=visitor, context=context, log=log
        )
        widget, context = applied.widget, applied.context
        if applied.rules is not None:
            rules = applied.rules
    return widget, rules, context


def recommendations_get(
    *,
    widget: Widget | str,
    customer: Customer | None = None,
    visitor: str | None = None,
    product: Product | None = None,
    session_items: Sequence[int] = (),
    k: int | None = None,
    request_id: uuid.UUID | None = None,
    context: dict[str, Any] | None = None,
    log: bool = True,
    trace: list[DecisionTrace] | None = None,
    attrs_out: dict[int, ProductAttrs] | None = None,
) -> list[Recommendation]:
    """Up to k recommendations of `widget` (a Widget or its slug) for this shopper (k defaults to the
    widget's num_items). Disabled widgets are served too (callers decide; the admin preview needs it).

    context: optional {"cart": product ids, "experiment": slug, "variant": name, "propensities":
    {product id: p}}. `log=False` skips the impression log and the trace record (admin preview). When
    `trace` is a list, the list's DecisionTrace is appended. When `attrs_out` is a dict, the returned
    products' attributes (sku, title, price, currency, image, ...) are put in it, so callers that render
    items need no second product query.
    """
    clock = StageClock()
    heap_freeze_once()
    if isinstance(widget, str):
        widget = Widget.objects.get(slug=widget)  # DoesNotExist for an unknown slug: a caller's bug
    widget, rules, context = variant_apply(
        widget=widget, customer=customer, visitor=visitor, context=context or {}, log=log
    )
    k = int(k or widget.num_items)
    if not 1 <= k <= 100:
        raise ValueError(f"k must be between 1 and 100, got {k}")
    request_id = request_id or uuid.uuid4()
    if rules is None:
        rules = widget_rules(widget)
    clock.lap("variant")

    # 1. shopper
    shopper = shopper_load(
        customer=customer,
        visitor=visitor,
        session_items=[int(p) for p in session_items],
        context=context,
        need_purchases=any(r.kind == "exclude_purchased" for r in rules),
    )
    if not context.get("cart") and session_items and widget.placement in ("cart", "checkout"):
        shopper.cart = frozenset(int(p) for p in session_items)
    warnings: list[str] = []
    if not shopper.personal and widget.strategy in PERSONAL_STRATEGIES:
        warnings.append("customer has not consented to personalization")
    clock.lap("shopper")

    # 2-4. candidates -> ranking -> rules, one strategy at a time until the rules leave k items
    n = max(MIN_CANDIDATES, k * CANDIDATE_FACTOR)
    chain = [widget.strategy, widget.fallback_strategy, "trending", "popular"]
    pins = pinned_skus(rules)
    pinned_ids: dict[str, int] = {}
    ctx = rule_context_make(shopper, k=k)
    exclude = (product.pk,) if product is not None else ()
    pool: list[Candidate] = []
    have: set[int] = set()
    sources: list[tuple[int, CandidateSource]] = []
    attrs: dict[int, ProductAttrs] = {}
    outcome = RuleOutcome(kept=[])
    cache_hits: list[str] = []
    tried: set[str] = set()
    for tier, strategy in enumerate(chain):
        if not strategy or strategy in tried:
            continue
        tried.add(strategy)
        try:
            src = candidates_get(
                strategy, widget=widget, shopper=shopper, product=product, n=n, warnings=warnings
            )
        except Exception as exc:  # e.g. a list computation failing: try the next fallback
            logger.warning(
                "widget %s: strategy %s failed; trying the next fallback",
                widget.slug,
                strategy,
                exc_info=True,
            )
            warnings.append(f"{strategy} failed: {exc}")
            src = None
        clock.lap("candidates")
        if src is None or not src.items:
            continue
        sources.append((tier, src))
        if src.cached:
            cache_hits.append(f"candidates:{src.name}")
        new = source_new_items(src, have=have, exclude=exclude, n=n)
        if not new:
            continue
        first_pins = pins if pins and not pinned_ids else ()
        attrs.update(product_attrs_load(attrs_needed(src, new, attrs), skus=first_pins))
        if first_pins:
            pinned_ids = pins_resolve(attrs, pins)
        pool_extend(pool, have, src, new, tier=tier, attrs=attrs)
        clock.lap("ranking")
        outcome = rules_run(pool, rules, attrs, ctx, pinned_ids)
        clock.lap("rules")
        if len(outcome.kept) >= k:
            break
    if pins and not pinned_ids and not pool:  # nothing to serve but the pins
        attrs.update(product_attrs_load((), skus=pins))
        pinned_ids = pins_resolve(attrs, pins)
        outcome = rules_run(pool, rules, attrs, ctx, pinned_ids)
        clock.lap("rules")

    # 5. slots
    chosen = outcome.kept[:k]
    if attrs_out is not None:
        attrs_out.update({c.product_id: attrs[c.product_id] for c in chosen if c.product_id in attrs})
    propensities = context.get("propensities") or {}
    version_by_engine: dict[str, int | None] = {}
    for _, s in sources:
        version_by_engine.setdefault(s.name, s.model_version_id)
        if s.propensities:
            propensities = {**s.propensities, **propensities}
    recs, batch = slots_fill(
        chosen,
        log=log,
        request_id=request_id,
        widget=widget,
        customer=customer,
        visitor=visitor,
        version_by_engine=version_by_engine,
        propensities=propensities,
        context=context,
        now=timezone.now(),
    )
    clock.lap("slots")

    # 6. log (the trace is built from references here, and finished in the writer)
    draft = None
    if trace is not None or (log and trace_recording()):
        draft = TraceDraft(
            request_id=request_id,
            widget=widget.slug,
            strategy=widget.strategy,
            k=k,
            sources=sources,
            outcome=outcome,
            chosen=chosen,
            customer_id=customer.pk if customer is not None else None,
            visitor=(visitor or "")[:64],
            product_id=product.pk if product is not None else None,
            history=shopper.history,
            history_events=shopper.history_events,
            experiment=str(context.get("experiment", "")),
            variant=str(context.get("variant", "")),
            cache_hits=cache_hits,
            stage_ms=[(name, round(ms, 4)) for name, ms in clock.ms.items()],  # as to_json keeps them
            warnings=warnings,
            created_ts=time.time(),
        )
    if batch is not None:
        try:
            impressions_write(batch, trace=draft)
        except Exception:  # the log must not cost the shopper their recommendations
            logger.warning("impression log failed for widget %s", widget.slug, exc_info=True)
    for w in warnings:
        logger.info("widget %s: %s", widget.slug, w)
    if trace is not None and draft is not None:
        trace.append(draft.build())
    return recs
