"""Business rules: each rule proven on pure data, validation messages, and end to end through serving."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Product
from recommender.models import WidgetRule
from recommender.rules import (
    Candidate,
    ProductAttrs,
    RuleContext,
    RuleParamsError,
    RuleSpec,
    mmr_rerank,
    rule_params_validate,
    rules_apply,
)
from recommender.serving import recommendations_get
from tests.factories import CategoryFactory, CustomerFactory, EventFactory, ProductFactory
from tests.recommender.serving_fixtures import _serving_fresh, shop_create, widget_make  # noqa: F401


def attrs(pid, *, cat=1, path=None, brand=1, price=10.0, stock=5, active=True, created=0.0, sku=None):
    return ProductAttrs(
        product_id=pid,
        sku=sku or f"SKU-{pid}",
        title=f"P{pid}",
        category_id=cat,
        category_name=f"Cat {cat}",
        category_path=path or (cat,),
        brand_id=brand,
        price=price,
        stock=stock,
        is_active=active,
        created_ts=created,
    )


def cands(*pids, tier=0):
    return [
        Candidate(product_id=p, score=float(100 - i), engine="test", tier=tier) for i, p in enumerate(pids)
    ]


def ids(outcome):
    return [c.product_id for c in outcome.kept]


CTX = RuleContext(k=10, now_ts=100 * 86400.0)


# ----------------------------------------------------------------------------------------- pure rules


def test_in_stock_removes_out_of_stock_and_records_why():
    a = {1: attrs(1), 2: attrs(2, stock=0), 3: attrs(3)}
    out = rules_apply(cands(1, 2, 3), [RuleSpec("in_stock", {})], a, CTX)
    assert ids(out) == [1, 3]
    assert [(c.product_id, label) for c, label in out.removed] == [(2, "In stock only")]


def test_unknown_products_never_pass_attribute_filters():
    out = rules_apply(cands(1, 99), [RuleSpec("active_only", {})], {1: attrs(1)}, CTX)
    assert ids(out) == [1]


def test_active_only():
    a = {1: attrs(1, active=False), 2: attrs(2)}
    assert ids(rules_apply(cands(1, 2), [RuleSpec("active_only", {})], a, CTX)) == [2]


def test_price_range_bounds_are_inclusive():
    a = {1: attrs(1, price=5), 2: attrs(2, price=10), 3: attrs(3, price=20), 4: attrs(4, price=21)}
    out = rules_apply(cands(1, 2, 3, 4), [RuleSpec("price_range", {"min": 10, "max": 20})], a, CTX)
    assert ids(out) == [2, 3]
    only_max = rules_apply(cands(1, 2, 3, 4), [RuleSpec("price_range", {"max": 10})], a, CTX)
    assert ids(only_max) == [1, 2]


def test_include_and_exclude_categories_cover_descendants():
    # category 1 is the root of 2 (child), 3 is unrelated
    a = {1: attrs(1, cat=2, path=(1, 2)), 2: attrs(2, cat=3, path=(3,)), 3: attrs(3, cat=1, path=(1,))}
    inc = rules_apply(cands(1, 2, 3), [RuleSpec("include_categories", {"categories": [1]})], a, CTX)
    assert ids(inc) == [1, 3]
    exc = rules_apply(cands(1, 2, 3), [RuleSpec("exclude_categories", {"categories": [1]})], a, CTX)
    assert ids(exc) == [2]


def test_include_and_exclude_brands():
    a = {1: attrs(1, brand=1), 2: attrs(2, brand=2), 3: attrs(3, brand=None)}
    assert ids(rules_apply(cands(1, 2, 3), [RuleSpec("include_brands", {"brands": [2]})], a, CTX)) == [2]
    assert ids(rules_apply(cands(1, 2, 3), [RuleSpec("exclude_brands", {"brands": [2]})], a, CTX)) == [1, 3]


def test_exclude_purchased_and_in_cart():
    a = {i: attrs(i) for i in (1, 2, 3)}
    ctx = RuleContext(purchased=frozenset({1}), cart=frozenset({3}), k=10)
    out = rules_apply(
        cands(1, 2, 3), [RuleSpec("exclude_purchased", {}), RuleSpec("exclude_in_cart", {})], a, ctx
    )
    assert ids(out) == [2]


def test_boost_changes_order_and_stamps_items():
    a = {1: attrs(1, brand=1), 2: attrs(2, brand=1), 3: attrs(3, brand=2)}
    out = rules_apply(cands(1, 2, 3), [RuleSpec("boost_brands", {"brands": [2], "factor": 2.0})], a, CTX)
    assert ids(out) == [3, 1, 2]  # 98 * 2 beats 100
    assert out.kept[0].rules == ("Boost brands ×2",)
    assert out.kept[1].rules == ()


def test_boost_categories_with_descendants_and_demotion():
    a = {1: attrs(1, cat=5, path=(4, 5)), 2: attrs(2, cat=6, path=(6,))}
    out = rules_apply(cands(1, 2), [RuleSpec("boost_categories", {"categories": [4], "factor": 0.5})], a, CTX)
    assert ids(out) == [2, 1]


def test_boost_never_lifts_a_fallback_tier_above_the_strategy():
    a = {1: attrs(1, brand=1), 2: attrs(2, brand=2)}
    pool = cands(1) + [Candidate(product_id=2, score=1000.0, engine="trending", tier=1)]
    out = rules_apply(pool, [RuleSpec("boost_brands", {"brands": [2], "factor": 10})], a, CTX)
    assert ids(out) == [1, 2]


def test_freshness_boost_prefers_new_products():
    day = 86400.0
    a = {1: attrs(1, created=0.0), 2: attrs(2, created=99 * day)}  # 2 is one day old, 1 is 100 days old
    out = rules_apply(cands(1, 2), [RuleSpec("freshness", {"factor": 2.0, "half_life_days": 7})], a, CTX)
    assert ids(out) == [2, 1]
    assert out.kept[0].rules and out.kept[0].rules[0].startswith("Freshness boost")


def test_pin_sits_at_its_position():
    a = {i: attrs(i) for i in range(1, 6)} | {9: attrs(9, sku="PIN-9")}
    rule = RuleSpec("pin_skus", {"pins": [{"sku": "PIN-9", "position": 2}, {"sku": "SKU-5", "position": 1}]})
    out = rules_apply(cands(1, 2, 3, 4, 5), [rule], a, CTX, pinned_ids={"PIN-9": 9, "SKU-5": 5})
    assert ids(out)[:3] == [5, 9, 1]
    assert out.kept[1].rules == ("Pinned at position 2",)


def test_pinned_item_must_pass_the_filters():
    a = {1: attrs(1), 2: attrs(2), 9: attrs(9, sku="PIN-9", stock=0)}
    rules = [RuleSpec("in_stock", {}), RuleSpec("pin_skus", {"pins": [{"sku": "PIN-9", "position": 1}]})]
    out = rules_apply(cands(1, 2), rules, a, CTX, pinned_ids={"PIN-9": 9})
    assert ids(out) == [1, 2]
    assert out.removed[0][0].product_id == 9


def test_max_per_brand_cap_holds():
    a = {i: attrs(i, brand=1 if i <= 4 else 2) for i in range(1, 8)}
    out = rules_apply(cands(*range(1, 8)), [RuleSpec("max_per_brand", {"n": 2})], a, CTX)
    assert ids(out) == [1, 2, 5, 6]
    brands = [a[p].brand_id for p in ids(out)]
    assert max(brands.count(b) for b in set(brands)) <= 2


def test_max_per_category_cap_holds():
    a = {i: attrs(i, cat=i % 2) for i in range(1, 7)}
    out = rules_apply(cands(*range(1, 7)), [RuleSpec("max_per_category", {"n": 1})], a, CTX)
    assert ids(out) == [1, 2]


def test_mmr_diversifies_a_single_brand_list():
    # six items of one category+brand first, then three of other categories
    a = {i: attrs(i, cat=1, brand=1) for i in range(1, 7)} | {i: attrs(i, cat=i, brand=i) for i in (7, 8, 9)}
    ctx = RuleContext(k=4)
    plain = rules_apply(cands(*range(1, 10)), [], a, ctx)
    diverse = rules_apply(cands(*range(1, 10)), [RuleSpec("diversity", {"lambda": 0.3})], a, ctx)
    top_plain = {a[p].category_id for p in ids(plain)[:4]}
    top_diverse = {a[p].category_id for p in ids(diverse)[:4]}
    assert len(top_plain) == 1
    assert len(top_diverse) == 4
    assert ids(diverse)[0] == 1  # the most relevant item stays first
    assert any(r.startswith("Diversity (MMR λ=0.3): moved") for c in diverse.kept for r in c.rules)


def test_mmr_lambda_one_keeps_relevance_order():
    out = mmr_rerank(cands(1, 2, 3), lam=1.0, sim=lambda i, j: 1.0, k=3, label="x")
    assert [c.product_id for c in out] == [1, 2, 3]


def test_mmr_uses_supplied_similarity():
    # the similarity says 1~2 and 3~4 are identical: picking 1 pushes 2 behind 3
    sim = {(1, 2): 1.0, (2, 1): 1.0, (3, 4): 1.0, (4, 3): 1.0}
    out = mmr_rerank(cands(1, 2, 3, 4), lam=0.5, sim=lambda i, j: sim.get((i, j), 0.0), k=4, label="d")
    assert [c.product_id for c in out][:2] == [1, 3]


def test_filters_run_before_caps_whatever_the_positions():
    a = {1: attrs(1, brand=1, stock=0), 2: attrs(2, brand=1), 3: attrs(3, brand=1)}
    rules = [RuleSpec("max_per_brand", {"n": 1}, position=0), RuleSpec("in_stock", {}, position=5)]
    assert ids(rules_apply(cands(1, 2, 3), rules, a, CTX)) == [2]


def test_duplicates_keep_the_best_occurrence():
    pool = cands(1, 2) + [Candidate(product_id=1, score=1.0, engine="trending", tier=1)]
    out = rules_apply(pool, [], {1: attrs(1), 2: attrs(2)}, CTX)
    assert ids(out) == [1, 2] and out.kept[0].engine == "test"


# ----------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("price_range", {"min": 50, "max": 20}, "Price range: minimum 50 is above maximum 20."),
        ("price_range", {}, "Price range: give a minimum, a maximum, or both."),
        ("price_range", {"min": "cheap"}, "Price range: minimum must be a number, not 'cheap'."),
        ("price_range", {"min": -1}, "Price range: prices cannot be negative."),
        ("max_per_brand", {"n": 0}, "At most N per brand: N must be between 1 and 100, not 0."),
        ("max_per_brand", {"n": 1.5}, "At most N per brand: N must be a whole number, not 1.5."),
        ("max_per_brand", {}, "At most N per brand: N must be a number."),
        ("diversity", {"lambda": 2}, "Diversity: lambda must be between 0 and 1, not 2."),
        ("boost_brands", {"brands": [1], "factor": 0}, "Boost brands: factor must be above 0"),
        ("boost_brands", {"factor": 2}, "Boost brands: choose at least one brand."),
        (
            "include_categories",
            {"categories": ["shoes"]},
            "Only these categories: 'shoes' is not a valid category id.",
        ),
        ("in_stock", {"x": 1}, "In stock only takes no parameters"),
        (
            "pin_skus",
            {"pins": [{"sku": "A", "position": 1}, {"sku": "B", "position": 1}]},
            "two products are pinned at position 1",
        ),
        ("pin_skus", {"pins": [{"sku": "A"}]}, "Pin SKUs: position of A must be a number."),
        ("pin_skus", {"pins": []}, "Pin SKUs: add at least one pin"),
        ("freshness", {"factor": 0.5}, "Freshness boost: factor must be between 1 and 100"),
        ("max_per_category", {"n": 2, "m": 3}, "unknown setting 'm'"),
        ("price_range", [1, 2], "parameters must be a JSON object"),
        ("nonsense", {}, "Unknown rule type 'nonsense'."),
    ],
)
def test_validation_messages_are_readable(kind, params, message):
    with pytest.raises(RuleParamsError) as exc:
        rule_params_validate(kind, params)
    assert message in exc.value.messages[0]


def test_validation_cleans_params():
    assert rule_params_validate("price_range", {"min": "10", "max": 20}) == {"min": 10.0, "max": 20.0}
    assert rule_params_validate("diversity", {}) == {"lambda": 0.7}
    assert rule_params_validate("in_stock", None) == {}
    assert rule_params_validate("include_brands", {"brands": ["3", 1, 3]}) == {"brands": [1, 3]}


@pytest.mark.django_db
def test_widget_rule_clean_checks_references_exist():
    widget = widget_make()
    cat = CategoryFactory()
    ok = WidgetRule(widget=widget, kind="exclude_categories", params={"categories": [cat.pk]})
    ok.full_clean()
    bad = WidgetRule(widget=widget, kind="exclude_categories", params={"categories": [cat.pk, 987654]})
    with pytest.raises(ValidationError) as exc:
        bad.full_clean()
    assert exc.value.message_dict["params"] == ["Exclude categories: no categories with id 987654."]
    pin = WidgetRule(widget=widget, kind="pin_skus", params={"pins": [{"sku": "NOPE", "position": 1}]})
    with pytest.raises(ValidationError) as exc:
        pin.full_clean()
    assert "no product with SKU NOPE" in exc.value.message_dict["params"][0]


# ----------------------------------------------------------------------------------------- end to end


@pytest.mark.django_db
def test_serving_pinned_sku_sits_at_its_position_and_out_of_stock_never_appears():
    # given a trending widget, an out-of-stock best seller and a pinned product nobody looked at
    shop = shop_create()
    widget = widget_make(strategy="trending", num_items=5)
    WidgetRule.objects.create(widget=widget, kind="in_stock", position=0)
    pinned = ProductFactory(sku="PINNED-1", stock=3)
    WidgetRule.objects.create(
        widget=widget, kind="pin_skus", params={"pins": [{"sku": "PINNED-1", "position": 3}]}
    )
    sold_out = shop.clusters[0][0]
    Product.objects.filter(pk=sold_out.pk).update(stock=0)
    # when
    recs = recommendations_get(widget=widget)
    # then
    assert len(recs) == 5
    assert recs[2].product_id == pinned.pk
    assert "Pinned at position 3" in recs[2].rules
    assert sold_out.pk not in [r.product_id for r in recs]


@pytest.mark.django_db
def test_serving_brand_cap_and_price_range_hold_with_fallbacks_filling_k():
    shop_create()
    widget = widget_make(strategy="trending", num_items=6)
    WidgetRule.objects.create(widget=widget, kind="max_per_brand", params={"n": 2})
    WidgetRule.objects.create(widget=widget, kind="price_range", params={"max": 40})
    recs = recommendations_get(widget=widget)
    products = Product.objects.in_bulk([r.product_id for r in recs])
    brands = [products[r.product_id].brand_id for r in recs]
    assert len(recs) == 6
    assert max(brands.count(b) for b in brands) == 2
    assert all(products[r.product_id].price <= Decimal(40) for r in recs)


@pytest.mark.django_db
def test_serving_excluded_purchases_never_return():
    shop = shop_create()
    widget = widget_make(strategy="trending", num_items=10)
    WidgetRule.objects.create(widget=widget, kind="exclude_purchased")
    customer = CustomerFactory()
    bought = shop.clusters[0][:3]
    for p in bought:
        EventFactory(type="purchase", product=p, customer=customer)
    recs = recommendations_get(widget=widget, customer=customer)
    assert len(recs) == 10
    assert not {p.pk for p in bought} & {r.product_id for r in recs}


@pytest.mark.django_db
def test_serving_include_category_descendants_and_boost():
    shop = shop_create()
    parent = CategoryFactory(name="Parent")
    child = shop.categories[2]
    child.parent = parent
    child.save()
    widget = widget_make(strategy="trending", num_items=3)
    WidgetRule.objects.create(widget=widget, kind="include_categories", params={"categories": [parent.pk]})
    recs = recommendations_get(widget=widget)
    assert {r.product_id for r in recs} <= {p.pk for p in shop.clusters[2]}
    assert len(recs) == 3
