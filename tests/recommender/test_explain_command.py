"""`manage.py explain`: text and JSON, for what a customer would see now and for a past impression; the
JSON contract (additivity per item); clear errors for every bad argument. Uses the real serving pipeline,
a real item-kNN model version and the real `recommender.explanations.trace_explain`."""

from __future__ import annotations

import json
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from recommender.models import DecisionTraceRecord, Impression, WidgetRule
from recommender.serving import recommendations_get
from tests.factories import CustomerFactory
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(model_strategies):
    shop = shop_create()
    model_version_make(engine="itemknn", shop=shop)
    widget = widget_make("home-picks", strategy="personalized", num_items=4)
    WidgetRule.objects.create(
        widget=widget, kind="boost_brands", params={"brands": [shop.brands[1].pk], "factor": 50}
    )
    customer = shop.customers[0]
    recs = recommendations_get(widget=widget, customer=customer)  # logged: impressions + trace stored
    assert recs and DecisionTraceRecord.objects.count() == 1
    return shop, widget, customer, recs


def _run(*args: str) -> str:
    out = StringIO()
    call_command("explain", *args, stdout=out)
    return out.getvalue()


def _assert_contract(data: dict) -> None:
    assert {"widget", "model_versions", "items", "removed"} <= set(data)
    assert data["items"], "a list with items"
    for item in data["items"] + data["removed"]:
        assert {
            "product_id",
            "sku",
            "position",
            "score",
            "base_value",
            "contributions",
            "sources",
            "rules",
        } <= set(item)
        for c in item["contributions"]:
            assert {"name", "value"} <= set(c)
        if item["additive"] and item["score"] is not None:
            total = item["base_value"] + sum(c["value"] for c in item["contributions"])
            assert abs(total - item["score"]) <= 1e-6 * max(1.0, abs(item["score"])), item


def test_json_for_a_past_impression_is_the_stored_list(served):
    shop, widget, customer, recs = served
    data = json.loads(
        _run(
            "--customer",
            customer.external_id,
            "--widget",
            widget.slug,
            "--impression",
            str(recs[1].impression_id),
            "--json",
        )
    )
    _assert_contract(data)
    assert data["widget"] == "home-picks"
    assert data["request_id"] == str(Impression.objects.get(pk=recs[1].impression_id).request_id)
    assert [i["product_id"] for i in data["items"]] == [r.product_id for r in recs]
    assert any(c.get("product_id") for i in data["items"] for c in i["contributions"]), "history attributions"
    assert any(r["rule"] == "boost_brands" for i in data["items"] for r in i["rules"]), (
        "the rule that moved items"
    )


def test_json_for_now_logs_nothing(served):
    shop, widget, customer, _ = served
    before = (Impression.objects.count(), DecisionTraceRecord.objects.count())
    data = json.loads(_run("--customer", customer.external_id, "--widget", widget.slug, "--json"))
    _assert_contract(data)
    assert (Impression.objects.count(), DecisionTraceRecord.objects.count()) == before


def test_text_table(served):
    shop, widget, customer, recs = served
    out = _run(
        "--customer",
        customer.external_id,
        "--widget",
        widget.slug,
        "--impression",
        str(recs[0].impression_id),
    )
    assert out.startswith("Widget home-picks (personalized), request ")
    assert "Model versions: itemknn v" in out and "Shown:" in out
    skus = {p.pk: p.sku for p in shop.products}
    assert skus[recs[0].product_id] in out
    now = _run("--customer", customer.external_id, "--widget", widget.slug, "--top", "2")
    assert "what the customer would see now" in now


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customer", "nobody", "--widget", "home-picks"], "No customer with external id 'nobody'"),
        (["--customer", "{customer}", "--widget", "nope"], "No widget 'nope'. Widgets: home-picks"),
        (
            ["--customer", "{customer}", "--widget", "home-picks", "--impression", "12"],
            "--impression must be an impression id",
        ),
        (["--customer", "{customer}", "--widget", "home-picks", "--impression", "{random}"], "No impression"),
        (
            ["--customer", "{other}", "--widget", "home-picks", "--impression", "{impression}"],
            "was not shown to customer",
        ),
        (["--customer", "{customer}", "--widget", "home-picks", "--top", "0"], "--top must be from 1 to 50"),
    ],
)
def test_bad_arguments(served, args, message):
    shop, widget, customer, recs = served
    other = CustomerFactory(external_id="other-one")
    values = {
        "customer": customer.external_id,
        "other": other.external_id,
        "impression": str(recs[0].impression_id),
        "random": str(uuid.uuid4()),
    }
    with pytest.raises(CommandError, match=message):
        _run(*[a.format(**values) for a in args])


def test_impression_of_another_widget_and_a_purged_trace(served):
    shop, widget, customer, recs = served
    other = widget_make("other-widget", strategy="popular")
    with pytest.raises(CommandError, match="belongs to widget 'home-picks', not 'other-widget'"):
        _run(
            "--customer",
            customer.external_id,
            "--widget",
            other.slug,
            "--impression",
            str(recs[0].impression_id),
        )
    DecisionTraceRecord.objects.all().delete()
    with pytest.raises(CommandError, match="No decision trace is stored for impression"):
        _run(
            "--customer",
            customer.external_id,
            "--widget",
            widget.slug,
            "--impression",
            str(recs[0].impression_id),
        )


def test_required_arguments():
    with pytest.raises(CommandError, match="--customer"):
        _run("--widget", "x")


def test_support_trace_page_shows_the_same_explanation(served, client):
    """The console and the command read the same trace: the page shows each item's contributions."""
    from django.contrib.auth.models import Group
    from django.urls import reverse

    from recsite.roles import SUPPORT
    from tests.factories import UserFactory

    shop, widget, customer, recs = served
    data = json.loads(
        _run(
            "--customer",
            customer.external_id,
            "--widget",
            widget.slug,
            "--impression",
            str(recs[0].impression_id),
            "--json",
        )
    )
    user = UserFactory(username="support-page", is_staff=True)
    user.groups.set([Group.objects.get(name=SUPPORT)])
    client.force_login(user)
    response = client.get(reverse("support:trace", args=[data["request_id"]]))
    body = response.content.decode()
    assert response.status_code == 200
    then = body[body.index('id="rs-then"') : body.index('id="rs-now"')]
    assert then.count('class="rs-waterfall"') == sum(
        1 for i in data["items"] + data["removed"] if i["contributions"]
    )
    for item in data["items"]:
        for c in item["contributions"][:3]:
            assert c["name"].replace("'", "&#x27;").replace('"', "&quot;") in then


def test_model_attributions_over_recent_shoppers_and_stored_lists(served):
    from recommender.models import ModelVersion
    from recommender.support.selectors import model_version_attributions

    version = ModelVersion.objects.get(engine="itemknn")
    stored = model_version_attributions(version=version, source="traces")
    assert stored.source == "stored lists" and stored.n_lists == 1 and stored.n_items >= 1
    fresh = model_version_attributions(version=version, source="shoppers", sample=5)
    assert fresh.source == "recent shoppers (recomputed)" and fresh.n_lists == 5
    names = [f.name for f in fresh.features]
    assert names and all(n.startswith("history item") for n in names), names  # item-kNN: history only
    assert fresh.features[0].mean_abs > 0 and fresh.methods == ("exact-linear",)
    with pytest.raises(ValueError, match="Unknown source 'everything'"):
        model_version_attributions(version=version, source="everything")


def test_model_page_falls_back_to_recent_shoppers(served, client):
    from django.contrib.auth.models import Group
    from django.urls import reverse

    from recommender.models import DecisionTraceRecord, ModelVersion
    from recsite.roles import MERCHANDISERS
    from tests.factories import UserFactory

    DecisionTraceRecord.objects.all().delete()
    user = UserFactory(username="merch-page", is_staff=True)
    user.groups.set([Group.objects.get(name=MERCHANDISERS)])
    client.force_login(user)
    version = ModelVersion.objects.get(engine="itemknn")
    body = client.get(reverse("support:model", args=[version.pk]), {"sample": "10"}).content.decode()
    assert "recent shoppers (recomputed)" in body and 'class="rs-beeswarm"' in body
    bad = client.get(reverse("support:model", args=[version.pk]), {"source": "x"}).content.decode()
    assert "source must be one of auto, shoppers, traces" in bad
