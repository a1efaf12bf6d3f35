"""Timeline entries and the hook through which other apps add theirs.

The recommender owns the console but not every kind of shopper data: the chatbot (which imports the
recommender, never the other way round) registers its conversations in `ChatbotConfig.ready()` with
`timeline_source_register`. Each source names the permission a staff user needs to see its entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a shopper. `url` opens it in the admin; `request_id` is set for a
    recommendation list (it opens the decision trace)."""

    at: datetime
    kind: str  # "event", "order", "recommendations", "chat", ...
    title: str
    detail: str = ""
    url: str = ""
    request_id: str = ""


# fetch(customer_id, visitor_ids, limit) -> entries, newest first
TimelineFetch = Callable[[int | None, Sequence[str], int], list[TimelineEntry]]


@dataclass(frozen=True)
class TimelineSource:
    name: str
    permission: str  # "app_label.codename" a user needs to see these entries
    fetch: TimelineFetch


_SOURCES: dict[str, TimelineSource] = {}


def timeline_source_register(*, name: str, permission: str, fetch: TimelineFetch) -> None:
    """Add (or replace, by name) a source of timeline entries."""
    _SOURCES[name] = TimelineSource(name=name, permission=permission, fetch=fetch)


def timeline_source_unregister(*, name: str) -> None:
    _SOURCES.pop(name, None)


def timeline_sources() -> list[TimelineSource]:
    return list(_SOURCES.values())
