"""Shopper simulation (pure Python + numpy; no Django imports anywhere in this package).

- `catalog.catalog_generate`: a believable electronics / home-appliance shop with hidden item truths.
- `shoppers.population_generate`, `shoppers.sessions_schedule`, `shoppers.ShopperModel.session`: customers
  and the step API that plays one visit, calling a recommender wherever a widget is rendered.
- `recommenders.SegmentPopular`: the reference study's "traditional" environment.
- `metrics.metrics_compute`, `metrics.sessions_run`, `metrics.traditional_simulate`: running visits and
  the study's metrics (conversion, AOV, CTR per list shown, session duration).

Index conventions: products are catalog indices (SKU `catalog.skus[i]`), customers are population indices
(the seeder stores customer i as external id `c{i:06d}`); time is seconds since the window start.
"""

from .catalog import Catalog, catalog_generate
from .metrics import PAPER_TRADITIONAL, SimMetrics, metrics_compute, sessions_run, traditional_simulate
from .recommenders import SegmentPopular
from .shoppers import (
    Population,
    RecImpression,
    SessionContext,
    SessionLog,
    ShopperModel,
    ShopperParams,
    SimEvent,
    population_generate,
    sessions_schedule,
)

__all__ = [
    "PAPER_TRADITIONAL",
    "Catalog",
    "Population",
    "RecImpression",
    "SegmentPopular",
    "SessionContext",
    "SessionLog",
    "ShopperModel",
    "ShopperParams",
    "SimEvent",
    "SimMetrics",
    "catalog_generate",
    "metrics_compute",
    "population_generate",
    "sessions_run",
    "sessions_schedule",
    "traditional_simulate",
]
