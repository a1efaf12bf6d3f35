"""Widget configuration as serving reads it: the enabled widget with its enabled rules, through the shared
cache (RECSITE_WIDGET_CACHE_SECONDS, default 10) and a per-process memo (RECSITE_SERVING_MEMO_SECONDS,
default 5; 0 = off, as the test settings do).

A save of a widget or of one of its rules shows at once in the saving process (the memo is cleared and
the shared entry dropped, again when the transaction commits), and within about a second in the other
processes (the widget generation they poll, `recommender.serving.cache.generations_poll`); within the
memo's TTL when the cache is down.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.db.models.signals import post_delete, post_save

from recsite.memo import Memo

from ..models import Widget, WidgetRule
from ..rules import RuleSpec
from .cache import (
    WIDGET_GENERATION_KEY,
    cache_delete,
    cache_get,
    cache_incr,
    cache_set,
    generation_listen,
    generations_poll,
)

WIDGET_CACHE_PREFIX = "rs:widget:"


def serving_memo_seconds() -> float:
    return float(getattr(settings, "RECSITE_SERVING_MEMO_SECONDS", 5.0))


# slug -> Widget | None (unknown slugs are memoised too; bounded)
_widgets_memo: Memo[Widget | None] = Memo(maxsize=1000, ttl=serving_memo_seconds)
generation_listen("widgets", _widgets_memo.clear)


def widget_cache_key(slug: str) -> str:
    return f"{WIDGET_CACHE_PREFIX}{slug}"


def widget_get_enabled(*, slug: str) -> Widget | None:
    """The enabled widget `slug` with its enabled rules prefetched and its pinned version joined, or None.

    Read through the shared cache for RECSITE_WIDGET_CACHE_SECONDS (default 10): serving a widget then costs
    one cache read instead of two queries. Saves drop the entry (see the module docstring). A dead cache
    falls back to the database.
    """
    ttl = int(getattr(settings, "RECSITE_WIDGET_CACHE_SECONDS", 10))
    key = widget_cache_key(slug)
    if ttl > 0:
        hit = cache_get(key)
        if hit is not None:
            return hit or None  # False: cached "no such enabled widget"
    widget = (
        Widget.objects.select_related("model_version")
        .prefetch_related(Prefetch("rules", queryset=WidgetRule.objects.filter(enabled=True)))
        .filter(slug=slug, enabled=True)
        .first()
    )
    if ttl > 0:
        cache_set(key, widget if widget is not None else False, ttl)
    return widget


def widget_enabled_get(slug: str) -> Widget | None:
    """`widget_get_enabled`, memoised per process (bounds in the module docstring)."""
    if serving_memo_seconds() <= 0:
        return widget_get_enabled(slug=slug)
    generations_poll()
    hit = _widgets_memo.get(slug, _widgets_memo)
    if hit is not _widgets_memo:
        return hit
    widget = widget_get_enabled(slug=slug)
    _widgets_memo.set(slug, widget)
    return widget


def widget_cache_forget(*, slugs: list[str]) -> None:
    """Drop cached widget configurations from the shared cache (after the admin saved them; this process's
    memo is cleared by the save's signal)."""
    for slug in slugs:
        cache_delete(widget_cache_key(slug))


def widget_memo_clear() -> None:
    _widgets_memo.clear()


def widget_rules(widget: Widget) -> list[RuleSpec]:
    """The widget's enabled rules as pure `RuleSpec`s (prefetched ones when the widget came with them)."""
    rules = getattr(widget, "_prefetched_objects_cache", {}).get("rules")
    if rules is None:
        rules = WidgetRule.objects.filter(widget=widget, enabled=True).order_by("position", "id")
    return [RuleSpec(kind=r.kind, params=r.params or {}, position=r.position) for r in rules if r.enabled]


def _widget_changed(sender: Any, instance: Any, **_: Any) -> None:
    """post_save / post_delete of a Widget or WidgetRule: forget this process's memo now, and once the
    transaction commits drop the widget's shared cache entry and bump the generation other processes poll."""
    _widgets_memo.clear()
    try:
        slug = instance.slug if sender is Widget else Widget.objects.get(pk=instance.widget_id).slug
    except Exception:  # the widget is being deleted with its rules: nothing left to serve
        slug = None

    def forget() -> None:
        if slug is not None:
            cache_delete(widget_cache_key(slug))

    def committed() -> None:
        forget()  # again: a request between the save and the commit may have cached the old row
        _widgets_memo.clear()
        cache_incr(WIDGET_GENERATION_KEY)

    forget()
    transaction.on_commit(committed)


for _model in (Widget, WidgetRule):
    post_save.connect(_widget_changed, sender=_model, dispatch_uid=f"serving-memo-save-{_model.__name__}")
    post_delete.connect(_widget_changed, sender=_model, dispatch_uid=f"serving-memo-delete-{_model.__name__}")
