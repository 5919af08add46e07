"""Signals the package sends; the audit log (and users) listen to them.

Fields never import the admin or the audit models: they send these, audit receives.
"""

from django.dispatch import Signal

# sender=model class; instance, field, reason, key_version
decryption_failed = Signal()
# sender=provider class; action ("load", "rotate", "retire", "reencrypt"), key_version, detail
key_operation = Signal()
