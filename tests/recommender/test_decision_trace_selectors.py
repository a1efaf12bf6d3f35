"""Stored decision traces: the selectors H3's support console reads, and the retention purge."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import DecisionTraceRecord, Widget
from recommender.selectors import decision_trace_get, decision_traces_list
from recommender.services import decision_traces_purge
from recommender.serving.trace import DecisionTrace, ItemTrace, RuleEffect, SourceScore
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _widget(slug: str = "home") -> Widget:
    return Widget.objects.get_or_create(
        slug=slug, defaults={"title": slug, "placement": "home", "strategy": "trending"}
    )[0]


def _store(*, widget: Widget, customer=None, visitor: str = "", age_days: float = 0.0) -> DecisionTrace:
    rid = str(uuid.uuid4())
    trace = DecisionTrace(
        request_id=rid,
        widget=widget.slug,
        strategy=widget.strategy,
        k=2,
        items=(
            ItemTrace(
                product_id=7,
                score=1.5,
                engine="trending",
                sources=(SourceScore("trending", 1.5, 1),),
                rules=(RuleEffect("boost_brands", "Boost brands ×2", "boosted", 1, 0),),
                slot=0,
                reason="Trending now",
            ),
        ),
        removed=(ItemTrace(product_id=9, score=0.1, engine="trending", removed_by="In stock only"),),
        customer_id=customer.pk if customer else None,
        visitor=visitor,
        history=(3, 4),
        history_events=("view", "purchase"),
    )
    DecisionTraceRecord.objects.create(
        request_id=uuid.UUID(rid),
        widget=widget,
        customer=customer,
        visitor_id=visitor,
        created_at=timezone.now() - timedelta(days=age_days),
        trace=trace.to_json(),
    )
    return trace


def test_decision_trace_get_round_trips_and_unknown_ids_are_none():
    # given
    stored = _store(widget=_widget(), visitor="v1")
    # when
    got = decision_trace_get(request_id=stored.request_id)
    # then
    assert got == stored
    assert got.item(9).removed_by == "In stock only"
    assert decision_trace_get(request_id=uuid.uuid4()) is None
    assert decision_trace_get(request_id="not-a-uuid") is None


def test_decision_traces_list_filters_by_shopper_and_widget_newest_first():
    home, cart = _widget("home"), _widget("cart")
    alice = CustomerFactory()
    old = _store(widget=home, customer=alice, age_days=2)
    new = _store(widget=cart, customer=alice, age_days=1)
    _store(widget=home, visitor="someone-else")
    anon = _store(widget=home, visitor="v-anon")

    assert [t.request_id for t in decision_traces_list(customer_id=alice.pk)] == [
        new.request_id,
        old.request_id,
    ]
    assert [t.request_id for t in decision_traces_list(customer_id=alice.pk, widget="home")] == [
        old.request_id
    ]
    assert [t.request_id for t in decision_traces_list(visitor="v-anon")] == [anon.request_id]
    assert len(decision_traces_list(customer_id=alice.pk, limit=1)) == 1
    assert decision_traces_list(customer_id=alice.pk + 1000) == []


def test_decision_traces_purge_deletes_only_rows_past_retention(settings):
    settings.RECSITE_TRACE_RETENTION_DAYS = 90
    w = _widget()
    kept = _store(widget=w, visitor="a", age_days=89)
    _store(widget=w, visitor="b", age_days=91)

    assert decision_traces_purge() == 1
    assert [t.request_id for t in decision_traces_list()] == [kept.request_id]
    assert decision_traces_purge(older_than_days=0) == 0  # 0 keeps everything
    assert decision_traces_purge(older_than_days=1) == 1
