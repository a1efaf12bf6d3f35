"""The lazy widget slot (template tag) and the fragment view it loads."""

import pytest
from django.template import Context, Template
from django.urls import reverse

from recommender.models import Impression, Widget
from tests.factories import EventFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _render(source: str, **ctx) -> str:
    return Template("{% load recommendations %}" + source).render(Context(ctx))


def test_slot_renders_lazy_htmx_placeholder_with_product():
    # given
    product = ProductFactory()
    # when
    html = _render('{% recommendation_slot "pdp-similar" product=product %}', product=product)
    # then
    url = reverse("recommender:widget_fragment", args=["pdp-similar"]) + f"?product={product.pk}"
    assert f'hx-get="{url}"' in html
    assert 'hx-trigger="load"' in html
    assert "rs-skeleton-card" in html


def test_slot_without_product_and_with_session_items():
    html = _render('{% recommendation_slot "home-trending" session_items=items k=3 %}', items=[3, 1, "x"])
    assert "session_items=3%2C1" in html
    assert "k=3" in html


def test_slot_with_invalid_slug_renders_nothing():
    assert _render('{% recommendation_slot "not a slug!" %}').strip() == ""


def _widget(**kw) -> Widget:
    defaults = {"slug": "home-trending", "title": "Trending now", "placement": "home", "strategy": "trending"}
    return Widget.objects.create(**{**defaults, **kw})


def test_fragment_renders_cards_with_impression_ids(client):
    # given
    widget = _widget(num_items=3)
    products = ProductFactory.create_batch(4)
    for p in products:
        EventFactory(product=p)
    # when
    response = client.get(reverse("recommender:widget_fragment", args=[widget.slug]))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    impressions = list(Impression.objects.filter(widget=widget))
    assert len(impressions) == 3
    for imp in impressions:
        assert f'data-rs-impression="{imp.id}"' in html
    assert "Trending now" in html


def test_fragment_unknown_or_disabled_widget_is_404_without_markup(client):
    _widget(slug="off", enabled=False)
    for slug in ("nope", "off"):
        response = client.get(reverse("recommender:widget_fragment", args=[slug]))
        assert response.status_code == 404
        assert response.content == b""
        assert "widget" in response.headers["X-RS-Error"]


@pytest.mark.parametrize("query", ["k=0", "k=abc", "k=101", "session_items=1,x", "product=abc"])
def test_fragment_bad_parameters_are_400(client, query):
    _widget()
    response = client.get(reverse("recommender:widget_fragment", args=["home-trending"]) + "?" + query)
    assert response.status_code == 400
    assert response.headers["X-RS-Error"]


def test_fragment_unknown_product_is_404(client):
    _widget()
    response = client.get(reverse("recommender:widget_fragment", args=["home-trending"]) + "?product=999999")
    assert response.status_code == 404


def test_fragment_failure_renders_nothing(client, monkeypatch):
    # given a serving failure
    _widget()
    ProductFactory()

    def boom(**kwargs):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("recommender.serving.recommendations_get", boom)
    # when
    response = client.get(reverse("recommender:widget_fragment", args=["home-trending"]))
    # then the page around it survives
    assert response.status_code == 200
    assert response.content.strip() == b""
