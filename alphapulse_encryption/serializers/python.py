"""The ``python`` format, with encrypted fields written as ciphertext."""

from django.core.serializers import python as base

from . import DecryptingDeserializerMixin, EncryptingSerializerMixin


class Serializer(EncryptingSerializerMixin, base.Serializer):
    pass


class Deserializer(DecryptingDeserializerMixin, base.Deserializer):
    pass
