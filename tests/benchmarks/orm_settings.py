"""Minimal settings for tests/benchmarks/orm_benchmark.py.

``DATABASE_URL`` selects the database; the script sets ``ORM_BENCHMARK_SQLITE`` (a temporary
file) and ``ORM_BENCHMARK_MASTER_KEY`` (a random key shared with its fresh-process probes).
"""

import base64
import os
import tempfile
from pathlib import Path

import environ

env = environ.Env()

SECRET_KEY = "orm-benchmark-only-not-secret"
DEBUG = False  # no query log: it would cost time and memory in every measurement
USE_TZ = True
TIME_ZONE = "UTC"

_sqlite = os.environ.get("ORM_BENCHMARK_SQLITE") or str(
    Path(tempfile.gettempdir()) / "orm_benchmark.sqlite3"
)
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_sqlite}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same database through psycopg's pool, for the connection-pooling measurement.
    DATABASES["pooled"] = {**DATABASES["default"], "OPTIONS": {"pool": True}}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "alphapulse_encryption",
    "tests.benchmarks",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

ALPHAPULSE_ENCRYPTION = {
    "MASTER_KEYS": {
        1: os.environ.get("ORM_BENCHMARK_MASTER_KEY")
        or base64.urlsafe_b64encode(os.urandom(32)).decode()
    },
    "ACTIVE_KEY_VERSION": 1,
}
# django-fernet-encrypted-fields derives its key from SECRET_KEY and SALT_KEY.
SALT_KEY = "orm-benchmark-salt"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
