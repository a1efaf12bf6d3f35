"""Widget admin: rule validation on save, widget validation, live preview, attribution stats, impressions."""

import pytest
from django.urls import reverse

from catalog.models import Product
from recommender.models import Impression, Widget, WidgetRule
from recommender.serving import recommendations_get
from tests.factories import CustomerFactory, EventFactory, UserFactory
from tests.recommender.serving_fixtures import (  # noqa: F401
    _serving_fresh,
    model_strategies,
    model_version_make,
    shop_create,
    widget_make,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def _change_post(widget: Widget, rules: list[dict], **fields) -> dict:
    data = {
        "slug": widget.slug,
        "title": widget.title,
        "placement": widget.placement,
        "enabled": "on",
        "strategy": widget.strategy,
        "engine": widget.engine,
        "model_version": "",
        "num_items": widget.num_items,
        "fallback_strategy": widget.fallback_strategy,
        "params": "{}",
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for i, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rules-{i}-{key}"] = value
    data.update(fields)
    return data


def test_rule_with_bad_params_is_refused_with_a_readable_message(staff):
    widget = widget_make(strategy="trending")
    url = reverse("admin:recommender_widget_change", args=[widget.pk])
    data = _change_post(
        widget, [{"position": 0, "kind": "price_range", "params": '{"min": 50, "max": 20}', "enabled": "on"}]
    )
    response = staff.post(url, data)
    assert response.status_code == 200  # the form is shown again
    assert "Price range: minimum 50 is above maximum 20." in response.content.decode()
    assert not WidgetRule.objects.exists()


def test_valid_rules_are_saved_cleaned(staff):
    widget = widget_make(strategy="trending")
    url = reverse("admin:recommender_widget_change", args=[widget.pk])
    data = _change_post(
        widget,
        [
            {"position": 0, "kind": "in_stock", "params": "", "enabled": "on"},
            {"position": 1, "kind": "price_range", "params": '{"min": "5"}', "enabled": "on"},
        ],
    )
    response = staff.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rules = list(widget.rules.order_by("position"))
    assert [(r.kind, r.params) for r in rules] == [("in_stock", {}), ("price_range", {"min": 5.0})]


def test_widget_engine_and_pinned_version_are_validated(staff, model_strategies):
    shop = shop_create()
    version = model_version_make(shop=shop)  # itemknn
    widget = widget_make(strategy="trending")
    url = reverse("admin:recommender_widget_change", args=[widget.pk])
    response = staff.post(url, _change_post(widget, [], engine="nosuch"))
    assert "Unknown engine &#x27;nosuch&#x27;" in response.content.decode()
    response = staff.post(
        url, _change_post(widget, [], strategy="personalized", engine="pop", model_version=version.pk)
    )
    assert "was trained with itemknn, but this widget is served by pop" in response.content.decode()
    response = staff.post(url, _change_post(widget, [], strategy="personalized", model_version=version.pk))
    assert response.status_code == 302


def test_preview_shows_items_scores_engines_rules_and_reasons(staff, model_strategies):
    # given a personalized widget with a boost and an in-stock rule
    shop = shop_create()
    model_version_make(shop=shop)
    widget = widget_make(strategy="personalized", num_items=4)
    customer = shop.customers[3]
    WidgetRule.objects.create(widget=widget, kind="in_stock", position=0)
    WidgetRule.objects.create(
        widget=widget, kind="boost_brands", position=1, params={"brands": [shop.brands[1].pk], "factor": 2}
    )
    sold_out = shop.clusters[1][3]
    Product.objects.filter(pk=sold_out.pk).update(stock=0)
    url = reverse("admin:recommender_widget_preview", args=[widget.pk])
    # when
    response = staff.get(url, {"customer": customer.external_id, "k": 4})
    # then
    html = response.content.decode()
    assert response.status_code == 200
    expected = recommendations_get(widget=widget, customer=customer, k=4, log=False)
    for rec in expected:
        assert Product.objects.get(pk=rec.product_id).title in html
    assert "itemknn" in html
    assert "Boost brands ×2" in html
    assert "Because you viewed" in html
    assert "Removed by rules" in html and "In stock only" in html
    assert not Impression.objects.exists()  # previews are not impressions


def test_preview_anonymous_with_product_and_bad_inputs(staff):
    shop_create()
    widget = widget_make(strategy="trending", num_items=3)
    url = reverse("admin:recommender_widget_preview", args=[widget.pk])
    ok = staff.get(url, {"customer": "", "product": Product.objects.first().sku})
    assert ok.status_code == 200 and "an anonymous shopper" in ok.content.decode()
    bad = staff.get(url, {"customer": "ghost", "product": "NOPE", "session_items": "1,x"}).content.decode()
    assert "No customer &#x27;ghost&#x27;" in bad
    assert "No product with id or SKU &#x27;NOPE&#x27;" in bad
    assert "Give product ids separated by commas" in bad
    by_pk = staff.get(url, {"customer": f"#{CustomerFactory().pk}"})
    assert by_pk.status_code == 200 and "customer cust-" in by_pk.content.decode()


def test_stats_page_shows_ctr_and_revenue_with_one_aggregate_query(staff, django_assert_max_num_queries):
    shop_create()
    widget = widget_make(strategy="trending", num_items=2)
    recs = recommendations_get(widget=widget)
    EventFactory(type="click", product_id=recs[0].product_id, impression_id=recs[0].impression_id)
    url = reverse("admin:recommender_widget_stats", args=[widget.pk])
    with django_assert_max_num_queries(8):  # session, user, widget, ONE aggregate (+ admin chrome)
        response = staff.get(url, {"days": "7"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<td>2</td><td>1</td><td>50%" in html
    assert "days must be" in staff.get(url, {"days": "abc"}).content.decode()


def test_changelist_and_impressions_are_read_only(staff):
    shop_create()
    widget = widget_make(strategy="trending", num_items=2)
    recommendations_get(widget=widget)
    assert staff.get(reverse("admin:recommender_widget_changelist")).status_code == 200
    changelist = staff.get(reverse("admin:recommender_impression_changelist"))
    assert changelist.status_code == 200
    imp = Impression.objects.first()
    detail = staff.get(reverse("admin:recommender_impression_change", args=[imp.pk]))
    assert detail.status_code == 200
    assert staff.get(reverse("admin:recommender_impression_add")).status_code == 403
    assert (
        staff.post(reverse("admin:recommender_impression_delete", args=[imp.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Impression.objects.filter(pk=imp.pk).exists()


def test_preview_explains_hybrid_ranked_items_with_shap(staff, settings, monkeypatch):
    """Items the hybrid engine ranked get a SHAP explanation (recommender.explain) in the preview."""
    import numpy as np

    from recommender import engines

    monkeypatch.setitem(engines.REGISTRY, "fake_pop", "tests.recommender.hybrid_fakes:FakePop")
    monkeypatch.setitem(engines.REGISTRY, "fake_cooc", "tests.recommender.hybrid_fakes:FakeCooc")
    shop = shop_create()
    ids = [p.pk for p in shop.products]
    rng = np.random.default_rng(0)
    # planted pattern: product i is followed by product i + 1
    sequences = []
    for _ in range(150):
        start, length = int(rng.integers(len(ids))), int(rng.integers(5, 9))
        sequences.append([ids[(start + j) % len(ids)] for j in range(length)])
    params = {
        "base_engines": ["fake_pop", "fake_cooc"],
        "n_candidates": 12,
        "lgbm_params": {"n_estimators": 40, "learning_rate": 0.2, "min_child_samples": 5, "num_leaves": 7},
        "early_stopping_rounds": 10,
    }
    model_version_make(engine="hybrid", product_ids=ids, sequences=sequences, params=params)
    widget = widget_make(strategy="personalized", engine="hybrid", num_items=3)
    customer = shop.customers[0]
    response = staff.get(
        reverse("admin:recommender_widget_preview", args=[widget.pk]), {"customer": customer.external_id}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "hybrid" in html
    assert (
        "Ranked high mainly because" in html
        or "Ranked low mainly because" in html
        or "Scored about average" in html
    )
    assert 'class="rs-contrib"' in html  # the per-feature SHAP contributions are listed
