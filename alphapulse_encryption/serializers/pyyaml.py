"""The ``yaml`` format, with encrypted fields written as ciphertext."""

from django.core.serializers import pyyaml as base

from . import DecryptingDeserializerMixin, EncryptingSerializerMixin


class Serializer(EncryptingSerializerMixin, base.Serializer):
    pass


class Deserializer(DecryptingDeserializerMixin, base.Deserializer):
    pass
