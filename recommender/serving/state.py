"""Forget this process's serving state: loaded models, memos, the cache circuit breaker (tests, after a
deploy, between simulation runs)."""

from __future__ import annotations

from ..services import model_version_loaded_clear
from .attributes import attrs_state_reset
from .cache import cache_breaker_reset
from .loading import loading_state_reset
from .widgets import widget_memo_clear


def serving_state_reset() -> None:
    cache_breaker_reset()
    loading_state_reset()
    model_version_loaded_clear()
    attrs_state_reset()
    widget_memo_clear()
