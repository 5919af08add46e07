"""``MaskingFilter``: a logging filter that masks e-mail addresses, phone numbers, card and
account numbers, and model instances with encrypted fields, in log records."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from .introspection import encrypted_fields
from .masking import mask_text


def _is_encrypted_instance(value: Any) -> bool:
    return isinstance(value, models.Model) and bool(encrypted_fields(type(value)))


def _safe_arg(value: Any) -> Any:
    # str(instance) may print encrypted values; name the row instead.
    if _is_encrypted_instance(value):
        return f"<{value._meta.label} pk={value.pk}>"
    return value


class MaskingFilter(logging.Filter):
    """Attach to handlers (filters on a logger do not see records of its children).

    The message is formatted, masked, and stored back without arguments only when masking
    changed it; a record's traceback text is masked too. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):
            record.args = {key: _safe_arg(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe_arg(value) for value in record.args)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True
