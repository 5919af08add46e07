"""System checks for keys and settings (ids ``alphapulse_encryption.E00x`` / ``W00x``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import encryption_settings
from .crypto import ConfigurationError, EncryptionError
from .crypto.kdf import DEFAULT_ITERATIONS

_GENERATE_HINT = "Generate a key with `python manage.py encryption_keys generate`."


@checks.register(checks.Tags.security)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    unknown = encryption_settings.unknown_keys()
    if unknown:
        messages.append(
            checks.Warning(
                f"ALPHAPULSE_ENCRYPTION has unknown keys: {', '.join(unknown)}",
                hint="Check the spelling against docs/configuration.md.",
                id="alphapulse_encryption.W002",
            )
        )
    iterations = encryption_settings.KDF_ITERATIONS
    if not isinstance(iterations, int) or iterations < DEFAULT_ITERATIONS:
        messages.append(
            checks.Error(
                f"KDF_ITERATIONS is {iterations!r}; it must be at least {DEFAULT_ITERATIONS:,}",
                hint="Lower values are for test suites only; silence this check "
                "(SILENCED_SYSTEM_CHECKS) there and nowhere else.",
                id="alphapulse_encryption.E004",
            )
        )
    messages.extend(_check_limits())
    messages.extend(_check_master_key())
    return messages


def _check_master_key() -> list[checks.CheckMessage]:
    """W001 (no master key), E002 (an unusable one), E003 (none of the active version),
    for a key provider that uses the master key."""
    from .keys import KeyProvider, SettingsKeyProvider

    provider = encryption_settings.KEY_PROVIDER
    # The database keyring wraps its keys with the master key, so it needs one too.
    if not (
        isinstance(provider, type)
        and issubclass(provider, KeyProvider)
        and provider.uses_master_key
    ):
        return []
    try:
        SettingsKeyProvider().configured_keys()
    except ConfigurationError as exc:
        text = str(exc)
        if text.startswith("no master key"):
            # A warning here, so makemigrations/migrate work on a machine without keys;
            # `check --deploy` (check_keys_for_deployment) makes it an error.
            return [checks.Warning(text, hint=_GENERATE_HINT, id="alphapulse_encryption.W001")]
        elif "active key version" in text:
            check_id = "alphapulse_encryption.E003"
            hint = "Configure the key of the active version, or change ACTIVE_KEY_VERSION."
        else:
            check_id = "alphapulse_encryption.E002"
            hint = "A master key is 32 random bytes, base64-encoded. " + _GENERATE_HINT
        return [checks.Error(text, hint=hint, id=check_id)]
    return []


def _check_limits() -> list[checks.CheckMessage]:
    from .keys.usage import NONCE_BOUND

    problems = []
    size = encryption_settings.MAX_PLAINTEXT_BYTES
    if size is not None and (type(size) is not int or size < 1):
        problems.append(f"MAX_PLAINTEXT_BYTES is {size!r}; it must be None or a positive integer")
    warn_at = encryption_settings.KEY_USAGE_WARN_AT
    if type(warn_at) is not int or not 1 <= warn_at <= NONCE_BOUND:
        problems.append(f"KEY_USAGE_WARN_AT is {warn_at!r}; it must be an integer from 1 to 2**32")
    seconds = encryption_settings.KEY_USAGE_FLUSH_SECONDS
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        problems.append(f"KEY_USAGE_FLUSH_SECONDS is {seconds!r}; it must be a number >= 0")
    return [
        checks.Error(problem, hint="See docs/configuration.md.", id="alphapulse_encryption.E005")
        for problem in problems
    ]


@checks.register(checks.Tags.security, checks.Tags.database)
def check_key_usage(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """W003: a key in use approaches the AES-GCM bound for random nonces. A database
    check, so it runs under ``migrate`` and ``check --database default`` only."""
    from django.db import DatabaseError

    from .keys import EncryptionKeyManager
    from .keys.usage import NONCE_BOUND, counter, over_threshold

    if not databases or _check_limits():
        return []
    try:
        counter.flush_if_due()
        # The versions as the provider lists them: no key is unwrapped, none created.
        versions = EncryptionKeyManager().key_versions()
        found = over_threshold([info.version for info in versions if info.status == "active"])
    except (EncryptionError, DatabaseError):
        return []  # no keys (W001/E00x say so) or no table yet (before migrate)
    return [
        checks.Warning(
            f"key version {version} has encrypted {count:,} values under the context "
            f"{context!r}, past KEY_USAGE_WARN_AT ({encryption_settings.KEY_USAGE_WARN_AT:,}); "
            f"AES-GCM with random nonces allows at most 2**32 ({NONCE_BOUND:,}) per key",
            hint="Rotate to a new key version (`manage.py encryption_keys rotate`, or a new "
            "version in the settings) so new values use a fresh key; see "
            "docs/key-rotation.md.",
            id="alphapulse_encryption.W003",
        )
        for version, context, count in found
    ]


@checks.register(checks.Tags.security, deploy=True)
def check_keys_for_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Under ``check --deploy`` a missing master key is an error (E001)."""
    return [
        checks.Error(message.msg, hint=message.hint, id="alphapulse_encryption.E001")
        for message in check_keys(app_configs)
        if message.id == "alphapulse_encryption.W001"
    ]
