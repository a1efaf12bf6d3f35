"""GET /api/v1/health and the OpenAPI schema of the catalog endpoints."""

import pytest
from django.db import connection
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from catalog.api.serializers import EventInSerializer
from catalog.services.events import FIELDS

pytestmark = pytest.mark.django_db


def test_health_ok():
    response = Client().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "cache": True}


def test_health_needs_no_csrf_or_key_and_is_not_throttled(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "1/min"},
    }
    client = Client(enforce_csrf_checks=True)
    assert [client.get("/api/v1/health").status_code for _ in range(3)] == [200, 200, 200]


def test_health_is_503_when_the_database_is_down(monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = Client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": False, "cache": True}


def test_health_is_503_when_the_cache_is_down(monkeypatch):
    from django.core.cache import cache

    def broken_get(*args, **kwargs):
        raise ConnectionError("redis down")

    monkeypatch.setattr(cache, "get", broken_get)
    response = Client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": True, "cache": False}


def test_health_rejects_post():
    assert Client().post("/api/v1/health").status_code == 405


def test_schema_documents_events_and_health_and_is_valid():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on an invalid OpenAPI document
    events = schema["paths"]["/api/v1/events"]["post"]
    assert set(events["responses"]) >= {"200", "207", "400", "401", "403", "413", "429"}
    assert {"apiKeyAuth": []} in events["security"] and {"storefrontSession": []} in events["security"]
    batch = schema["components"]["schemas"]["EventOrBatch"]["oneOf"]
    assert batch[1]["type"] == "array"
    health = schema["paths"]["/api/v1/health"]["get"]
    assert set(health["responses"]) == {"200", "503"}


def test_documented_event_fields_match_what_the_service_accepts():
    assert set(EventInSerializer().fields) == set(FIELDS)


def test_docs_page_renders():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    assert Client().get("/api/schema/").status_code == 200
