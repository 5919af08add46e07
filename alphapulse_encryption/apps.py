"""App configuration: every global side effect (checks, signal receivers) lives in ready()."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.core.signals import request_finished, setting_changed
from django.db.models.signals import class_prepared


def _flush_key_usage(**kwargs: Any) -> None:
    from .keys.usage import counter

    counter.flush_if_due()


def _install_queryset(sender: Any, **kwargs: Any) -> None:
    if sender.__module__ == "__fake__":
        return  # a historical model rendered by the migration framework, many times over
    from .fields import queryset

    queryset.install(sender)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "ALPHAPULSE_ENCRYPTION":
        from .keys import reset

        reset()


class AlphapulseEncryptionConfig(AppConfig):
    name = "alphapulse_encryption"
    verbose_name = "Encryption"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .audit.receivers import connect_receivers
        from .fields import queryset
        from .serializers import register

        register()
        connect_receivers()
        for model in apps.get_models():
            queryset.install(model)
        # Models defined later (at run time, in tests) get it when their class is ready.
        class_prepared.connect(_install_queryset, dispatch_uid="alphapulse_encryption.queryset")

        setting_changed.connect(_on_setting_changed, dispatch_uid="alphapulse_encryption")
        request_finished.connect(_flush_key_usage, dispatch_uid="alphapulse_encryption.usage")
