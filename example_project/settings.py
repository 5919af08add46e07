"""Settings of the example trading back office. Read with django-environ.

SQLite by default; ``DATABASE_URL`` selects PostgreSQL or MariaDB. The master key comes
from ``ALPHAPULSE_ENCRYPTION_MASTER_KEY``; for the demo only, a key is generated into
``example_project/.demo-key`` (git-ignored) when none is set. It wraps the keys of the
database keyring.
"""

import base64
import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="demo-only-insecure-secret-key")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'demo.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # psycopg's pool (Django 5.1+, the `postgres` extra): requests reuse open connections
    # instead of paying a PostgreSQL connection set-up each (see docs/performance.md).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "alphapulse_encryption",
    "example_project.backoffice",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _demo_key() -> str:
    path = BASE_DIR / ".demo-key"
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    return path.read_text().strip()


if not env("ALPHAPULSE_ENCRYPTION_MASTER_KEY", default=""):
    os.environ["ALPHAPULSE_ENCRYPTION_MASTER_KEY"] = _demo_key()

# The database keyring: random version keys in the table alphapulse_encryption_keyversion,
# wrapped by the master key above (the key-encryption key), so that rotate_keys() and
# `manage.py encryption_keys rotate` work online (docs/key-rotation.md).
ALPHAPULSE_ENCRYPTION = {"KEY_PROVIDER": "alphapulse_encryption.keys.DatabaseKeyProvider"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Masks e-mail addresses, phone, card and account numbers in every record handled.
    "filters": {"mask": {"()": "alphapulse_encryption.logging.MaskingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["mask"]}},
    "loggers": {"alphapulse_encryption": {"handlers": ["console"], "level": "WARNING"}},
}
