"""System checks for keys and settings (ids ``alphapulse_encryption.E00x`` / ``W00x``)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import encryption_settings
from .crypto import ConfigurationError
from .crypto.kdf import DEFAULT_ITERATIONS

_GENERATE_HINT = "Generate a key with `python manage.py encryption_keys generate`."


@checks.register(checks.Tags.security)
def check_keys(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .keys import KeyProvider, SettingsKeyProvider

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
    provider = encryption_settings.KEY_PROVIDER
    # The database keyring wraps its keys with the master key, so it needs one too.
    if not (
        isinstance(provider, type)
        and issubclass(provider, KeyProvider)
        and provider.uses_master_key
    ):
        return messages
    try:
        SettingsKeyProvider().configured_keys()
    except ConfigurationError as exc:
        text = str(exc)
        if text.startswith("no master key"):
            # A warning here, so makemigrations/migrate work on a machine without keys;
            # `check --deploy` (check_keys_for_deployment) makes it an error.
            messages.append(
                checks.Warning(text, hint=_GENERATE_HINT, id="alphapulse_encryption.W001")
            )
            return messages
        elif "active key version" in text:
            check_id = "alphapulse_encryption.E003"
            hint = "Configure the key of the active version, or change ACTIVE_KEY_VERSION."
        else:
            check_id = "alphapulse_encryption.E002"
            hint = "A master key is 32 random bytes, base64-encoded. " + _GENERATE_HINT
        messages.append(checks.Error(text, hint=hint, id=check_id))
    return messages


@checks.register(checks.Tags.security, deploy=True)
def check_keys_for_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Under ``check --deploy`` a missing master key is an error (E001)."""
    return [
        checks.Error(message.msg, hint=message.hint, id="alphapulse_encryption.E001")
        for message in check_keys(app_configs)
        if message.id == "alphapulse_encryption.W001"
    ]
