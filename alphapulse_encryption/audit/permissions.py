"""Who may reveal an encrypted value: the global ``alphapulse_encryption.reveal_encrypted``
permission, or ``<app_label>.reveal_<model_name>`` for one model (created by ``migrate``
for every model with an encrypted field)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, models, router

from ..introspection import encrypted_fields

REVEAL_ANY = "alphapulse_encryption.reveal_encrypted"


def reveal_codename(model: type[models.Model]) -> str:
    return f"reveal_{model._meta.model_name}"


def reveal_permission(model: type[models.Model]) -> str:
    """The per-model permission, as ``user.has_perm()`` takes it."""
    return f"{model._meta.app_label}.{reveal_codename(model)}"


def can_reveal(user: Any, model: type[models.Model]) -> bool:
    return bool(user.has_perm(REVEAL_ANY) or user.has_perm(reveal_permission(model)))


def create_reveal_permissions(
    app_config: AppConfig,
    verbosity: int = 2,
    interactive: bool = True,
    using: str = DEFAULT_DB_ALIAS,
    apps: Any = global_apps,
    **kwargs: Any,
) -> None:
    """``post_migrate`` receiver: a reveal permission for each model of ``app_config`` that
    has encrypted fields (as ``django.contrib.auth`` creates the default permissions)."""
    if not app_config.models_module:
        return
    try:
        content_type_model = apps.get_model("contenttypes", "ContentType")
        permission_model = apps.get_model("auth", "Permission")
    except LookupError:
        return
    if not router.allow_migrate_model(using, permission_model):
        return
    from django.contrib.contenttypes.management import create_contenttypes

    create_contenttypes(
        app_config, verbosity=verbosity, interactive=interactive, using=using, apps=apps
    )
    for model in app_config.get_models():
        if not encrypted_fields(model):
            continue
        content_type = content_type_model.objects.db_manager(using).get_for_model(
            model, for_concrete_model=False
        )
        permission_model.objects.using(using).get_or_create(
            content_type=content_type,
            codename=reveal_codename(model),
            defaults={"name": f"Can reveal encrypted values of {model._meta.verbose_name_raw}"},
        )
