"""Engine registry: name -> "module:Class". Imported lazily so torch loads only when a torch engine runs.

A new engine is one new file in this package plus one line here.
"""

from __future__ import annotations

import importlib

from .base import Engine, InteractionData, ItemFeatures

REGISTRY: dict[str, str] = {
    "pop": "recommender.engines.pop:PopularityEngine",
    "itemknn": "recommender.engines.itemknn:ItemKNNEngine",
    "ease": "recommender.engines.ease:EASEEngine",
    "als": "recommender.engines.als:ALSEngine",
    "bpr": "recommender.engines.als:BPREngine",
    "content": "recommender.engines.content:ContentEngine",
    "sasrec": "recommender.engines.sasrec:SASRecEngine",
    "gru4rec": "recommender.engines.gru4rec:GRU4RecEngine",
    "two_tower": "recommender.engines.two_tower:TwoTowerEngine",
    "hybrid": "recommender.engines.hybrid:HybridEngine",
}

# Engines that train with torch (routed to the `training` Celery queue, CUDA when available).
TORCH_ENGINES = frozenset({"sasrec", "gru4rec", "two_tower"})


def engine_class(name: str) -> type[Engine]:
    """The class registered under `name`; KeyError with the known names when unknown."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise KeyError(f"Unknown engine {name!r}; known engines: {', '.join(sorted(REGISTRY))}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def engine_create(name: str, **params: object) -> Engine:
    return engine_class(name)(**params)


__all__ = [
    "REGISTRY",
    "TORCH_ENGINES",
    "Engine",
    "InteractionData",
    "ItemFeatures",
    "engine_class",
    "engine_create",
]
