"""Signals the package sends; the audit log (and users) listen to them.

Fields never import the admin or the audit models: they send these, audit receives.
"""

from django.dispatch import Signal

# sender=model class; instance, field, reason, key_version
decryption_failed = Signal()
# sender=provider class; action ("load", "rotate", "retire", "reencrypt"), key_version, detail
key_operation = Signal()
# sender=the encrypt_migrate Command class; step ("add_columns", "migrate_data", "verify",
# "create_views", "drop_unencrypted"), table (or None for all), outcome ("ok" or the error)
migration_run = Signal()
