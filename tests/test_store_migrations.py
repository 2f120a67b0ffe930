"""Schema steps: each runs whole, inside one transaction, statement by statement as written.

A step added on top of the real ones (module attributes patched for the test) stands for the
next migration someone writes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import feedsvc.store as store_module
from feedsvc.errors import StoreError
from feedsvc.store import Store

# A semicolon inside a string literal, and a trigger whose body holds two statements.
STEP_WITH_SEMICOLONS = """
    -- a comment; with a semicolon
    INSERT INTO meta(key, value) VALUES ('note', 'one; two');
    CREATE TRIGGER meta_ping AFTER INSERT ON meta WHEN NEW.key = 'ping'
    BEGIN
        INSERT OR REPLACE INTO meta(key, value) VALUES ('pong', 'a;b');
        DELETE FROM meta WHERE key = 'note';
    END;
"""
# The second statement fails: the first must not stay applied.
STEP_FAILING_HALFWAY = """
    INSERT INTO meta(key, value) VALUES ('half', 'done');
    INSERT INTO no_such_table VALUES (1);
"""


def with_extra_step(monkeypatch: pytest.MonkeyPatch, step: str) -> int:
    steps = [*store_module._MIGRATIONS, step]
    monkeypatch.setattr(store_module, "_MIGRATIONS", steps)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(steps))
    return len(steps)


def test_semicolons_in_a_string_literal_or_a_trigger_body_survive_a_migration(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.sqlite3"
    Store(path).close()  # at the current real version
    version = with_extra_step(monkeypatch, STEP_WITH_SEMICOLONS)
    store = Store(path)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == version
        assert store.get_meta("note") == "one; two"
        store.set_meta("ping", "1")  # the trigger: both statements of its body run
        assert (store.get_meta("pong"), store.get_meta("note")) == ("a;b", None)
    finally:
        store.close()


def test_a_step_that_fails_halfway_leaves_the_store_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "store.sqlite3"
    Store(path).close()
    real_version = store_module.SCHEMA_VERSION
    with_extra_step(monkeypatch, STEP_FAILING_HALFWAY)
    with pytest.raises(StoreError, match="no_such_table"):
        Store(path)
    monkeypatch.undo()
    store = Store(path)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == real_version
        assert store.get_meta("half") is None
    finally:
        store.close()
