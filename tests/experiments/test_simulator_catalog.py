"""The catalog generator: deterministic, structured like a real shop, long-tailed."""

import numpy as np
import pytest

from experiments.simulator.catalog import LEAVES, catalog_generate


def test_same_seed_same_catalog_and_other_seed_differs():
    # given / when
    a = catalog_generate(n_products=300, seed=11)
    b = catalog_generate(n_products=300, seed=11)
    c = catalog_generate(n_products=300, seed=12)
    # then
    assert a.skus == b.skus and a.titles == b.titles and a.attributes == b.attributes
    np.testing.assert_array_equal(a.price, b.price)
    np.testing.assert_array_equal(a.appeal, b.appeal)
    assert a.titles != c.titles
    assert not np.array_equal(a.price, c.price)


def test_tree_has_three_levels_and_every_leaf_is_stocked():
    catalog = catalog_generate(n_products=500, seed=1)
    levels = {node.level for node in catalog.categories}
    assert levels == {0, 1, 2}
    for node in catalog.categories:
        if node.level > 0:
            assert catalog.categories[node.parent].level == node.level - 1
    assert len({n.slug for n in catalog.categories}) == len(catalog.categories)
    assert set(np.unique(catalog.leaf)) == set(range(len(LEAVES)))
    assert len(set(catalog.skus)) == catalog.n_products
    assert (catalog.price > 0).all()
    assert 0 < (catalog.stock == 0).mean() < 0.2
    # some products launch inside the simulated window, most before it
    assert 0 < (catalog.created_day > 0).mean() < 0.2


def test_prices_make_many_accessories_and_few_big_ticket_items():
    catalog = catalog_generate(n_products=2000, seed=3)
    assert 15 < np.median(catalog.price) < 60
    assert (catalog.price > 300).mean() < 0.15
    assert catalog.price.max() > 500
    # premium brands cost more than budget ones within the same leaf, on average
    rel = catalog.rel_log_price
    assert rel[catalog.tier == 2].mean() > rel[catalog.tier == 0].mean() + 0.8


def test_popularity_is_long_tailed():
    catalog = catalog_generate(n_products=1000, seed=5)
    weights = np.exp(catalog.appeal)
    top_decile = np.sort(weights)[::-1][:100].sum() / weights.sum()
    assert top_decile > 0.3  # uniform would be 0.1


def test_complements_link_cameras_to_lenses_and_coffee_machines_to_beans():
    catalog = catalog_generate(n_products=200, seed=0)
    names = [s.name for s in catalog.leaf_specs]
    comp = catalog.complements
    np.testing.assert_allclose(comp.sum(axis=1), 1.0)
    cam, lens, beans, coffee = (
        names.index(n) for n in ("Digital Cameras", "Lenses", "Coffee Beans", "Coffee Machines")
    )
    assert comp[cam, lens] > 0.15
    assert comp[coffee, beans] > 0.15
    assert comp[cam, beans] == 0


def test_titles_and_descriptions_come_from_templates_with_attributes():
    catalog = catalog_generate(n_products=100, seed=9)
    for i in range(catalog.n_products):
        brand = catalog.brands[catalog.brand[i]].name
        assert catalog.titles[i].startswith(brand)
        assert catalog.attributes[i]["tier"] == catalog.brands[catalog.brand[i]].tier
        assert len(catalog.descriptions[i]) > 40


@pytest.mark.parametrize("n", [0, -5])
def test_bad_size_is_rejected(n):
    with pytest.raises(ValueError, match="n_products"):
        catalog_generate(n_products=n, seed=0)


def test_tiny_catalog_still_works():
    catalog = catalog_generate(n_products=3, seed=0)
    assert catalog.n_products == 3
    assert sum(catalog.items_in_leaf(leaf).size for leaf in range(catalog.n_leaves)) == 3
