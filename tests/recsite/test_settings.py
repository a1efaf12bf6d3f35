"""Settings: embedded defaults, environment switches, and the production deploy check."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_defaults_without_environment():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='recsite.settings.base'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'],"
        " s.CELERY_TASK_ALWAYS_EAGER, s.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    out = _run(code).stdout.split()
    assert out == [
        "django.db.backends.sqlite3",
        "django.core.cache.backends.locmem.LocMemCache",
        "True",
        "channels.layers.InMemoryChannelLayer",
    ]


def test_database_and_redis_urls_switch_to_real_services():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='recsite.settings.base'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'], s.CELERY_BROKER_URL,"
        " s.CELERY_TASK_ALWAYS_EAGER, s.CHANNEL_LAYERS['default']['BACKEND'])"
    )
    out = _run(
        code, DATABASE_URL="postgres://u@db.example:5432/shop", REDIS_URL="redis://cache:6379/1"
    ).stdout.split()
    assert out == [
        "django.db.backends.postgresql",
        "recsite.cache.RedisCache",
        "redis://cache:6379/1",
        "False",
        "channels_redis.core.RedisChannelLayer",
    ]


def test_production_settings_pass_check_deploy():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "DJANGO_SETTINGS_MODULE": "recsite.settings.production",
            "SECRET_KEY": "k3v!9Zp#Qw7@Lm2^Rt5&Yx8*Bn4(Hc6)Dj1_Fs0+Ge-Ua=Oi~Pl",
            "ALLOWED_HOSTS": "shop.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"SECRET_KEY"}},
            "DJANGO_SETTINGS_MODULE": "recsite.settings.production",
            "ALLOWED_HOSTS": "shop.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_redis_cache_reuses_one_client_per_pool():
    from recsite.cache import RedisCache

    backend = RedisCache("redis://127.0.0.1:6399/0", {"OPTIONS": {}})
    client = backend._cache  # noqa: SLF001  (the backend's client object, as Django builds it)
    assert client.get_client(write=False) is client.get_client(write=False)
    assert client.get_client(write=True) is client.get_client(write=True)
