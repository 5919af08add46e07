"""The states of a stored value held on a model instance: sealed (loaded, not decrypted
yet), prepared (encrypted ahead of a bulk write), undecryptable (failed to decrypt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..crypto import DecryptionError

# Values decrypted together on first read: Django fetches rows 100 at a time.
SEALED_BATCH_SIZE = 100


class _Opener(Protocol):
    def open_many(self, stored: list[str]) -> list[Any]: ...


class UndecryptableValue:
    """Stands in for a stored value that failed to decrypt.

    Reading the model attribute raises the :class:`DecryptionError`; saving the model writes
    the stored ciphertext back unchanged; any other use of this object raises too.
    """

    __slots__ = ("error", "stored")

    def __init__(self, stored: str, error: DecryptionError) -> None:
        self.stored = stored
        self.error = error

    def __repr__(self) -> str:
        return f"<UndecryptableValue reason={self.error.reason}>"

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error

    __str__ = __eq__ = __hash__ = __bool__ = __len__ = __iter__ = __format__ = _refuse
    __int__ = __float__ = __lt__ = __gt__ = __le__ = __ge__ = __getitem__ = _refuse


class SealedBatch:
    """Up to :data:`SEALED_BATCH_SIZE` stored values of one column loaded by one query,
    decrypted together on the first read of any of them."""

    __slots__ = ("opened", "stored")

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.opened: list[Any] | None = None


class Sealed(tuple[SealedBatch, int]):
    """A stored value loaded with its model instance and not decrypted yet: the attribute
    decrypts it on first read, so rows whose encrypted fields are never read cost nothing.

    Values of one column loaded by one query share a :class:`SealedBatch`: the first read
    of any of them decrypts the batch at once (one key lookup, one tight loop). A tuple
    (batch, index in the batch), because one is made for every value loaded and a small
    tuple is the cheapest object to build and to hold.
    """

    __slots__ = ()

    def __new__(cls, stored: str) -> Sealed:
        """A value on its own (an unpickled one, say)."""
        batch = SealedBatch()
        batch.stored.append(stored)
        return tuple.__new__(cls, (batch, 0))

    @property
    def stored(self) -> str:
        batch, index = self
        return batch.stored[index]

    def __repr__(self) -> str:
        return "<Sealed: encrypted value, not read yet>"

    def __reduce__(self) -> tuple[type[Sealed], tuple[str]]:
        # Pickled (or deep-copied) alone: the batch holds other rows' values.
        return Sealed, (self.stored,)

    def open(self, field: _Opener) -> Any:
        """The decrypted value, or an :class:`UndecryptableValue`."""
        batch, index = self
        opened = batch.opened
        # Shorter than the index: this value was sealed while another thread opened the batch.
        if opened is None or index >= len(opened):
            opened = batch.opened = field.open_many(batch.stored)
        return opened[index]


_new_sealed = tuple.__new__


def sealer() -> Callable[[Any, Any, Any], Sealed | None]:
    """The database converter of one column in one query execution: wraps each stored value
    in a :class:`Sealed` of the current batch. One per execution, so never shared across
    threads; a closure, the cheapest callable for a call per value loaded."""
    batch = SealedBatch()

    def seal(value: Any, expression: Any, connection: Any) -> Sealed | None:
        nonlocal batch
        if value is None:
            return None
        stored = batch.stored
        if len(stored) >= SEALED_BATCH_SIZE or batch.opened is not None:
            batch = SealedBatch()
            stored = batch.stored
        stored.append(value)
        return _new_sealed(Sealed, (batch, len(stored) - 1))

    return seal


class Prepared:
    """A value encrypted ahead of a bulk write (``bulk_create``, ``bulk_update``), where
    all values of a column are encrypted at once; the attribute still reads the value."""

    __slots__ = ("stored", "value")

    def __init__(self, stored: str, value: Any) -> None:
        self.stored = stored
        self.value = value

    def __repr__(self) -> str:
        return "<Prepared: encrypted for a bulk write>"
