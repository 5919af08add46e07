"""The engine behind ``manage.py encrypt_migrate``: plaintext columns to encrypted ones.

Modules: ``pairs`` (what is migrated, which rows are pending), ``data`` (--migrate-data:
the batches), ``encryption`` (a batch's values encrypted), ``writers`` (a batch's
ciphertexts stored), ``failures`` (the rows that failed), ``workers`` (--workers: more
processes), ``verify``, ``views`` (--create-views), ``schema`` (--add-columns,
--drop-unencrypted), ``models`` (the ``encryption_migrations`` table). Nothing is imported
here, so ``models.py`` can import ``migration.models`` while the app registry loads.
"""
