"""Shop events -> InteractionData: weights, time order, id maps, visitors, sessions, features, split."""

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Event, Visitor
from recommender.data import (
    interaction_data_from_events,
    shop_temporal_split,
    user_key_customer,
    user_key_visitor,
)
from tests.factories import BrandFactory, CategoryFactory, CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(days=10)


def _event(kind, product, *, customer=None, visitor="", session="", minutes=0, rating=None):
    return Event(
        event_id=uuid.uuid4(),
        type=kind,
        product=product,
        customer=customer,
        visitor_id=visitor,
        session_id=session,
        timestamp=T0 + timedelta(minutes=minutes),
        rating=rating,
    )


def test_weights_by_type_and_rating():
    # given
    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    cust = CustomerFactory()
    Event.objects.bulk_create(
        [
            _event("view", a, customer=cust, minutes=1),
            _event("click", a, customer=cust, minutes=2),
            _event("add_to_cart", a, customer=cust, minutes=3),
            _event("purchase", b, customer=cust, minutes=4),
            _event("rate", c, customer=cust, minutes=5, rating=5),
            _event("rate", b, customer=cust, minutes=6, rating=1),  # a dislike adds nothing
            _event("remove_from_cart", c, customer=cust, minutes=7),
        ]
    )
    # when
    shop = interaction_data_from_events()
    # then
    idx = shop.product_index()
    u = shop.user_index()[user_key_customer(cust.pk)]
    row = shop.data.matrix[u].toarray().ravel()
    assert row[idx[a.pk]] == pytest.approx(1 + 2 + 4)
    assert row[idx[b.pk]] == pytest.approx(8)
    assert row[idx[c.pk]] == pytest.approx(2.0 * (5 - 2))
    assert shop.n_events == 5  # the 1-star rating and the cart removal carry no weight


def test_custom_event_weights_and_unknown_type_rejected():
    a = ProductFactory()
    cust = CustomerFactory()
    Event.objects.bulk_create(
        [_event("view", a, customer=cust), _event("purchase", a, customer=cust, minutes=1)]
    )
    shop = interaction_data_from_events(event_weights={"view": 0.5, "purchase": 0})
    assert shop.data.matrix.sum() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="bogus"):
        interaction_data_from_events(event_weights={"bogus": 1})


def test_sequences_in_time_order_with_consecutive_repeats_collapsed():
    # given: inserted out of order
    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    cust = CustomerFactory()
    Event.objects.bulk_create(
        [
            _event("view", c, customer=cust, minutes=30),
            _event("view", a, customer=cust, minutes=10),
            _event("click", a, customer=cust, minutes=11),  # same item right after: collapsed
            _event("view", b, customer=cust, minutes=20),
            _event("view", a, customer=cust, minutes=40),  # a return later: kept
        ]
    )
    # when
    shop = interaction_data_from_events()
    # then
    idx = shop.product_index()
    u = shop.user_index()[user_key_customer(cust.pk)]
    assert shop.data.sequences[u].tolist() == [idx[a.pk], idx[b.pk], idx[c.pk], idx[a.pk]]
    ts = shop.data.timestamps[u]
    assert np.all(np.diff(ts) > 0)
    assert ts[0] == pytest.approx((T0 + timedelta(minutes=10)).timestamp())


def test_id_maps_visitors_and_logged_in_visitors():
    # given
    a, b = ProductFactory(), ProductFactory()
    cust = CustomerFactory()
    Visitor.objects.create(id="vis-linked", customer=cust)
    Event.objects.bulk_create(
        [
            _event("view", a, customer=cust, minutes=1),
            _event("view", b, visitor="vis-linked", minutes=2),  # counts for the customer
            _event("view", a, visitor="vis-anon", minutes=3),
        ]
    )
    # when
    shop = interaction_data_from_events()
    # then
    users = shop.user_index()
    assert set(users) == {user_key_customer(cust.pk), user_key_visitor("vis-anon")}
    assert list(shop.data.user_ids) == list(shop.user_keys)
    assert shop.data.item_ids.tolist() == sorted([a.pk, b.pk]) == shop.product_ids.tolist()
    u = users[user_key_customer(cust.pk)]
    assert sorted(shop.data.matrix[u].indices.tolist()) == [0, 1]
    assert shop.data.n_users == 2 and shop.data.n_items == 2


def test_every_product_is_an_item_even_without_events():
    a, untouched = ProductFactory(), ProductFactory()
    Event.objects.bulk_create([_event("view", a, customer=CustomerFactory())])
    shop = interaction_data_from_events()
    assert untouched.pk in shop.product_index()
    assert shop.data.matrix[:, shop.product_index()[untouched.pk]].nnz == 0


def test_sessions_grouped_in_time_order():
    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    Event.objects.bulk_create(
        [
            _event("view", b, visitor="v1", session="s1", minutes=2),
            _event("view", a, visitor="v1", session="s1", minutes=1),
            _event("view", c, visitor="v2", session="s2", minutes=1),
            _event("view", c, visitor="v2", session="", minutes=5),  # no session: not grouped
        ]
    )
    shop = interaction_data_from_events()
    idx = shop.product_index()
    sessions = sorted(s.tolist() for s in shop.data.sessions)
    assert sessions == sorted([[idx[a.pk], idx[b.pk]], [idx[c.pk]]])


def test_since_until_window():
    a = ProductFactory()
    cust = CustomerFactory()
    Event.objects.bulk_create([_event("view", a, customer=cust, minutes=m) for m in (0, 60, 120)])
    shop = interaction_data_from_events(since=T0 + timedelta(minutes=30), until=T0 + timedelta(minutes=90))
    assert shop.n_events == 1


def test_item_features_from_products():
    # given
    parent = CategoryFactory(name="Home")
    cat = CategoryFactory(name="Lamps", parent=parent)
    brand = BrandFactory(name="Lumo")
    p = ProductFactory(
        title="Desk lamp",
        description="Warm light",
        category=cat,
        brand=brand,
        attributes={"color": "Red", "tags": ["led", "desk"]},
    )
    q = ProductFactory(category=parent, brand=None)
    Event.objects.bulk_create([_event("view", p, customer=CustomerFactory())])
    # when
    shop = interaction_data_from_events()
    f = shop.data.item_features
    # then
    i, j = shop.product_index()[p.pk], shop.product_index()[q.pk]
    assert "Desk lamp" in f.texts[i] and "Lumo" in f.texts[i] and "Home > Lamps" in f.texts[i]
    assert shop.category_ids[f.category[i]] == cat.pk and shop.brand_ids[f.brand[i]] == brand.pk
    assert f.brand[j] == -1
    assert f.price[i] == pytest.approx(float(p.price))
    assert f.attributes.shape[0] == 2
    # p: its category, the parent category, its brand, color, two tags; q: its category only
    assert f.attributes[i].nnz == 6 and f.attributes[j].nnz == 1
    # the shared parent category is one common column
    assert f.attributes[i].multiply(f.attributes[j]).nnz == 1


def test_empty_shop():
    shop = interaction_data_from_events()
    assert shop.n_events == 0 and shop.data.n_users == 0
    with pytest.raises(ValueError, match="No events"):
        shop_temporal_split(shop)


def test_temporal_split_holds_out_later_new_items_only():
    # given: u1 sees a, b before the cut, then b again and c after; u2 only after the cut
    a, b, c = ProductFactory(), ProductFactory(), ProductFactory()
    u1, u2 = CustomerFactory(), CustomerFactory()
    Event.objects.bulk_create(
        [
            _event("view", a, customer=u1, minutes=1),
            _event("view", b, customer=u1, minutes=2),
            _event("view", b, customer=u1, minutes=100),
            _event("purchase", c, customer=u1, minutes=101),
            _event("view", a, customer=u2, minutes=102),
        ]
    )
    shop = interaction_data_from_events()
    # when
    split = shop_temporal_split(shop, cut=T0 + timedelta(minutes=50))
    # then
    idx, users = shop.product_index(), shop.user_index()
    assert split.n_train_events == 2 and split.n_test_events == 3
    assert split.test_users.tolist() == [users[user_key_customer(u1.pk)]]
    assert [t.tolist() for t in split.test_items] == [[idx[c.pk]]]
    # nothing after the cut leaks into training; index spaces are unchanged
    assert split.train.matrix.shape == shop.data.matrix.shape
    assert split.train.matrix.sum() == pytest.approx(2.0)
    assert split.train.sequences[users[user_key_customer(u2.pk)]].size == 0
    assert split.histories[0].tolist() == [idx[a.pk], idx[b.pk]]


def test_temporal_split_fraction_and_user_cap():
    products = [ProductFactory() for _ in range(5)]
    events = []
    for n in range(30):
        cust = CustomerFactory()
        events += [
            _event("view", products[0], customer=cust, minutes=n),
            _event("view", products[1 + n % 4], customer=cust, minutes=1000 + n),
        ]
    Event.objects.bulk_create(events)
    shop = interaction_data_from_events()
    split = shop_temporal_split(shop, test_fraction=0.5, max_test_users=10, seed=1)
    assert split.n_train_events == 30 and split.n_test_events == 30
    assert len(split.test_users) == 10 and len(split.test_items) == 10
    with pytest.raises(ValueError):
        shop_temporal_split(shop, test_fraction=1.5)


@pytest.mark.realservices
def test_timestamps_and_sequences_on_the_real_database():
    # given: timestamps with microseconds, inserted out of order (exercises EpochSeconds on PostgreSQL)
    a, b = ProductFactory(), ProductFactory()
    cust = CustomerFactory()
    when = [T0 + timedelta(minutes=5, microseconds=250_000), T0 + timedelta(minutes=1)]
    Event.objects.bulk_create([_event("view", a, customer=cust), _event("view", b, customer=cust)])
    Event.objects.filter(product=a).update(timestamp=when[0])
    Event.objects.filter(product=b).update(timestamp=when[1])
    # when
    shop = interaction_data_from_events()
    # then
    idx = shop.product_index()
    assert shop.data.sequences[0].tolist() == [idx[b.pk], idx[a.pk]]
    assert shop.data.timestamps[0] == pytest.approx([when[1].timestamp(), when[0].timestamp()], abs=1e-3)
