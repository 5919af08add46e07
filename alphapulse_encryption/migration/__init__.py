"""The engine behind ``manage.py encrypt_migrate``: plaintext columns to encrypted ones.

Modules: ``pairs`` (what is migrated), ``data`` (--migrate-data), ``verify``, ``views``
(--create-views), ``schema`` (--add-columns, --drop-unencrypted), ``models`` (the
``encryption_migrations`` table). Nothing is imported here, so ``models.py`` can import
``migration.models`` while the app registry loads.
"""
