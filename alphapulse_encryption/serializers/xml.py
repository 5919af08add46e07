"""The ``xml`` format, refused for models with encrypted fields (see the package docstring)."""

from typing import Any

from django.core.serializers import xml_serializer as base

from . import refuse_encrypted_models


class Serializer(base.Serializer):
    def start_object(self, obj: Any) -> None:
        refuse_encrypted_models(type(obj), "xml")
        super().start_object(obj)


class Deserializer(base.Deserializer):
    def _handle_object(self, node: Any) -> Any:
        refuse_encrypted_models(self._get_model_from_node(node, "model"), "xml")  # type: ignore[attr-defined]
        return super()._handle_object(node)  # type: ignore[misc]
