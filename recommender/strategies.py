"""Which engine serves each widget strategy: the ONE place this mapping lives.

Read by training (`manage.py train --all`, the nightly retrain: train what enabled widgets need) and by
serving (which model version's candidates a widget uses). Which engine serves a strategy, first match wins:

1. the widget's own `engine` field;
2. settings `RECSITE_STRATEGY_ENGINES` (a dict; env `RECSITE_PERSONALIZED_ENGINE=hybrid` pins the
   personalized engine for the whole installation);
3. the shop's `EngineChoice` for the strategy: a merchandiser's override, else the engine that won the
   shop's own held-out evaluation at training time (`recommender.training.engine_choice_decide`;
   candidates in `CHOICE_CANDIDATES`, all trained by `train --all`);
4. the defaults below.

Defaults and why:
    personalized     ease     strong closed-form baseline, trains in seconds on a shop catalogue (until an
                              evaluation has chosen among CHOICE_CANDIDATES)
    similar_items    content  text/attribute similarity also covers items nobody has touched yet
    bought_together  itemknn  item-item co-occurrence of the shop's weighted events (purchases weigh 8x)
    session_based    itemknn  next items from the clicks so far: works for anonymous shoppers in real time
    trending/popular/segment_popular, bandits  pop
    recently_viewed  none     read straight from the shopper's events
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import DatabaseError

from recommender.engines import REGISTRY

DEFAULT_STRATEGY_ENGINES: dict[str, str | None] = {
    "personalized": "ease",
    "similar_items": "content",
    "bought_together": "itemknn",
    "session_based": "itemknn",
    "trending": "pop",
    "popular": "pop",
    "segment_popular": "pop",
    "epsilon_greedy": "pop",
    "thompson": "pop",
    "linucb": "pop",
    "recently_viewed": None,
}

# Always trained by `train --all` / nightly: serving's last-resort fallback.
FALLBACK_ENGINE = "pop"

# Engines compared on the shop's held-out events for a strategy; the winner serves it (EngineChoice).
# Settings RECSITE_ENGINE_CHOICE_CANDIDATES ({strategy: [engines]}) replaces this per strategy.
CHOICE_CANDIDATES: dict[str, tuple[str, ...]] = {"personalized": ("ease", "itemknn", "hybrid")}

logger = logging.getLogger(__name__)
_chosen_memo: dict[str, tuple[float, str]] = {}
_chosen_lock = threading.Lock()


def choice_candidates(strategy: str) -> tuple[str, ...]:
    """Registered engines compared for `strategy` at training time (empty: the strategy has no choice)."""
    configured = getattr(settings, "RECSITE_ENGINE_CHOICE_CANDIDATES", None) or {}
    names = configured.get(strategy, CHOICE_CANDIDATES.get(strategy, ()))
    return tuple(n for n in dict.fromkeys(names) if n in REGISTRY)


def engine_choice_memo_clear() -> None:
    """Forget the memoised choices (called by the services that change one; other processes see the
    change within RECSITE_SERVING_MEMO_SECONDS)."""
    with _chosen_lock:
        _chosen_memo.clear()


def _chosen(strategy: str) -> str:
    """The shop's EngineChoice for `strategy` ("" when none), memoised per process like serving's other
    registry reads (RECSITE_SERVING_MEMO_SECONDS; 0 reads the database every time)."""
    if not choice_candidates(strategy):
        return ""
    ttl = float(getattr(settings, "RECSITE_SERVING_MEMO_SECONDS", 0.0) or 0.0)
    now = time.monotonic()
    if ttl > 0:
        with _chosen_lock:
            hit = _chosen_memo.get(strategy)
        if hit is not None and hit[0] > now:
            return hit[1]
    from .models import EngineChoice

    try:
        row = EngineChoice.objects.filter(strategy=strategy).values_list("override", "engine").first()
    except DatabaseError:  # e.g. before `migrate` created the table: serve the defaults
        logger.warning("engine choice unavailable; serving the default engine", exc_info=True)
        return ""
    engine = (row[0] or row[1]) if row else ""
    engine = engine if engine in REGISTRY else ""
    if ttl > 0:
        with _chosen_lock:
            _chosen_memo[strategy] = (now + ttl, engine)
    return engine


def strategy_engines() -> dict[str, str | None]:
    """The effective strategy -> engine map (defaults, then the shop's engine choices, then settings)."""
    mapping = dict(DEFAULT_STRATEGY_ENGINES)
    for strategy in (
        CHOICE_CANDIDATES.keys() | (getattr(settings, "RECSITE_ENGINE_CHOICE_CANDIDATES", None) or {}).keys()
    ):
        chosen = _chosen(strategy)
        if chosen:
            mapping[strategy] = chosen
    mapping.update(getattr(settings, "RECSITE_STRATEGY_ENGINES", {}) or {})
    return mapping


def strategy_engine(strategy: str, *, override: str = "") -> str | None:
    """The engine a widget with `strategy` (and optional per-widget `override`) is served by.

    None when the strategy needs no trained model (recently viewed). Unknown strategies fall back to
    popularity rather than failing (serving must never 500 on a misconfigured widget).
    """
    if override:
        return override
    pinned = getattr(settings, "RECSITE_STRATEGY_ENGINES", {}) or {}
    if strategy in pinned:
        return pinned[strategy]
    chosen = _chosen(strategy)
    if chosen:
        return chosen
    return DEFAULT_STRATEGY_ENGINES.get(strategy, FALLBACK_ENGINE)


def strategy_engine_chooses(strategy: str) -> bool:
    """Whether the shop's evaluation decides this strategy's engine (not pinned by settings)."""
    pinned = getattr(settings, "RECSITE_STRATEGY_ENGINES", {}) or {}
    return bool(choice_candidates(strategy)) and strategy not in pinned


def widget_engines(widget: object) -> list[str]:
    """Engines one widget needs: its strategy's (or its override) and its fallback strategy's."""
    names = [
        strategy_engine(widget.strategy, override=widget.engine or ""),
        strategy_engine(widget.fallback_strategy),
    ]
    return [n for n in dict.fromkeys(names) if n]


def engines_needed(widgets: Iterable[object]) -> list[str]:
    """Registered engines the given widgets need, plus the popularity fallback, in a stable order.

    A widget whose strategy's engine is chosen by evaluation (no per-widget engine) needs every candidate
    of that choice, so that each run compares them all on the same held-out events.
    Names that are not registered engines (a typo in a widget's engine field) are skipped here;
    widget validation reports them to the merchandiser.
    """
    names: list[str] = []
    for widget in widgets:
        names.extend(widget_engines(widget))
        if not (widget.engine or "") and strategy_engine_chooses(widget.strategy):
            names.extend(choice_candidates(widget.strategy))
    names.append(FALLBACK_ENGINE)
    return [n for n in dict.fromkeys(names) if n in REGISTRY]
