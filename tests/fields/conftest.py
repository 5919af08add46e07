import pytest
from django.db import connection

from alphapulse_encryption.crypto import looks_like_envelope
from alphapulse_encryption.crypto.cipher import split_searchable


def raw_row(model, pk):
    """The row as the database stores it, read with plain SQL."""
    table = connection.ops.quote_name(model._meta.db_table)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {pk_column} = %s", [pk])
        names = [d[0] for d in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def encrypted_columns(model):
    return [f for f in model._meta.concrete_fields if getattr(f, "encrypted", False)]


def assert_no_plaintext(model, pk, plaintexts):
    """Every encrypted column holds an envelope (or NULL) and no plaintext appears anywhere."""
    row = raw_row(model, pk)
    for field in encrypted_columns(model):
        stored = row[field.column]
        if stored is None:
            continue
        assert isinstance(stored, str), (field.name, stored)
        assert looks_like_envelope(split_searchable(stored)[1]), (field.name, stored)
    dump = repr(row)
    for text in plaintexts:
        assert str(text) not in dump, f"plaintext {text!r} found in the stored row"


@pytest.fixture
def no_plaintext():
    return assert_no_plaintext
