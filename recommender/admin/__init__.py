"""Admin for the recommender: registry.py (training runs, model versions), widgets.py (widgets, rules,
preview, impressions and attribution)."""

from . import registry, widgets  # noqa: F401
