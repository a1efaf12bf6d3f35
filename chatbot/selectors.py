"""Reads of chat conversations for other parts of the site (the support console's timeline)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q
from django.urls import reverse

from recommender.support.timeline import TimelineEntry

from .models import Message


def chat_timeline(customer_id: int | None, visitors: Sequence[str], limit: int) -> list[TimelineEntry]:
    """The shopper's chat messages (theirs and the assistant's), newest first, at most `limit`; each
    links to its conversation's transcript in the admin. A `recommender.support` timeline source."""
    who = Q()
    if customer_id is not None:
        who |= Q(conversation__customer_id=customer_id)
    if visitors:
        who |= Q(conversation__visitor_id__in=list(visitors))
    if not who:
        return []
    rows = Message.objects.filter(who).order_by("-created_at", "-id")[:limit]
    out = []
    for m in rows:
        shown = len(m.items or ())
        detail = f"showed {shown} product{'s' if shown != 1 else ''}" if shown else ""
        text = m.text if len(m.text) <= 160 else m.text[:159] + "…"
        out.append(
            TimelineEntry(
                m.created_at,
                "chat",
                f"{m.get_role_display()}: {text}",
                detail,
                reverse("admin:chatbot_conversation_change", args=[m.conversation_id]),
            )
        )
    return out
