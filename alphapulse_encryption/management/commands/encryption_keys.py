"""``manage.py encryption_keys``: generate, status, rotate, reencrypt, retire."""

from __future__ import annotations

import base64
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ...crypto import EncryptionError
from ...keys import EncryptionKeyManager, usage
from ...migration import reencrypt as service
from ..errors import database_error


class Command(BaseCommand):
    help = (
        "Manage encryption keys: generate a master key, show key versions and their use, "
        "rotate, re-encrypt old rows, retire a version."
    )

    VERSION_LINE = "version {version}  {status:<22}  fingerprint {fingerprint}"
    USAGE_HEADER = "Stored values by key version:"
    USAGE_LINE = "  {field}: {counts}"
    NO_VALUES = "no values"
    ENCRYPTIONS_HEADER = (
        "Encryptions per key version (AES-GCM with random nonces: at most 2**32 per "
        "version and context; warning at {warn_at:,}):"
    )
    ENCRYPTIONS_LINE = (
        "  version {version}: {total:,} in {contexts} context(s); most under one context: "
        "{busiest:,} ({busiest_context})"
    )
    NO_ENCRYPTIONS = "  none counted yet"
    ENCRYPTIONS_WARNING = (
        "Key version {version} has encrypted {count:,} values under {context}, past "
        "KEY_USAGE_WARN_AT ({warn_at:,}; the bound is 2**32). Rotate to a new key version."
    )
    TABLE_MISSING = (
        "The table {table} does not exist, so the encryptions per key version cannot be "
        "counted. Hint: run `manage.py migrate` to create the alphapulse_encryption tables."
    )
    ROTATED = "Key version {version} is now active."
    REENCRYPT_BATCH = "{model}: {scanned} rows scanned, {moved} moved, {failed} failed"
    REENCRYPT_DONE = "{model}: {moved} of {scanned} rows moved to key version {version}."
    REENCRYPT_DATABASE_FAILED = (
        "The database failed during the run ({error}). Batches committed before the failure "
        "are kept; the batch in progress was rolled back. Hint: run `manage.py encryption_keys "
        "reencrypt` again to resume: rows already under the active version are skipped."
    )
    REENCRYPT_FAILED = (
        "{model}: {failed} row(s) could not be decrypted and were left as they are (pk: {pks})."
    )
    RETIRE_IN_USE = (
        "Key version {version} is still used by {count} stored value(s); run "
        "`manage.py encryption_keys reencrypt` first. Retiring it anyway makes those "
        "values unreadable for good: add --force --yes to do so."
    )
    RETIRE_NEEDS_CONFIRMATION = (
        "--force destroys key version {version} although stored values may use it; "
        "confirm with --yes."
    )
    RETIRED = "Key version {version} is retired; its key is destroyed."
    RETIRED_FORCED = (
        "Key version {version} is retired; {count} stored value(s) that used it can no "
        "longer be decrypted."
    )

    # action: (its line in `encryption_keys --help`, the description in `ACTION --help`)
    ACTION_HELP = {
        "generate": (
            "Print a fresh random master key (base64); needs no configured key.",
            "Print a fresh random master key (32 bytes, base64).",
        ),
        "status": (
            "Show key versions, fingerprints, encryptions and stored values per version.",
            "Show key versions, fingerprints, encryptions and stored values per version.",
        ),
        "rotate": (
            "Create and activate a new key version (database or KMS provider).",
            "Create and activate a new key version (database or KMS provider).",
        ),
        "reencrypt": (
            "Move stored values to the active key version, in batches.",
            "Move stored values to the active key version, in batches; resumable: rows "
            "already under the active version are skipped.",
        ),
        "retire": (
            "Retire a key version that no stored value uses any more.",
            "Retire a key version that no stored value uses any more: its key is destroyed.",
        ),
    }

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="action",
            required=True,
            metavar="ACTION",
            help="What to do; `manage.py encryption_keys ACTION --help` explains each.",
        )
        actions = {
            name: sub.add_parser(name, help=short, description=long)
            for name, (short, long) in self.ACTION_HELP.items()
        }
        reencrypt, retire = actions["reencrypt"], actions["retire"]
        reencrypt.add_argument(
            "--model",
            metavar="APP_LABEL.MODEL",
            help="Only this model (default: every model with encrypted fields).",
        )
        reencrypt.add_argument(
            "--batch-size",
            type=int,
            default=service.DEFAULT_BATCH_SIZE,
            help="Rows per batch, one transaction each (default: %(default)s).",
        )
        retire.add_argument(
            "version",
            type=int,
            metavar="VERSION",
            help="The key version to retire, a number as `encryption_keys status` lists it.",
        )
        retire.add_argument(
            "--force",
            action="store_true",
            help="Retire even while stored values still use it (they become unreadable).",
        )
        retire.add_argument("--yes", action="store_true", help="Confirm --force.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "generate":
            self.stdout.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"))
            return
        handler = getattr(self, f"_{action}")
        try:
            handler(**options)
        except (EncryptionError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    def _status(self, **options: Any) -> None:
        versions = EncryptionKeyManager().key_versions()
        for info in versions:
            self.stdout.write(
                self.VERSION_LINE.format(
                    version=info.version, status=info.status, fingerprint=info.fingerprint
                )
            )
        self._encryption_counts(versions)
        usage = service.key_version_usage()
        if not usage:
            return
        self.stdout.write(self.USAGE_HEADER)
        known = [info.version for info in versions]
        for entry in usage:
            shown = sorted(set(known) | {v for v in entry.counts if isinstance(v, int)})
            parts = [f"v{v}={entry.counts.get(v, 0)}" for v in shown]
            if entry.counts.get(service.UNREADABLE):
                parts.append(f"{service.UNREADABLE}={entry.counts[service.UNREADABLE]}")
            self.stdout.write(
                self.USAGE_LINE.format(field=entry.label, counts=" ".join(parts) or self.NO_VALUES)
            )

    def _encryption_counts(self, versions: list[Any]) -> None:
        try:
            usage.counter.flush()
            counts = usage.usage_counts()
        except DatabaseError as exc:
            table = usage.missing_table()
            if table is None:
                raise
            raise CommandError(self.TABLE_MISSING.format(table=table)) from exc
        warn_at = usage.warn_at()
        self.stdout.write(self.ENCRYPTIONS_HEADER.format(warn_at=warn_at))
        per_version = usage.usage_by_version(counts)
        for entry in per_version:
            self.stdout.write(self.ENCRYPTIONS_LINE.format(**vars(entry)))
        if not per_version:
            self.stdout.write(self.NO_ENCRYPTIONS)
        # Only the active version encrypts; an older one near the bound is no risk any more.
        active = [info.version for info in versions if info.status == "active"]
        for version, context, count in usage.over_threshold(active, counts):
            self.stderr.write(
                self.style.WARNING(
                    self.ENCRYPTIONS_WARNING.format(
                        version=version, context=context, count=count, warn_at=warn_at
                    )
                )
            )

    def _rotate(self, **options: Any) -> None:
        version = EncryptionKeyManager().rotate_keys()
        self.stdout.write(self.style.SUCCESS(self.ROTATED.format(version=version)))

    def _reencrypt(self, *, model: str | None, batch_size: int, verbosity: int, **_: Any) -> None:
        def report(progress: service.ReencryptProgress) -> None:
            if verbosity >= 2:
                self.stdout.write(self.REENCRYPT_BATCH.format(**vars(progress)))

        try:
            results = service.reencrypt(model, batch_size=batch_size, on_batch=report)
        except DatabaseError as exc:
            raise CommandError(
                self.REENCRYPT_DATABASE_FAILED.format(error=database_error(exc))
            ) from exc
        version = EncryptionKeyManager().active_version
        for progress in results:
            if verbosity >= 1:
                self.stdout.write(
                    self.style.SUCCESS(
                        self.REENCRYPT_DONE.format(version=version, **vars(progress))
                    )
                )
            if progress.failed:
                pks = ", ".join(str(pk) for pk in progress.failed_pks[:20])
                self.stderr.write(self.REENCRYPT_FAILED.format(pks=pks, **vars(progress)))

    def _retire(self, *, version: int, force: bool, yes: bool, **_: Any) -> None:
        if force and not yes:
            raise CommandError(self.RETIRE_NEEDS_CONFIRMATION.format(version=version))
        try:
            left = service.retire(version, force=force)
        except service.KeyVersionInUse as exc:
            raise CommandError(self.RETIRE_IN_USE.format(version=version, count=exc.count)) from exc
        message = self.RETIRED_FORCED if left else self.RETIRED
        self.stdout.write(self.style.SUCCESS(message.format(version=version, count=left)))
