from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    name = "example_project.backoffice"
    label = "backoffice"
    default_auto_field = "django.db.models.BigAutoField"
