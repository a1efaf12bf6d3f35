"""Settings for `make serve` on one machine: DEBUG off, local hosts allowed, environment services."""

from .base import *  # noqa: F403
from .base import database_pool_enable, env

DEBUG = env.bool("DEBUG", default=False)
# Impressions are written by a buffered background writer, not inside the request.
RECSITE_IMPRESSIONS_ASYNC = env.bool("RECSITE_IMPRESSIONS_ASYNC", default=True)

# Under ASGI every request runs its sync code in a fresh thread: bound PostgreSQL connections with a pool.
database_pool_enable(DATABASES)  # noqa: F405
# Workers move the heap that is alive after a model loads out of the garbage collector's reach (gc.freeze):
# shorter full-collection pauses (recommender.serving.model_load).
RECSITE_GC_FREEZE = env.bool("RECSITE_GC_FREEZE", default=True)
