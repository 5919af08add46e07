"""Whether a method of a field is this library's (or Django's) or a user subclass's
override: shortcuts (batch encryption, skipping ``to_python``) apply to our own only."""

from __future__ import annotations


def defined_in(cls: type, name: str) -> type:
    """The class of ``cls``'s MRO that defines ``name``."""
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def is_ours(cls: type) -> bool:
    """Whether a class is this library's or Django's (not a user's subclass)."""
    return cls.__module__.startswith(("alphapulse_encryption.", "django."))
