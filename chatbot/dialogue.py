"""Dialogue state: what the shopper has asked for so far, and what to do next. Pure Python.

Constraints accumulate across turns ("headphones" then "under $50" then "Sony") until the shopper says
"start over" or names a different category. "cheaper"/"more premium" move the price window relative to
what was last shown; "more" pages through the same request; "similar to the second one" anchors on a
shown item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal

from .nlu import Parse


@dataclass(frozen=True)
class DialogueState:
    category_ids: tuple[int, ...] = ()
    brand_ids: tuple[int, ...] = ()
    min_price: str | None = None  # Decimal as text: the state is stored as JSON
    max_price: str | None = None
    keywords: tuple[str, ...] = ()
    shown: tuple[int, ...] = ()  # every product id shown in this conversation (not repeated on "more")
    last_items: tuple[int, ...] = ()
    last_prices: tuple[str, ...] = ()
    anchor: int | None = None  # product id for "similar to ..."
    turns: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> DialogueState:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("category_ids", "brand_ids", "keywords", "shown", "last_items", "last_prices"):
            known[key] = tuple(known.get(key) or ())
        return cls(**known)


@dataclass(frozen=True)
class Action:
    kind: str  # greet | help | thanks | reset | recommend
    note: str = ""  # what changed, for the reply text
    exclude_shown: bool = False
    extra: dict = field(default_factory=dict)


def dialogue_next(state: DialogueState, p: Parse) -> tuple[DialogueState, Action]:
    """The next state and action for parsed message `p`."""
    turns = state.turns + 1
    if p.intent == "reset":
        return DialogueState(turns=turns), Action("reset")
    if p.intent in ("greet", "help", "thanks"):
        return replace(state, turns=turns), Action(p.intent)
    s = replace(state, turns=turns, anchor=None)
    note = ""
    if p.category_ids and set(p.category_ids) != set(state.category_ids):
        # A new category is a new request: drop the old brand/price/keywords unless restated.
        s = DialogueState(shown=state.shown, turns=turns, category_ids=p.category_ids)
        note = "new request"
    if p.brand_ids:
        s = replace(s, brand_ids=p.brand_ids)
    if p.min_price is not None or p.max_price is not None:
        s = replace(
            s,
            min_price=str(p.min_price) if p.min_price is not None else None,
            max_price=str(p.max_price) if p.max_price is not None else None,
        )
    if p.keywords and not p.category_ids and not p.brand_ids and p.intent == "recommend":
        s = replace(s, keywords=p.keywords)
    if p.intent == "cheaper" and state.last_prices:
        cheapest = min(Decimal(x) for x in state.last_prices)
        s = replace(s, max_price=str(cheapest), min_price=None)
        note = f"cheaper than {cheapest}"
    elif p.intent == "pricier" and state.last_prices:
        dearest = max(Decimal(x) for x in state.last_prices)
        s = replace(s, min_price=str(dearest), max_price=None)
        note = f"above {dearest}"
    elif p.intent == "similar":
        items = state.last_items
        if items:
            idx = p.reference if p.reference is not None else 0
            if -len(items) <= idx < len(items):
                s = replace(s, anchor=items[idx])
    return s, Action(
        "recommend", note=note, exclude_shown=p.intent in ("more", "similar", "cheaper", "pricier")
    )
