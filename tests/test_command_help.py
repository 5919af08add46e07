"""``--help`` of every management command of the package: every argument is explained,
and every option that takes a value shows its default (or, without one, what happens
when it is left out)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import pytest
from django.core.management import find_commands, load_command_class
from django.core.management.base import BaseCommand, CommandParser

import alphapulse_encryption

COMMANDS_DIR = os.path.join(os.path.dirname(alphapulse_encryption.__file__), "management")
COMMANDS = sorted(find_commands(COMMANDS_DIR))
# Django's own options (--verbosity, --settings, ...) are Django's to document.
DJANGO_OPTIONS = {
    option
    for action in BaseCommand().create_parser("manage.py", "base")._actions
    for option in action.option_strings
}


def _parser(name: str) -> CommandParser:
    command = load_command_class("alphapulse_encryption", name)
    return command.create_parser("manage.py", name)


def _parsers(name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The command's parser and each sub-command's, named as a user types them."""
    pending: list[tuple[str, argparse.ArgumentParser]] = [(name, _parser(name))]
    while pending:
        label, parser = pending.pop()
        yield label, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend((f"{label} {sub}", p) for sub, p in action.choices.items())


def _flat(text: str) -> str:
    return " ".join(text.split())


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """What ``parser``'s help leaves out: arguments without an explanation, options that
    take a value but show no default."""
    shown = _flat(parser.format_help())
    problems = []
    for action in parser._actions:
        if DJANGO_OPTIONS & set(action.option_strings) or isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.metavar or action.dest
        if not action.help:
            problems.append(f"{name}: no help text")
            continue
        if not action.option_strings or action.nargs == 0:
            continue  # positional (required), or a flag that is off unless given
        if action.default is None:
            if "default:" not in action.help:
                problems.append(f"{name}: does not say what happens without it")
        elif f"(default: {action.default})" not in shown:
            problems.append(f"{name}: default {action.default!r} not shown")
    return problems


def test_the_package_has_the_commands_its_docs_describe():
    assert {"encrypt_migrate", "encryption_keys", "audit_verify"} <= set(COMMANDS)


@pytest.mark.parametrize(
    ("label", "parser"),
    [pair for name in COMMANDS for pair in _parsers(name)],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_argument_is_explained_and_every_default_shown(label, parser):
    assert parser.description, f"{label}: no description"
    assert _undocumented(parser) == []


def test_the_check_catches_a_missing_default_and_a_bare_argument():
    parser = CommandParser(prog="manage.py example")
    parser.add_argument("version", type=int)
    parser.add_argument("--batch-size", type=int, default=500, help="Rows per batch.")
    parser.add_argument("--table", help="Only this table.")
    parser.add_argument("--confirm", action="store_true", help="Confirm.")
    assert _undocumented(parser) == [
        "version: no help text",
        "--batch-size: default 500 not shown",
        "--table: does not say what happens without it",
    ]


def test_encrypt_migrate_help_shows_the_batch_size_default():
    from alphapulse_encryption.migration.data import DEFAULT_BATCH_SIZE

    assert f"(default: {DEFAULT_BATCH_SIZE})" in _flat(_parser("encrypt_migrate").format_help())


def test_encryption_keys_retire_help_explains_the_version():
    retire = dict(_parsers("encryption_keys"))["encryption_keys retire"]
    shown = _flat(retire.format_help())
    assert "[--yes] VERSION" in shown
    assert "VERSION The key version to retire" in shown


def test_encryption_keys_help_lists_every_action_with_what_it_does():
    shown = _flat(_parser("encryption_keys").format_help())
    for action in ("generate", "status", "rotate", "reencrypt", "retire"):
        assert f" {action} " in shown
    assert "encryption_keys ACTION --help" in shown
