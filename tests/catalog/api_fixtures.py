"""Fixtures for the catalog API tests: API keys and CSRF-enforcing clients.

Test modules import the *_fixture functions (a module, not tests/catalog/conftest.py, so that this
file stays separate from fixtures other areas may add there); `name=` keeps the short fixture names.
"""

import uuid

import pytest
from django.conf import settings
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from rest_framework_api_key.models import APIKey


@pytest.fixture(name="api_key")
def api_key_fixture(db) -> str:
    _, key = APIKey.objects.create_key(name="test-client")
    return key


@pytest.fixture(name="api_client")
def api_client_fixture(api_key) -> Client:
    """A server-to-server client: API key, and CSRF checks on (it must not need them)."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Api-Key {api_key}")


@pytest.fixture(name="browser")
def browser_fixture() -> tuple[Client, str]:
    """A browser with a csrftoken cookie; returns (client, token to send back)."""
    client = Client(enforce_csrf_checks=True)
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies[settings.CSRF_COOKIE_NAME] = request.META["CSRF_COOKIE"]
    return client, token


def new_event(**fields) -> dict:
    event = {"event_id": str(uuid.uuid4()), "type": "view", "visitor_id": "visitor-abcdef12"}
    event.update(fields)
    return event
