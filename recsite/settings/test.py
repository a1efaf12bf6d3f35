"""Test settings: the embedded defaults unless DATABASE_URL / REDIS_URL are given (real-service pass)."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="recsite-test-media-"))
RECSITE_ARTIFACT_DIR = MEDIA_ROOT / "models"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
        "anon": "100000/min",
        "user": "100000/min",
        "events": "100000/min",
        "recommendations": "100000/min",
    },
}
TEST_USES_REAL_SERVICES = bool(env("DATABASE_URL", default="")) or bool(env("REDIS_URL", default=""))
# Admin-started training runs execute inline in tests (no background thread holding the test database).
RECSITE_TRAINING_IN_THREAD = False
# Per-process serving memos off in tests, so every write is seen at once (tests that exercise the memo
# turn it on with override_settings).
RECSITE_SERVING_MEMO_SECONDS = 0
RECSITE_SERVING_ATTRS_SECONDS = 0
RECSITE_API_KEY_CACHE_SECONDS = 0
