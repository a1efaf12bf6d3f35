"""Stage 4, business rules: the widget's rules (`recommender.rules`, pure) over the ranked pool.

This module only prepares what the pure rules need: the rule specs (the widget's enabled rules, or an
experiment variant's override), the shopper context (purchases, cart, the clock, k) and the product ids of
pinned SKUs; `recommender.rules.rules_apply` does the work and reports every rule's effect per item.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from ..rules import Candidate, ProductAttrs, RuleContext, RuleOutcome, RuleSpec, rules_apply
from .shopper import Shopper

__all__ = ["pinned_skus", "pins_resolve", "rule_context_make", "rules_run"]


def pinned_skus(rules: Sequence[RuleSpec]) -> list[str]:
    """SKUs the rules pin (their attributes are loaded with the first candidates)."""
    return [p["sku"] for r in rules if r.kind == "pin_skus" for p in r.params.get("pins", ())]


def pins_resolve(attrs: Mapping[int, ProductAttrs], skus: Sequence[str]) -> dict[str, int]:
    wanted = set(skus)
    return {a.sku: pid for pid, a in attrs.items() if a.sku in wanted}


def rule_context_make(shopper: Shopper, *, k: int) -> RuleContext:
    """Purchases count only with consent to personalization; the cart always (it is on screen)."""
    return RuleContext(
        purchased=shopper.purchased if shopper.personal else frozenset(),
        cart=shopper.cart,
        now_ts=time.time(),
        k=k,
    )


def rules_run(
    pool: Sequence[Candidate],
    rules: Sequence[RuleSpec],
    attrs: Mapping[int, ProductAttrs],
    ctx: RuleContext,
    pinned_ids: Mapping[str, int],
) -> RuleOutcome:
    return rules_apply(pool, rules, attrs, ctx, pinned_ids=pinned_ids)
