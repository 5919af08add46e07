"""``manage.py encryption_keys``: generate, status, rotate."""

from __future__ import annotations

import base64
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...crypto import EncryptionError
from ...keys import EncryptionKeyManager


class Command(BaseCommand):
    help = "Manage encryption keys: generate a master key, show key versions, rotate."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("generate", help="Print a fresh random master key (base64).")
        sub.add_parser("status", help="Show key versions, the active one and fingerprints.")
        sub.add_parser("rotate", help="Create and activate a new key version.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "generate":
            self.stdout.write(base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"))
            return
        manager = EncryptionKeyManager()
        try:
            if action == "rotate":
                version = manager.rotate_keys()
                self.stdout.write(self.style.SUCCESS(f"Key version {version} is now active."))
                return
            keyring = manager.keyring()
        except EncryptionError as exc:
            raise CommandError(str(exc)) from exc
        for version, fp in keyring.fingerprints().items():
            marker = "active" if version == keyring.active_version else "decrypt-only"
            self.stdout.write(f"version {version}  {marker:<12}  fingerprint {fp}")
