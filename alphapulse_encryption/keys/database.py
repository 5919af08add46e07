"""The database keyring: random version keys stored wrapped, rotated online."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import DatabaseError, IntegrityError, router, transaction
from django.db.models import F

from ..conf import encryption_settings
from ..crypto import ConfigurationError, KeyProviderError, Keyring, fingerprint
from .events import record_key_operation
from .providers import KeyProvider, KeyVersionInfo
from .sqlite_locks import waiting_for_sqlite_locks
from .wrapping import KeyWrapper, MasterKeyWrapper

if TYPE_CHECKING:
    from .models import KeyVersion

_LOCK_ID = 1


class DatabaseKeyProvider(KeyProvider):
    """Version keys live in the ``alphapulse_encryption_keyversion`` table, wrapped by the
    master key; ``rotate()`` works online and every process sees the new version within
    ``KEYRING_CACHE_SECONDS`` (or at once, on meeting a value written under it)."""

    read_only = False
    uses_master_key = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def wrapper(self) -> KeyWrapper:
        return MasterKeyWrapper()

    def cache_seconds(self) -> float | None:
        seconds = encryption_settings.KEYRING_CACHE_SECONDS
        if not isinstance(seconds, int | float) or seconds < 0:
            raise ConfigurationError("KEYRING_CACHE_SECONDS must be a number >= 0")
        return float(seconds)

    # -- reading -------------------------------------------------------------------

    def load(self) -> Keyring:
        rows = self._rows()
        if not rows:
            self._add_version(only_if_empty=True)
            rows = self._rows()
        active = [row.version for row in rows if row.status == row.Status.ACTIVE]
        if len(active) != 1:
            raise ConfigurationError(
                f"the database keyring has {len(active)} active versions; it needs exactly one"
            )
        wrapper = self.wrapper()
        keys: dict[int, bytes] = {}
        for row in rows:
            if row.status == row.Status.DESTROYED:
                continue
            key = wrapper.unwrap(row.version, row.wrapped_key, row.wrapped_by)
            if fingerprint(key) != row.fingerprint:
                raise ConfigurationError(
                    f"key version {row.version} of the database keyring does not match its "
                    "recorded fingerprint"
                )
            keys[row.version] = key
        return Keyring(
            keys,
            active[0],
            kdf_iterations=encryption_settings.KDF_ITERATIONS,
            pad_to=encryption_settings.PAD_TO,
        )

    def key_versions(self) -> list[KeyVersionInfo]:
        labels = {"retired": "retired (decrypt-only)"}
        return [
            KeyVersionInfo(
                row.version, labels.get(row.status, row.status), row.fingerprint, row.created_at
            )
            for row in self._rows()
        ]

    def _rows(self) -> list[KeyVersion]:
        from .models import KeyVersion

        using = router.db_for_read(KeyVersion)
        try:
            return waiting_for_sqlite_locks(
                using, lambda: list(KeyVersion.objects.using(using).order_by("version"))
            )
        except DatabaseError as exc:
            raise ConfigurationError(
                "the database keyring cannot be read (has `manage.py migrate` created the "
                f"alphapulse_encryption tables?): {type(exc).__name__}"
            ) from exc

    # -- changing ------------------------------------------------------------------

    def rotate(self) -> int:
        return self._add_version(only_if_empty=False)

    def retire(self, version: int) -> None:
        from .models import KeyVersion

        using = router.db_for_write(KeyVersion)
        waiting_for_sqlite_locks(using, lambda: self._retire(using, version))

    def _retire(self, using: str, version: int) -> None:
        from .models import KeyVersion

        self._ensure_lock_row(using)
        with transaction.atomic(using=using):
            self._lock(using)
            row = (
                KeyVersion.objects.using(using).select_for_update().filter(version=version).first()
            )
            if row is None:
                raise KeyProviderError(f"the database keyring has no key version {version}")
            if row.status == KeyVersion.Status.ACTIVE:
                raise KeyProviderError(
                    f"key version {version} is the active version; rotate first, "
                    "re-encrypt, then retire it"
                )
            row.status = KeyVersion.Status.DESTROYED
            row.wrapped_key = ""
            row.save(update_fields=["status", "wrapped_key"])
        record_key_operation("retire", type(self), version, fingerprint=row.fingerprint)

    def _add_version(self, *, only_if_empty: bool) -> int:
        from .models import KeyVersion

        using = router.db_for_write(KeyVersion)
        return waiting_for_sqlite_locks(using, lambda: self._add(using, only_if_empty))

    def _add(self, using: str, only_if_empty: bool) -> int:
        from .models import KeyVersion

        self._ensure_lock_row(using)
        with transaction.atomic(using=using):
            self._lock(using)
            # A locking read: on MariaDB's REPEATABLE READ a plain read could show a
            # snapshot from before a rotation that committed while we waited for the lock.
            rows = list(KeyVersion.objects.using(using).select_for_update().order_by("version"))
            if rows and only_if_empty:
                return next(r.version for r in rows if r.status == KeyVersion.Status.ACTIVE)
            version = max((row.version for row in rows), default=0) + 1
            new = self.wrapper().new_key(version)
            KeyVersion.objects.using(using).filter(status=KeyVersion.Status.ACTIVE).update(
                status=KeyVersion.Status.RETIRED
            )
            KeyVersion.objects.using(using).create(
                version=version,
                status=KeyVersion.Status.ACTIVE,
                wrapped_key=new.wrapped,
                wrapped_by=new.wrapped_by,
                fingerprint=fingerprint(new.key),
            )
        record_key_operation(
            "bootstrap" if only_if_empty else "rotate",
            type(self),
            version,
            fingerprint=fingerprint(new.key),
            wrapped_by=new.wrapped_by,
        )
        return version

    @staticmethod
    def _ensure_lock_row(using: str) -> None:
        from .models import KeyringLock

        # Outside the rotation's transaction: two first rotations racing to insert the row
        # must not deadlock on MariaDB's gap locks.
        try:
            with transaction.atomic(using=using):
                KeyringLock.objects.using(using).get_or_create(id=_LOCK_ID)
        except IntegrityError:
            pass  # created by a concurrent caller

    @staticmethod
    def _lock(using: str) -> None:
        from .models import KeyringLock

        # A write, so SQLite takes its database lock here and not at a later upgrade.
        KeyringLock.objects.using(using).filter(id=_LOCK_ID).update(changes=F("changes") + 1)
