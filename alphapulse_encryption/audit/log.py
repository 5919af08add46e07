"""Writing audit entries into the hash chain, and verifying the chain."""

from __future__ import annotations

import datetime
import getpass
import hashlib
import ipaddress
import json
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, router, transaction
from django.http import HttpRequest
from django.utils import timezone

from .models import GENESIS_HASH, AuditChainHead, AuditLogEntry

HEAD_ID = 1
# What the hash covers: everything but the id (assigned by the database after hashing) and
# the user foreign key (set to NULL when a user is deleted; the username stays).
HASHED_FIELDS = (
    "timestamp",
    "username",
    "action",
    "model_label",
    "object_pk",
    "field_name",
    "ip_address",
    "user_agent",
    "detail",
    "previous_hash",
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")

_current_request: ContextVar[HttpRequest | None] = ContextVar(
    "alphapulse_encryption_audit_request", default=None
)


@contextmanager
def request_context(request: HttpRequest) -> Iterator[None]:
    """Attribute entries written while the block runs (a failed decryption in an admin
    view, say) to the user and address of ``request``."""
    token = _current_request.set(request)
    try:
        yield
    finally:
        _current_request.reset(token)


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
    model: type[models.Model] | None = None,
    object_pk: Any = None,
    field_name: str = "",
    detail: dict[str, Any] | None = None,
    using: str | None = None,
) -> AuditLogEntry:
    """Append an entry to the audit log and return it. Raises when it cannot be written:
    callers that must not act without a record (revealing a value) rely on that."""
    if action not in AuditLogEntry.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    request = request if request is not None else _current_request.get()
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not user.is_authenticated:
        user = None
    meta = request.META if request is not None else {}
    detail = dict(detail or {})
    if request is None and user is None:
        # A command or a background job: who ran it is the process's OS user and host.
        for name, value in _process_origin().items():
            detail.setdefault(name, value)
    entry = AuditLogEntry(
        action=action,
        user=user,
        username=_text(user.get_username(), 150) if user is not None else "",
        model_label=model._meta.label if model is not None else "",
        object_pk="" if object_pk is None else _text(str(object_pk), None),
        field_name=_text(field_name, 255),
        ip_address=_ip_address(meta.get("REMOTE_ADDR")),
        user_agent=_text(meta.get("HTTP_USER_AGENT", ""), 512),
        # Stored as it reads back from the database, so the hash can be recomputed.
        detail=json.loads(json.dumps(detail, cls=DjangoJSONEncoder, default=str)),
    )
    db = using or router.db_for_write(AuditLogEntry)
    with transaction.atomic(using=db):
        head = _locked_head(db)
        entry.timestamp = timezone.now()
        entry.previous_hash = head.last_hash
        entry.hash = entry_hash(entry)
        entry.save(using=db, force_insert=True)
        AuditChainHead.objects.using(db).filter(pk=HEAD_ID).update(
            last_hash=entry.hash, entries=models.F("entries") + 1
        )
    return entry


_DJANGO_ENTRY_POINTS = frozenset({"manage.py", "django-admin", "django-admin.py", "django"})


def _process_origin() -> dict[str, str]:
    """``os_user``, ``host`` and ``command`` (the management command's name, or the
    program's) of this process; never the command's other arguments, which may be secret."""
    try:
        os_user = getpass.getuser()
    except Exception:  # no login name and no passwd entry (some containers)
        os_user = ""
    script = sys.argv[0] if sys.argv else ""
    program = os.path.basename(script)
    if program == "__main__.py":  # python -m <package>
        program = os.path.basename(os.path.dirname(script))
    command = program
    if program in _DJANGO_ENTRY_POINTS and len(sys.argv) > 1 and sys.argv[1][:1] != "-":
        command = sys.argv[1]
    return {
        "os_user": _text(os_user, 150),
        "host": _text(socket.gethostname(), 255),
        "command": _text(command, 100),
    }


def _locked_head(db: str) -> AuditChainHead:
    heads = AuditChainHead.objects.using(db).select_for_update()
    try:
        return heads.get(pk=HEAD_ID)
    except AuditChainHead.DoesNotExist:
        # A missing head starts a new chain at the genesis hash; if entries exist,
        # audit_verify reports the break.
        try:
            with transaction.atomic(using=db):
                AuditChainHead.objects.using(db).create(pk=HEAD_ID)
        except IntegrityError:
            pass  # another writer created it first
        return heads.get(pk=HEAD_ID)


def canonical(entry: AuditLogEntry) -> bytes:
    """The bytes the hash of ``entry`` covers: sorted-key JSON of ``HASHED_FIELDS``."""
    data = {name: getattr(entry, name) for name in HASHED_FIELDS}
    data["timestamp"] = _timestamp(entry.timestamp)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: AuditLogEntry) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def _timestamp(value: datetime.datetime) -> str:
    if timezone.is_aware(value):
        value = value.astimezone(datetime.UTC)
    return value.isoformat(timespec="microseconds")


def _text(value: str, limit: int | None) -> str:
    # PostgreSQL refuses NUL characters; no control character belongs in these columns.
    value = _CONTROL_CHARACTERS.sub("", value)
    return value if limit is None else value[:limit]


def _ip_address(value: str | None) -> str:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return ""


# -- verification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """``kind``: "edited" (an entry's hash does not match it), "broken" (the chain breaks
    before ``entry_id``), "truncated" (entries missing at the end), "count" (the head
    counts more or fewer entries than the table holds), "head" (no head row)."""

    kind: str
    entry_id: int | None = None
    previous_id: int | None = None
    expected: int | None = None
    found: int | None = None


@dataclass
class Verification:
    checked: int = 0
    last_id: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(using: str | None = None, chunk_size: int = 2000) -> Verification:
    """Recompute every hash and link of the chain, in id order, and compare its end with
    the chain head."""
    db = using or router.db_for_read(AuditLogEntry)
    result = Verification()
    previous_hash = GENESIS_HASH
    entries = AuditLogEntry.objects.using(db).order_by("id")
    for entry in entries.iterator(chunk_size=chunk_size):
        result.checked += 1
        if entry_hash(entry) != entry.hash:
            result.problems.append(Problem("edited", entry.pk))
        if entry.previous_hash != previous_hash:
            result.problems.append(Problem("broken", entry.pk, previous_id=result.last_id))
        previous_hash, result.last_id = entry.hash, entry.pk
    head = AuditChainHead.objects.using(db).filter(pk=HEAD_ID).first()
    if head is None:
        if result.checked:
            result.problems.append(Problem("head"))
    elif head.last_hash != previous_hash:
        result.problems.append(
            Problem("truncated", result.last_id, expected=head.entries, found=result.checked)
        )
    elif head.entries != result.checked:
        result.problems.append(Problem("count", expected=head.entries, found=result.checked))
    return result
