"""MaskingFilter masks personal data in log records and leaves other records alone."""

from __future__ import annotations

import logging

import pytest

from alphapulse_encryption.logging import MaskingFilter
from tests.factories import CustomerFactory


@pytest.fixture
def emitted():
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("tests.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, records
    logger.removeHandler(handler)
    logger.propagate = True


def test_messages_and_arguments_are_masked(emitted):
    logger, records = emitted
    logger.info("password reset for %s (phone %s)", "alice@example.com", "+1-555-867-5309")
    logger.info("card %(card)s declined", {"card": "4111 1111 1111 1111"})
    logger.warning("direct: bob@example.org")
    assert records == [
        "password reset for a***@e***.com (phone ****5309)",
        "card ****1111 declined",
        "direct: b***@e***.org",
    ]


def test_records_without_personal_data_keep_their_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "rotated to %d", (3,), None)
    assert MaskingFilter().filter(record)
    assert (record.msg, record.args) == ("rotated to %d", (3,))


def test_model_instances_with_encrypted_fields_are_named_not_printed(db, emitted, monkeypatch):
    logger, records = emitted
    customer = CustomerFactory(first_name="Zephyrine")
    monkeypatch.setattr(type(customer), "__str__", lambda self: self.first_name)  # careless

    logger.info("updated %s", customer)

    assert records == [f"updated <testapp.Customer pk={customer.pk}>"]


def test_tracebacks_are_masked(emitted):
    logger, records = emitted
    try:
        raise ValueError("duplicate e-mail carol@example.net")
    except ValueError:
        logger.exception("signup failed")
    assert "c***@e***.net" in records[0]
    assert "carol@example.net" not in records[0]
