"""The test settings without any master key (settings or environment)."""

from tests.settings import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
ALPHAPULSE_ENCRYPTION: dict[str, object] = {}
