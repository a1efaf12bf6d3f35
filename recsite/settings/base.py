"""Settings read from the environment through one `env` object.

Embedded defaults (nothing set): SQLite, Celery eager, in-memory channel layer, local-memory cache.
`DATABASE_URL` switches to PostgreSQL (psycopg 3); `REDIS_URL` switches the cache, the Celery broker
and result backend and the channel layer to Redis. See README.md for every variable.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="dev-insecure-key-change-me-in-production-0123456789abcdef")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "channels",
    "django_celery_beat",
    "catalog",
    "recommender",
    "experiments",
    "chatbot",
    "recsite",  # last: its post_migrate grants the role groups every app's permissions (recsite/roles.py)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "catalog.middleware.VisitorMiddleware",
]

ROOT_URLCONF = "recsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "catalog.context_processors.storefront",
            ],
        },
    },
]

WSGI_APPLICATION = "recsite.wsgi.application"
ASGI_APPLICATION = "recsite.asgi.application"

# --- Database: SQLite unless DATABASE_URL is set (postgres://user@host:port/name) ---
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update({"timeout": 20})
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database_pool_enable(databases: dict) -> None:
    """Use a psycopg connection pool for PostgreSQL (what ASGI servers need).

    Under ASGI every request runs its sync code in a fresh thread, so persistent per-thread connections
    (CONN_MAX_AGE) pile up until PostgreSQL answers "too many clients"; a pool per worker bounds them.
    SQLite is left alone.
    """
    db = databases["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return
    db["CONN_MAX_AGE"] = 0  # pooling requires it
    db.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 2,
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": 10,
    }


# --- Redis: cache, Celery broker/result backend, channel layer ---
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "recsite.cache.RedisCache",  # Django's, reusing one client per pool
            "LOCATION": REDIS_URL,
            "TIMEOUT": 3600,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "recsite",
            "TIMEOUT": 3600,
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"recommender.tasks.training_run_execute_torch_task": {"queue": "training"}}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "catalog:login"
LOGIN_REDIRECT_URL = "catalog:account"
LOGOUT_REDIRECT_URL = "catalog:home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Model artifacts live in Django storage under this prefix.
RECSITE_ARTIFACT_DIR = Path(env("RECSITE_ARTIFACT_DIR", default=str(MEDIA_ROOT / "models")))

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("THROTTLE_ANON", default="600/min"),
        "user": env("THROTTLE_USER", default="3000/min"),
        "events": env("THROTTLE_EVENTS", default="1200/min"),
        "recommendations": env("THROTTLE_RECOMMENDATIONS", default="6000/min"),
    },
    "EXCEPTION_HANDLER": "recsite.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RecSite API",
    "DESCRIPTION": "Event tracking, recommendations and experiments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
# API keys: `Authorization: Api-Key <key>` is djangorestframework-api-key's default parser; do not set
# API_KEY_CUSTOM_HEADER = "HTTP_AUTHORIZATION" (that makes HasAPIKey read the whole header, "Api-Key ...",
# as the key, so every key fails). recsite.api.APIKeyAuthentication is the shared authentication class.

# Events whose timestamp is further in the future than this are rejected (client clock skew).
RECSITE_EVENT_MAX_FUTURE_SKEW_SECONDS = env.int("EVENT_MAX_FUTURE_SKEW_SECONDS", default=300)
RECSITE_EVENT_BATCH_MAX = 500

# --- Training and the model registry (recommender.training, recommender.tasks) ---
# A new version is promoted automatically when its NDCG@10 on the held-out temporal split is at least
# (1 - tolerance) x the active version's on the same split.
RECSITE_PROMOTION_TOLERANCE = env.float("RECSITE_PROMOTION_TOLERANCE", default=0.02)
RECSITE_PROMOTION_METRIC = env("RECSITE_PROMOTION_METRIC", default="ndcg@10")
# Share of the shop's events (the most recent ones) held out to evaluate a run, and the test-user cap.
RECSITE_EVAL_TEST_FRACTION = env.float("RECSITE_EVAL_TEST_FRACTION", default=0.1)
RECSITE_EVAL_MAX_USERS = env.int("RECSITE_EVAL_MAX_USERS", default=5000)
# Retrain when this many events arrived since an engine's last successful run (checked every 15 minutes).
RECSITE_RETRAIN_EVENT_THRESHOLD = env.int("RECSITE_RETRAIN_EVENT_THRESHOLD", default=50_000)
# A run still "running" after this long is presumed dead (worker killed) and marked failed.
RECSITE_TRAINING_STALE_SECONDS = env.int("RECSITE_TRAINING_STALE_SECONDS", default=6 * 3600)
# With eager Celery (no broker), admin-started runs train in a background thread so the page can poll.
RECSITE_TRAINING_IN_THREAD = env.bool("RECSITE_TRAINING_IN_THREAD", default=True)
# Strategy -> engine pins (recommender.strategies); e.g. RECSITE_PERSONALIZED_ENGINE=hybrid. Unset (the
# default), the personalized engine is the winner of the shop's held-out evaluation (EngineChoice).
RECSITE_STRATEGY_ENGINES = (
    {"personalized": env("RECSITE_PERSONALIZED_ENGINE")}
    if env("RECSITE_PERSONALIZED_ENGINE", default="")
    else {}
)
# Engines compared for a strategy at training time ({strategy: [engines]}); default: strategies.CHOICE_CANDIDATES.
RECSITE_ENGINE_CHOICE_CANDIDATES: dict[str, list[str]] = {}
CELERY_BEAT_SCHEDULE = {
    # The nightly retrain lives in the database (django-celery-beat, data migration recommender 0002).
    "recommender-retrain-if-events": {
        "task": "recommender.tasks.retrain_if_events_task",
        "schedule": env.float("RECSITE_RETRAIN_CHECK_SECONDS", default=900.0),
        "options": {"queue": "default"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Serving (recommender.serving) ---
# Impressions: False = one bulk insert per request inside it; True = a buffered background writer per
# process (bulk inserts every 0.5 s), what `make serve` uses. Batch-precomputed candidates live this long.
RECSITE_IMPRESSIONS_ASYNC = env.bool("RECSITE_IMPRESSIONS_ASYNC", default=False)
RECSITE_BATCH_TTL = env.int("RECSITE_BATCH_TTL", default=24 * 3600)
# Decision traces (why each served list looks the way it does) are stored with the impressions, and
# deleted after this many days by a daily Celery beat task (0 = keep forever).
RECSITE_TRACE_RECORD = env.bool("RECSITE_TRACE_RECORD", default=True)
RECSITE_TRACE_RETENTION_DAYS = env.int("RECSITE_TRACE_RETENTION_DAYS", default=90)
# Per-process memo of the serving hot path, in seconds (0 = off): active model versions and widgets (a
# promotion or widget edit still shows within about 1 s through the generation counters), and the product
# attributes the rules read (stock, price, active flag: edits reach the rules within this TTL).
RECSITE_SERVING_MEMO_SECONDS = env.float("RECSITE_SERVING_MEMO_SECONDS", default=5.0)
RECSITE_SERVING_ATTRS_SECONDS = env.float("RECSITE_SERVING_ATTRS_SECONDS", default=30.0)
# Verified API keys remembered per process (revocations in other processes take effect within this). 0 = off.
RECSITE_API_KEY_CACHE_SECONDS = env.float("RECSITE_API_KEY_CACHE_SECONDS", default=30.0)
