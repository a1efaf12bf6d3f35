"""Settings for `make serve` on one machine: DEBUG off, local hosts allowed, environment services."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=False)
LOGGING_LEVEL = "WARNING"
# Impressions are written by a buffered background writer, not inside the request.
RECSITE_IMPRESSIONS_ASYNC = env.bool("RECSITE_IMPRESSIONS_ASYNC", default=True)
