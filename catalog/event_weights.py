"""The one table of event weights (pure: no Django import). How much one event of each type says.

Two columns, because two questions are asked of an event:

- `interaction`: the strength it adds to a (shopper, product) cell of the training matrix
  (`recommender.data`; a rating adds `interaction * (stars - 2)`, see RATING_NEUTRAL there);
- `popularity`: the points it gives a product in popularity and trending lists (`catalog.selectors`
  product popularity, `recommender.serving.candidates` trending / popular / segment lists).

Every reader imports these names; no other copy exists. (The simulator's reference recommender,
`experiments.simulator.recommenders`, keeps its own study-defined weights — view 1, add to cart 3,
purchase 5, clicks and dwells ignored — because it reproduces a published environment, not this shop.)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# event type -> (interaction, popularity)
EVENT_WEIGHT_TABLE: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "view": (1.0, 1.0),
        "click": (2.0, 1.0),
        "dwell": (0.0, 1.0),
        "rate": (2.0, 2.0),  # interaction: per star above 2 (5 stars -> 6.0)
        "add_to_cart": (4.0, 3.0),
        "remove_from_cart": (0.0, 0.0),
        "purchase": (8.0, 5.0),
    }
)

INTERACTION_WEIGHTS: Mapping[str, float] = MappingProxyType({t: w[0] for t, w in EVENT_WEIGHT_TABLE.items()})
# Only the types that count (a zero weight would make popularity queries scan events for nothing).
POPULARITY_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {t: w[1] for t, w in EVENT_WEIGHT_TABLE.items() if w[1] > 0}
)
