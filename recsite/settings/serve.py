"""Settings for `make serve` on one machine: DEBUG off, local hosts allowed, environment services."""

from .base import *  # noqa: F403
from .base import database_pool_enable, env

DEBUG = env.bool("DEBUG", default=False)
# Impressions are written by a buffered background writer, not inside the request.
RECSITE_IMPRESSIONS_ASYNC = env.bool("RECSITE_IMPRESSIONS_ASYNC", default=True)

# Under ASGI every request runs its sync code in a fresh thread: bound PostgreSQL connections with a pool.
database_pool_enable(DATABASES)  # noqa: F405
