"""Model registry: promotion, rollback, the one-active constraint, cache generation, loading versions."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from recommender.models import ModelVersion
from recommender.services import (
    ModelArtifactError,
    model_version_active,
    model_version_load,
    model_version_loaded_clear,
    model_version_promote,
    model_version_rollback,
    registry_generation,
)
from recommender.training import training_run_create, training_run_execute
from tests.recommender._training_fixtures import shop_create, tiny_engine  # noqa: F401

pytestmark = pytest.mark.django_db

Status = ModelVersion.Status


def _version(engine="tinypop", status=Status.CANDIDATE, artifact=True) -> ModelVersion:
    v = ModelVersion(engine=engine, status=status)
    if artifact:
        v.artifact.save(f"{engine}.bin", ContentFile(b"x"), save=False)
    v.save()
    return v


def _status(*versions):
    return [ModelVersion.objects.get(pk=v.pk).status for v in versions]


def test_promote_retires_the_previous_active(django_capture_on_commit_callbacks):
    # given
    v1, v2 = _version(), _version()
    other_engine = _version(engine="pop")
    model_version_promote(version=v1)
    model_version_promote(version=other_engine)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v2)
    # then
    assert _status(v1, v2, other_engine) == [Status.RETIRED, Status.ACTIVE, Status.ACTIVE]
    assert model_version_active(engine="tinypop") == v2
    assert ModelVersion.objects.get(pk=v2.pk).promoted_at is not None


def test_promote_is_idempotent_and_needs_an_artifact():
    v = _version()
    model_version_promote(version=v)
    first = ModelVersion.objects.get(pk=v.pk).promoted_at
    model_version_promote(version=v)
    assert ModelVersion.objects.get(pk=v.pk).promoted_at == first
    with pytest.raises(ValidationError, match="no artifact"):
        model_version_promote(version=_version(artifact=False))
    assert model_version_active(engine="tinypop") == v


def test_database_allows_one_active_version_per_engine():
    _version(status=Status.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        _version(status=Status.ACTIVE)


def test_rollback_walks_back_through_promotions():
    # given: v1, v2, v3 promoted in turn
    v1, v2, v3 = _version(), _version(), _version()
    for v in (v1, v2, v3):
        model_version_promote(version=v)
    never_promoted = _version()
    # when / then
    assert model_version_rollback(engine="tinypop") == v2
    assert _status(v1, v2, v3, never_promoted) == [
        Status.RETIRED,
        Status.ACTIVE,
        Status.RETIRED,
        Status.CANDIDATE,
    ]
    assert model_version_rollback(engine="tinypop") == v1
    assert _status(v1, v2, v3) == [Status.ACTIVE, Status.RETIRED, Status.RETIRED]
    with pytest.raises(ValidationError, match="No earlier version"):
        model_version_rollback(engine="tinypop")
    assert model_version_active(engine="tinypop") == v1


def test_rollback_without_history_is_a_clear_error():
    with pytest.raises(ValidationError, match="No earlier version of 'pop'"):
        model_version_rollback(engine="pop")


def test_promotion_and_rollback_bump_the_cache_generation(django_capture_on_commit_callbacks):
    v1, v2 = _version(), _version()
    start = registry_generation()
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v1)
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v2)
    assert registry_generation() == start + 2
    with django_capture_on_commit_callbacks(execute=True):
        model_version_rollback(engine="tinypop")
    assert registry_generation() == start + 3


def test_promotion_works_with_the_cache_down(settings, django_capture_on_commit_callbacks):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    v = _version()
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v)
    assert model_version_active(engine="tinypop") == v
    assert registry_generation() == 0


def test_load_a_trained_version_and_its_maps(tiny_engine):
    shop = shop_create(n_products=6)
    run = training_run_execute(run_id=training_run_create(engine=tiny_engine, enqueue=False).pk)
    loaded = model_version_load(version=run.model_version)
    assert sorted(loaded.product_index) == sorted(p.pk for p in shop["products"])
    ids, _ = loaded.engine.recommend([[]], 3)
    assert all(loaded.product_ids[i] in loaded.product_index for i in ids[0])
    assert f"c:{shop['customers'][0].pk}" in loaded.user_index
    assert model_version_load(version=run.model_version) is loaded  # cached per process


def test_load_a_corrupt_or_missing_artifact_raises_artifact_error(tiny_engine):
    shop_create(n_products=4)
    version = training_run_execute(
        run_id=training_run_create(engine=tiny_engine, enqueue=False).pk
    ).model_version
    model_version_loaded_clear()
    with version.artifact.open("wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(ModelArtifactError, match="cannot load"):
        model_version_load(version=version)
    with pytest.raises(ModelArtifactError, match="no stored artifact"):
        model_version_load(version=_version(artifact=False))


@pytest.mark.realservices
def test_promote_and_rollback_on_the_real_database(django_capture_on_commit_callbacks):
    v1, v2 = _version(), _version()
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version=v1)
        model_version_promote(version=v2)
    assert _status(v1, v2) == [Status.RETIRED, Status.ACTIVE]
    assert model_version_rollback(engine="tinypop") == v1
    with pytest.raises(IntegrityError), transaction.atomic():
        _version(status=Status.ACTIVE)
