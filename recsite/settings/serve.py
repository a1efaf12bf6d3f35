"""Settings for `make serve` on one machine: DEBUG off, local hosts allowed, environment services."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=False)
LOGGING_LEVEL = "WARNING"
