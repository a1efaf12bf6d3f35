"""Which engine serves each widget strategy: the ONE place this mapping lives.

Read by training (`manage.py train --all`, the nightly retrain: train what enabled widgets need) and by
serving (which model version's candidates a widget uses). A widget's own `engine` field overrides the
default; settings `RECSITE_STRATEGY_ENGINES` (a dict) overrides defaults per strategy, e.g.
`{"personalized": "hybrid"}` (env `RECSITE_PERSONALIZED_ENGINE=hybrid` is the common case).

Defaults and why:
    personalized     ease     strong closed-form baseline, trains in seconds on a shop catalogue
    similar_items    content  text/attribute similarity also covers items nobody has touched yet
    bought_together  itemknn  item-item co-occurrence of the shop's weighted events (purchases weigh 8x)
    session_based    itemknn  next items from the clicks so far: works for anonymous shoppers in real time
    trending/popular/segment_popular, bandits  pop
    recently_viewed  none     read straight from the shopper's events
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

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


def strategy_engines() -> dict[str, str | None]:
    """The effective strategy -> engine map (defaults overridden by settings)."""
    mapping = dict(DEFAULT_STRATEGY_ENGINES)
    mapping.update(getattr(settings, "RECSITE_STRATEGY_ENGINES", {}) or {})
    return mapping


def strategy_engine(strategy: str, *, override: str = "") -> str | None:
    """The engine a widget with `strategy` (and optional per-widget `override`) is served by.

    None when the strategy needs no trained model (recently viewed). Unknown strategies fall back to
    popularity rather than failing (serving must never 500 on a misconfigured widget).
    """
    if override:
        return override
    return strategy_engines().get(strategy, FALLBACK_ENGINE)


def widget_engines(widget: object) -> list[str]:
    """Engines one widget needs: its strategy's (or its override) and its fallback strategy's."""
    names = [
        strategy_engine(widget.strategy, override=widget.engine or ""),
        strategy_engine(widget.fallback_strategy),
    ]
    return [n for n in dict.fromkeys(names) if n]


def engines_needed(widgets: Iterable[object]) -> list[str]:
    """Registered engines the given widgets need, plus the popularity fallback, in a stable order.

    Names that are not registered engines (a typo in a widget's engine field) are skipped here;
    widget validation reports them to the merchandiser.
    """
    names: list[str] = []
    for widget in widgets:
        names.extend(widget_engines(widget))
    names.append(FALLBACK_ENGINE)
    return [n for n in dict.fromkeys(names) if n in REGISTRY]
