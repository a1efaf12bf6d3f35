"""Settings for `make serve` on one machine: DEBUG off, local hosts allowed, environment services."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=False)
LOGGING_LEVEL = "WARNING"
# Impressions are written by a buffered background writer, not inside the request.
RECSITE_IMPRESSIONS_ASYNC = env.bool("RECSITE_IMPRESSIONS_ASYNC", default=True)

# Under ASGI every request runs its sync code in a fresh thread, so persistent per-thread connections
# (CONN_MAX_AGE) pile up until PostgreSQL answers "too many clients". A psycopg pool per worker bounds them.
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405  (pooling requires it)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {  # noqa: F405
        "min_size": 2,
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": 10,
    }
