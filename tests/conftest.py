"""Shared pytest fixtures. App-specific fixtures live in tests/<app>/conftest.py."""

import contextlib
import os
import shutil

import pytest
from django.conf import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-service tests run only when DATABASE_URL/REDIS_URL are configured (make test's second pass)."""
    if getattr(settings, "TEST_USES_REAL_SERVICES", False):
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL/Redis: run by `make test` when DATABASE_URL/REDIS_URL are set"
    )
    for item in items:
        if "realservices" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (the local-memory cache outlives tests otherwise)."""
    from django.core.cache import cache

    with contextlib.suppress(Exception):  # a test that points the cache at a dead server must still run
        cache.clear()
    yield


@pytest.fixture
def chromium_paths() -> tuple[str, str]:
    """Paths to Debian's chromium and chromedriver; skips the test visibly when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("headless Chromium not installed (apt-get install chromium chromium-driver)")
    return browser, driver
