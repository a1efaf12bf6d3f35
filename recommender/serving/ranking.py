"""Stage 3, ranking: the candidate sources' items become one ordered pool of `Candidate`s.

Each source's items join the pool with the source's tier (0 = the widget's own strategy, 1.. = the
fallbacks taken after it), so ordering is (tier, -score): a fallback never outranks the strategy's own
items through a different score scale. An item already in the pool keeps its first (better-tier) entry;
the product on screen never recommends itself. Reason labels are resolved here ("Because you viewed X",
"Popular in {category}" filled from the item's category).

The learned ranker (the hybrid engine, LightGBM LambdaRank) ranks inside its own `recommend`: its
candidates arrive here already scored by it. Its named features and their contributions are not computed
on the serving path; `recommender.explain` recomputes them from the trace's model version and history.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..rules import Candidate, ProductAttrs
from .candidates import CandidateSource


def reason_fill(template: str, attrs: ProductAttrs | None) -> str:
    """The source's default reason for one item ("{category}" -> the item's category name)."""
    if "{category}" in template:
        return (
            template.format(category=attrs.category_name)
            if attrs and attrs.category_name
            else "Popular right now"
        )
    return template


def source_new_items(
    src: CandidateSource, *, have: set[int], exclude: Iterable[int], n: int
) -> list[tuple[int, float]]:
    """The source's first n items not in the pool yet and not excluded (the product on screen)."""
    skip = have.union(exclude) if exclude else have
    return [(p, s) for p, s in src.items if p not in skip][:n]


def attrs_needed(
    src: CandidateSource, new: list[tuple[int, float]], have: dict[int, ProductAttrs]
) -> list[int]:
    """Products whose attributes the pool needs now: the new items, and the history items named in their
    reason labels (one attribute query for both)."""
    need = [p for p, _ in new if p not in have]
    if src.because_reason:
        because, reasons = src.because, src.reasons
        need += [because[p] for p, _ in new if p in because and p not in reasons and because[p] not in have]
    return need


def pool_extend(
    pool: list[Candidate],
    have: set[int],
    src: CandidateSource,
    new: list[tuple[int, float]],
    *,
    tier: int,
    attrs: dict[int, ProductAttrs],
) -> None:
    """Append `new` (from `source_new_items`) to the pool as candidates of `tier`, with their reasons.
    `attrs` holds the new items' attributes and those of the history items that drove them."""
    reasons, default, name = src.reasons, src.default_reason, src.name
    templated = "{category}" in default
    because, because_reason = src.because, src.because_reason
    for p, s in new:
        reason = reasons.get(p)
        if not reason and because_reason:
            driver = attrs.get(because.get(p, -1))
            if driver is not None:
                reason = because_reason.format(driver.title)
        if not reason:
            reason = reason_fill(default, attrs.get(p)) if templated else default
        pool.append(Candidate(product_id=p, score=s, engine=name, reason=reason, tier=tier))
        have.add(p)
