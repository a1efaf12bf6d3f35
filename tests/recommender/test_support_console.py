"""The support console: lookup by every key, bad and unknown lookups, the timeline, the lists shown, a
decision trace page (waterfall, history items, rules, then and now) and the per-model-version view.

Explanations come from `recommender.explanations.trace_explain`; these tests put a small stand-in with
known contributions in its place (`fake_explainer`), so what the console renders can be checked exactly.
"""

from __future__ import annotations

import sys
import types
import uuid
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from catalog.models import Visitor
from chatbot.models import Conversation, Message
from recommender.models import DecisionTraceRecord, Impression, ModelVersion, Widget
from recommender.serving.trace import DecisionTrace, ItemTrace, RuleEffect, SourceScore
from recommender.support.charts import bars_svg, beeswarm_svg, waterfall_svg
from recommender.support.selectors import (
    ShopperNotFound,
    model_version_attributions,
    shopper_get,
    shopper_timeline,
    shoppers_find,
)
from recsite.roles import SUPPORT
from tests.factories import CustomerFactory, EventFactory, OrderFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class _FakeExplanation:
    data: dict

    def as_json(self) -> dict:
        return self.data


def fake_trace_explain(*, trace: DecisionTrace) -> _FakeExplanation:
    """Contributions: the first history item +0.6 per unit of slot-order weight, a ranker feature -0.1;
    base 0.5; base + sum = the item's score, as the real contract requires."""
    items = []
    for it in trace.items:
        hist = trace.history[-1] if trace.history else None
        contribs = [
            {"name": f"because you viewed product {hist}", "value": it.score - 0.5 + 0.1, "product_id": hist},
            {"name": "Price", "value": -0.1, "feature_value": 19.99},
        ]
        items.append(
            {
                "product_id": it.product_id,
                "sku": "",
                "position": it.slot,
                "score": it.score,
                "base_value": 0.5,
                "contributions": contribs,
                "sources": [s.source for s in it.sources],
                "rules": [r.label for r in it.rules],
                "method": "exact-linear",
                "score_kind": "engine score",
                "summary": f"Recommended mainly because of product {hist}.",
            }
        )
    return _FakeExplanation(
        {"widget": trace.widget, "model_versions": list(trace.model_versions), "items": items, "removed": []}
    )


@pytest.fixture
def fake_explainer(monkeypatch):
    module = types.ModuleType("recommender.explanations")
    module.trace_explain = fake_trace_explain
    monkeypatch.setitem(sys.modules, "recommender.explanations", module)
    return module


@pytest.fixture
def support_client(client):
    user = UserFactory(username="support-test", is_staff=True)
    user.groups.set([Group.objects.get(name=SUPPORT)])
    client.force_login(user)
    return client


@pytest.fixture
def shop():
    """A customer with an account email, a browser, events, an order, a chat, and one served list whose
    decision trace is stored (boosted item, removed item, history)."""
    now = timezone.now()
    user = UserFactory(username="jane", email="jane@example.com")
    customer = CustomerFactory(external_id="ext-jane", user=user)
    Visitor.objects.create(id="browser-jane", customer=customer)
    products = [ProductFactory(title=f"Thing {i}") for i in range(6)]
    EventFactory(product=products[0], customer=customer, visitor_id="browser-jane", type="view")
    order = OrderFactory(customer=customer, email="jane.orders@example.com", total=Decimal("40.00"))
    anon_order = OrderFactory(customer=None, visitor_id="anon-1", email="anon@example.com")
    conversation = Conversation.objects.create(customer=customer)
    Message.objects.create(conversation=conversation, role="user", text="looking for a lamp")
    version = ModelVersion.objects.create(engine="ease", status=ModelVersion.Status.ACTIVE, promoted_at=now)
    widget = Widget.objects.create(
        slug="home-recs",
        title="Home picks",
        placement="home",
        strategy="popular",
        fallback_strategy="trending",
    )
    request_id = uuid.uuid4()
    trace = DecisionTrace(
        request_id=str(request_id),
        widget=widget.slug,
        strategy="personalized",
        k=2,
        items=(
            ItemTrace(
                product_id=products[1].pk,
                score=0.9,
                engine="ease",
                sources=(SourceScore("ease", 0.9, 1, version.pk),),
                rules=(RuleEffect("boost_brands", "Boost brands ×2", "boosted", 1, 0, "brand Acme"),),
                slot=0,
                reason="Because you viewed Thing 0",
            ),
            ItemTrace(
                product_id=products[2].pk,
                score=0.7,
                engine="ease",
                sources=(SourceScore("ease", 0.7, 2, version.pk),),
                slot=1,
            ),
        ),
        removed=(
            ItemTrace(
                product_id=products[3].pk,
                score=0.8,
                engine="ease",
                removed_by="Exclude out of stock",
                rules=(RuleEffect("exclude_oos", "Exclude out of stock", "filtered", 1, None),),
            ),
        ),
        customer_id=customer.pk,
        history=(products[0].pk,),
        history_events=("view",),
        model_versions=(("ease", version.pk),),
        created_ts=now.timestamp(),
    )
    impressions = [
        Impression.objects.create(
            request_id=request_id,
            widget=widget,
            product=it.product_id and products[[p.pk for p in products].index(it.product_id)],
            customer=customer,
            position=it.slot,
            engine="ease",
            created_at=now,
        )
        for it in trace.items
    ]
    DecisionTraceRecord.objects.create(
        request_id=request_id, widget=widget, customer=customer, created_at=now, trace=trace.to_json()
    )
    return types.SimpleNamespace(
        customer=customer,
        products=products,
        order=order,
        anon_order=anon_order,
        widget=widget,
        version=version,
        trace=trace,
        request_id=str(request_id),
        impressions=impressions,
    )


# ------------------------------------------------------------------------------------------ lookup


@pytest.mark.parametrize(
    ("query", "kind", "matched"),
    [
        ("jane@example.com", "auto", "account email"),
        ("JANE@example.com", "email", "account email"),
        ("jane.orders@example.com", "auto", "email on order"),
        ("ext-jane", "auto", "external id"),
        ("ext-jane", "customer", "external id"),
    ],
)
def test_lookup_finds_the_customer(shop, query, kind, matched):
    refs = shoppers_find(query=query, kind=kind)
    assert [r.customer_id for r in refs] == [shop.customer.pk]
    assert refs[0].matched_by.startswith(matched)


def test_lookup_by_customer_pk_order_number_and_impression(shop):
    assert shoppers_find(query=f"#{shop.customer.pk}", kind="customer")[0].customer_id == shop.customer.pk
    assert shoppers_find(query=str(shop.order.pk), kind="order")[0].customer_id == shop.customer.pk
    imp = shoppers_find(query=str(shop.impressions[1].pk), kind="impression")[0]
    assert imp.customer_id == shop.customer.pk and imp.request_id == shop.request_id
    by_request = shoppers_find(query=shop.request_id)[0]
    assert by_request.customer_id == shop.customer.pk and by_request.request_id == shop.request_id


def test_lookup_of_an_anonymous_order_finds_the_visitor(shop):
    refs = shoppers_find(query="anon@example.com")
    assert refs[0].customer_id is None and refs[0].visitor_id == "anon-1"
    assert shoppers_find(query=f"#{shop.anon_order.pk}", kind="order")[0].visitor_id == "anon-1"


@pytest.mark.parametrize(
    ("query", "kind", "error", "message"),
    [
        ("", "auto", ValueError, "Type an email"),
        ("   ", "email", ValueError, "Type an email"),
        ("abc", "order", ValueError, "An order number is digits"),
        ("12345", "impression", ValueError, "An impression or request id looks like"),
        ("jane", "email", ValueError, "is not an email address"),
        ("ext-jane", "phone", ValueError, "Unknown lookup kind 'phone'"),
        ("x" * 300, "auto", ValueError, "too long"),
        ("nobody@example.com", "auto", ShopperNotFound, "No shopper matches 'nobody@example.com'"),
        ("999999", "order", ShopperNotFound, "No shopper matches '999999' as order number"),
        (str(uuid.uuid4()), "auto", ShopperNotFound, "No shopper matches"),
    ],
)
def test_bad_and_unknown_lookups_say_why(shop, query, kind, error, message):
    with pytest.raises(error, match=message):
        shoppers_find(query=query, kind=kind)


def test_lookup_page_redirects_to_the_one_match(support_client, shop):
    response = support_client.get(reverse("support:lookup"), {"q": "jane@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("support:customer", args=[shop.customer.pk])
    response = support_client.get(reverse("support:lookup"), {"q": str(shop.impressions[0].pk)})
    assert response["Location"].endswith(f"?rid={shop.request_id}")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": ""}, "Type an email"),
        ({"q": "nobody@example.com"}, "No shopper matches"),
        ({"q": "abc", "kind": "order"}, "An order number is digits"),
        ({"q": "x", "kind": "<script>"}, "Unknown lookup kind"),
    ],
)
def test_lookup_page_shows_bad_input_without_a_500(support_client, shop, params, message):
    response = support_client.get(reverse("support:lookup"), params)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "<script>" not in response.content.decode()


def test_lookup_page_lists_several_matches(support_client, shop):
    other = CustomerFactory(external_id=str(shop.customer.pk))  # an external id that is another's pk
    response = support_client.get(reverse("support:lookup"), {"q": str(shop.customer.pk), "kind": "customer"})
    body = response.content.decode()
    assert response.status_code == 200 and "2 shoppers match" in body
    assert reverse("support:customer", args=[other.pk]) in body
    assert reverse("support:customer", args=[shop.customer.pk]) in body


# ---------------------------------------------------------------------------------------- timeline


def test_timeline_has_events_orders_lists_and_chat(shop):
    shopper = shopper_get(customer_id=shop.customer.pk)
    assert shopper.emails == ("jane.orders@example.com", "jane@example.com")
    kinds = {e.kind for e in shopper_timeline(shopper=shopper)}
    assert kinds == {"event", "order", "recommendations", "chat"}
    chat = [e for e in shopper_timeline(shopper=shopper) if e.kind == "chat"][0]
    assert "looking for a lamp" in chat.title
    rec = [e for e in shopper_timeline(shopper=shopper) if e.kind == "recommendations"][0]
    assert rec.request_id == shop.request_id and "Home picks" in rec.title


def test_timeline_leaves_out_what_the_viewer_may_not_see(shop):
    shopper = shopper_get(customer_id=shop.customer.pk)
    kinds = {e.kind for e in shopper_timeline(shopper=shopper, permissions={"catalog.view_event"})}
    assert kinds == {"event"}


def test_unknown_shopper(support_client):
    with pytest.raises(ShopperNotFound, match="No customer #424242"):
        shopper_get(customer_id=424242)
    with pytest.raises(ShopperNotFound, match="No activity recorded for visitor 'ghost'"):
        shopper_get(visitor="ghost")
    response = support_client.get(reverse("support:customer", args=[424242]))
    assert response.status_code == 404 and "No customer #424242" in response.content.decode()
    response = support_client.get(reverse("support:visitor", args=["ghost"]))
    assert response.status_code == 404 and "No activity recorded" in response.content.decode()


def test_shopper_page_shows_lists_and_timeline(support_client, shop):
    response = support_client.get(reverse("support:customer", args=[shop.customer.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Home picks" in body and "Thing 1; Thing 2" in body
    assert reverse("support:trace", args=[shop.request_id]) in body
    assert "looking for a lamp" in body and f"Order #{shop.order.pk}" in body
    visitor_page = support_client.get(reverse("support:visitor", args=["anon-1"]))
    assert visitor_page.status_code == 200 and f"Order #{shop.anon_order.pk}" in visitor_page.content.decode()


# ------------------------------------------------------------------------------------------- traces


def test_trace_page_explains_then_and_now(support_client, shop, fake_explainer):
    response = support_client.get(reverse("support:trace", args=[shop.request_id]))
    body = response.content.decode()
    assert response.status_code == 200
    then = body[body.index('id="rs-then"') : body.index('id="rs-now"')]
    # a waterfall per shown item, with the contributions and the base value
    assert then.count('class="rs-waterfall"') == 2
    assert f"because you viewed product {shop.products[0].pk}" in then and "Price" in then
    # the history item that drove it, the rule that moved it, the removed item and the rule that removed it
    assert "History items that drove it" in then and "Thing 0" in then
    assert "Boost brands ×2: boosted (#2 → #1)" in then
    assert "removed by Exclude out of stock" in then
    assert "Recommended mainly because of product" in then
    # now: served again (popular strategy, no impressions logged), explained the same way
    assert 'id="rs-then-now"' in body and "rs-waterfall" in body[body.index('id="rs-now"') :]
    assert Impression.objects.count() == 2 and DecisionTraceRecord.objects.count() == 1


def test_trace_page_without_an_explainer_still_shows_the_trace(support_client, shop, monkeypatch):
    monkeypatch.setitem(sys.modules, "recommender.explanations", None)  # import fails
    response = support_client.get(reverse("support:trace", args=[shop.request_id]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Explanations are not available" in body and "Boost brands ×2" in body


def test_trace_page_reports_an_explainer_failure(support_client, shop, fake_explainer):
    def broken(*, trace):
        raise RuntimeError("artifact of v7 is missing")

    fake_explainer.trace_explain = broken
    response = support_client.get(reverse("support:trace", args=[shop.request_id]))
    assert response.status_code == 200
    assert "Could not explain this list: artifact of v7 is missing" in response.content.decode()


@pytest.mark.parametrize(
    ("request_id", "message"),
    [
        ("not-a-uuid", "is not a request id"),
        (str(uuid.uuid4()), "no list with this request id was shown"),
    ],
)
def test_trace_page_for_unknown_requests(support_client, shop, request_id, message):
    response = support_client.get(reverse("support:trace", args=[request_id]))
    assert response.status_code == 404 and message in response.content.decode()


def test_trace_page_for_a_list_whose_trace_was_purged(support_client, shop):
    DecisionTraceRecord.objects.all().delete()
    response = support_client.get(reverse("support:trace", args=[shop.request_id]))
    assert response.status_code == 404
    assert "purged after the retention period" in response.content.decode()


def test_now_is_reported_when_the_widget_is_gone(support_client, shop, fake_explainer):
    DecisionTraceRecord.objects.filter(request_id=shop.request_id).update(
        trace={**shop.trace.to_json(), "widget": "deleted-widget"}
    )
    response = support_client.get(reverse("support:trace", args=[shop.request_id]))
    assert response.status_code == 200
    assert "Widget &#x27;deleted-widget&#x27; no longer exists" in response.content.decode()


# --------------------------------------------------------------------------------------- model view


def test_model_attributions_aggregate_the_versions_items(shop, fake_explainer):
    res = model_version_attributions(version=shop.version, sample=10)
    assert (res.n_lists, res.n_items) == (1, 2)
    by_name = {f.name: f for f in res.features}
    # history contributions are grouped, and mean |value| is over the version's items
    assert by_name["history item"].mean_abs == pytest.approx(((0.9 - 0.4) + (0.7 - 0.4)) / 2)
    assert by_name["Price"].mean_abs == pytest.approx(0.1) and by_name["Price"].mean == pytest.approx(-0.1)
    assert res.features[0].name == "history item"
    other = ModelVersion.objects.create(engine="ease")
    assert model_version_attributions(version=other).n_lists == 0


def test_model_pages(support_client, shop, fake_explainer):
    response = support_client.get(reverse("support:model", args=[shop.version.pk]))
    body = response.content.decode()
    assert response.status_code == 200 and 'class="rs-bars"' in body and 'class="rs-beeswarm"' in body
    compare = support_client.get(
        reverse("support:model_compare"), {"a": shop.version.pk, "b": shop.version.pk, "sample": "10"}
    )
    assert compare.status_code == 200 and compare.content.decode().count('class="rs-model"') == 2


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"a": "x", "b": "1"}, 400, "Pick two model versions"),
        ({"a": "999", "b": "998"}, 404, "No model version 999, 998"),
        ({}, 200, "Compare"),
    ],
)
def test_model_compare_bad_input(support_client, shop, params, status, message):
    response = support_client.get(reverse("support:model_compare"), params)
    assert response.status_code == status and message in response.content.decode()


def test_model_page_unknown_version_and_bad_sample(support_client, shop, fake_explainer):
    assert support_client.get(reverse("support:model", args=[999])).status_code == 404
    response = support_client.get(reverse("support:model", args=[shop.version.pk]), {"sample": "lots"})
    assert (
        response.status_code == 200
        and "sample must be a whole number from 10 to 1000" in response.content.decode()
    )


# ------------------------------------------------------------------------------------------- charts


def test_waterfall_walks_from_base_to_score():
    svg = waterfall_svg(
        base_value=1.0, contributions=[("a", 0.5), ("b", -0.25), ("c<script>", 0.1)], score=1.35
    )
    assert svg.startswith("<svg") and svg.count('class="rs-bar"') == 3
    assert "c&lt;script&gt;" in svg and "<script>" not in svg
    assert "approximate" not in svg  # additive: no gap noted
    assert "approximate" in waterfall_svg(base_value=1.0, contributions=[("a", 0.5)], score=2.0)
    many = waterfall_svg(base_value=0, contributions=[(f"f{i}", 0.1) for i in range(15)], max_rows=10)
    assert "other 5 signals" in many


def test_bars_and_beeswarm():
    assert bars_svg([("a", 0.3), ("b", 0.1)]).count('class="rs-bar"') == 2
    assert "No attributions" in bars_svg([])
    swarm = beeswarm_svg([("a", [(0.1, 1.0), (0.2, 3.0), (-0.1, None)]), ("b", [(0.0, None)])])
    assert swarm.count("<circle") == 4
    assert "No attributions" in beeswarm_svg([("a", [])])


def test_impression_list_links_to_the_explanation_for_support_only(client, shop):
    from recsite.roles import MERCHANDISERS

    url = reverse("admin:recommender_impression_changelist")
    trace_url = reverse("support:trace", args=[shop.request_id])
    support = UserFactory(username="support-imp", is_staff=True)
    support.groups.set([Group.objects.get(name=SUPPORT)])
    client.force_login(support)
    assert trace_url in client.get(url).content.decode()
    merchandiser = UserFactory(username="merch-imp", is_staff=True)
    merchandiser.groups.set([Group.objects.get(name=MERCHANDISERS)])
    client.force_login(merchandiser)
    response = client.get(url)
    assert response.status_code == 200 and trace_url not in response.content.decode()


def test_a_shopper_with_no_identity_sees_nobody_elses_data(shop):
    from recommender.support.selectors import Shopper, shopper_lists

    nobody = Shopper(None, ())
    assert shopper_timeline(shopper=nobody) == []
    assert shopper_lists(shopper=nobody) == []
