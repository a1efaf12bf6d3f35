"""Understanding a shopper's chat message: intent and slots. Pure Python, no Django.

Rule-based on purpose: the vocabulary (category and brand names) comes from the shop's own catalogue,
prices and intents from patterns, so it works offline, instantly, and explains itself. The semantic
side (what fits the shopper) is the recommender's job, not the parser's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

INTENTS = ("greet", "help", "thanks", "reset", "cheaper", "pricier", "similar", "more", "recommend")

_NUM = r"\$?\s*(\d{1,7}(?:[.,]\d{1,2})?)\s*(?:\$|usd|dollars?|bucks)?"
_BETWEEN = re.compile(rf"(?:between|from)\s+{_NUM}\s+(?:and|to|-)\s+{_NUM}", re.I)
_RANGE = re.compile(rf"{_NUM}\s*(?:-|to)\s*{_NUM}", re.I)
_UNDER = re.compile(
    rf"(?:under|below|less than|cheaper than|max(?:imum)?|at most|up to|no more than|<)\s*{_NUM}", re.I
)
_OVER = re.compile(rf"(?:over|above|more than|at least|min(?:imum)?|from|>)\s*{_NUM}", re.I)
_WORD = re.compile(r"[a-z0-9][a-z0-9+\-']*")

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("reset", re.compile(r"\b(start over|reset|clear (?:it|all|filters)|forget it|new search)\b", re.I)),
    ("thanks", re.compile(r"^\s*(thanks|thank you|thx|cheers|great,? thanks)\b", re.I)),
    ("help", re.compile(r"^\s*(help|what can you do|how does this work)\b|\?\s*help\b", re.I)),
    ("cheaper", re.compile(r"\b(cheaper|less expensive|lower price|too expensive|budget option)\b", re.I)),
    (
        "pricier",
        re.compile(r"\b(more premium|higher end|high-end|better quality|pricier|more expensive)\b", re.I),
    ),
    (
        "similar",
        re.compile(
            r"\b(similar|like (?:the|that|this) (?:one|first|second|third|last)|alternatives?)\b", re.I
        ),
    ),
    ("more", re.compile(r"^\s*(more|show (?:me )?more|others?|anything else|next)\b", re.I)),
    ("greet", re.compile(r"^\s*(hi|hello|hey|good (?:morning|afternoon|evening))\b[\s!.]*$", re.I)),
)
_ORDINALS = {
    "first": 0,
    "1st": 0,
    "second": 1,
    "2nd": 1,
    "third": 2,
    "3rd": 2,
    "fourth": 3,
    "4th": 3,
    "last": -1,
}
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "i",
        "im",
        "i'm",
        "me",
        "my",
        "for",
        "to",
        "of",
        "and",
        "or",
        "with",
        "in",
        "on",
        "some",
        "any",
        "please",
        "want",
        "need",
        "looking",
        "look",
        "show",
        "find",
        "get",
        "buy",
        "recommend",
        "suggest",
        "something",
        "gift",
        "good",
        "best",
        "new",
        "cheap",
        "under",
        "below",
        "over",
        "above",
        "less",
        "more",
        "than",
        "between",
        "from",
        "up",
        "at",
        "most",
        "least",
        "price",
        "dollars",
        "dollar",
        "usd",
        "bucks",
        "can",
        "you",
        "could",
        "would",
        "like",
        "is",
        "are",
        "it",
        "its",
        "that",
        "this",
        "one",
        "ones",
    ]
)


@dataclass(frozen=True)
class Vocabulary:
    """Lower-case name -> id for the catalogue's categories and brands (plural/singular both work)."""

    categories: dict[str, int] = field(default_factory=dict)
    brands: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Parse:
    intent: str
    category_ids: tuple[int, ...] = ()
    brand_ids: tuple[int, ...] = ()
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    keywords: tuple[str, ...] = ()
    reference: int | None = None  # "like the second one" -> 1 (index into the last shown items)


def _price(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _match(text: str, names: dict[str, int]) -> tuple[list[int], str]:
    """Ids of names found in text (longest names first; singular/plural tolerant) and the text without them."""
    found: list[int] = []
    lowered = f" {text.lower()} "
    for name in sorted(names, key=len, reverse=True):
        variants = {name, _singular(name), name + "s"}
        for v in variants:
            pattern = re.compile(rf"(?<![a-z0-9]){re.escape(v)}(?![a-z0-9])")
            if pattern.search(lowered):
                if names[name] not in found:
                    found.append(names[name])
                lowered = pattern.sub(" ", lowered)
                break
    return found, lowered


def parse(text: str, vocab: Vocabulary) -> Parse:
    """Intent and slots of one message. Raises ValueError for empty text."""
    if not text or not text.strip():
        raise ValueError("empty message")
    intent = "recommend"
    for name, pattern in _PATTERNS:
        if pattern.search(text):
            intent = name
            break
    min_price = max_price = None
    rest = text
    for pattern in (_BETWEEN, _RANGE):
        m = pattern.search(rest)
        if m:
            lo, hi = _price(m.group(1)), _price(m.group(2))
            if lo is not None and hi is not None:
                min_price, max_price = min(lo, hi), max(lo, hi)
            rest = rest[: m.start()] + " " + rest[m.end() :]
            break
    if max_price is None:
        m = _UNDER.search(rest)
        if m:
            max_price = _price(m.group(1))
            rest = rest[: m.start()] + " " + rest[m.end() :]
    if min_price is None:
        m = _OVER.search(rest)
        if m:
            min_price = _price(m.group(1))
            rest = rest[: m.start()] + " " + rest[m.end() :]
    brand_ids, rest = _match(rest, vocab.brands)
    category_ids, rest = _match(rest, vocab.categories)
    reference = None
    if intent == "similar":
        for word, idx in _ORDINALS.items():
            if re.search(rf"\b{word}\b", text, re.I):
                reference = idx
                break
    keywords = tuple(
        w
        for w in _WORD.findall(rest.lower())
        if w not in _STOP and len(w) > 2 and not w.isdigit() and w not in _ORDINALS
    )
    if intent in ("greet", "thanks", "help") and (category_ids or brand_ids or max_price or min_price):
        intent = "recommend"  # "hi, I need headphones under $50" is a request, not small talk
    return Parse(intent, tuple(category_ids), tuple(brand_ids), min_price, max_price, keywords[:6], reference)
