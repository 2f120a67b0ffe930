"""The store's schema steps: a store written by an older feedsvc keeps every item and feed."""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest

from feedsvc.config import Config, SourceConfig
from feedsvc.errors import StoreError
from feedsvc.model import ALMATY, Item, Origin, normalise_title, order_tie
from feedsvc.pipeline import make_pipeline
from feedsvc.store import PAGE_SIZE, SCHEMA_VERSION, ReadOnlyStore, Store

from support import ROOT, FakeClock

#: ``feedsvc build --source seeds --base-url http://example.test/`` run by feedsvc 0.1 with
#: schema 1 (the Atom id as every table's reference): the store it wrote, and what the current
#: code publishes from it. ``out`` is regenerated (``python tests/test_store.py``, from the
#: repository's root) only when the output changes on purpose; last: the feeds in three formats,
#: the pages for people, the curated organisation names and the OPML of distinct feeds.
V1 = Path(__file__).resolve().parent / "data" / "store-v1"


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def migrate_v1(out: Path, db: Path) -> object:
    """Upgrade a copy of the v1 store at ``db`` and publish from it into ``out``: the report."""
    shutil.copy(V1 / "store.sqlite3", db)
    config = Config(sources=(SourceConfig("seeds", "file"),), out_dir=out, db=db,
                    base_url="http://example.test/")
    pipeline = make_pipeline(config, clock=FakeClock())
    try:
        assert pipeline.writer.call(pipeline.store.count_items) == 25
        assert pipeline.writer.call(pipeline.store.integrity_problems) == []
        return pipeline.refresh()
    finally:
        pipeline.close()


def test_a_schema_1_store_is_migrated_and_publishes_the_same_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(V1 / "out", tmp_path / "out")
    monkeypatch.chdir(ROOT)  # the old store names its sources seeds/<file>
    report = migrate_v1(tmp_path / "out", tmp_path / "store.sqlite3")
    assert report.ok  # type: ignore[attr-defined]
    assert sum(o.new for o in report.sources) == 0  # type: ignore[attr-defined]
    assert sum(o.changed for o in report.sources) == 0  # type: ignore[attr-defined]
    migrated, published = files(tmp_path / "out"), files(V1 / "out")
    assert migrated.keys() == published.keys()
    for name in migrated:
        assert migrated[name] == published[name], name
    # Schema 3 has every feed published again (found unchanged here: nothing rewritten).
    feeds = [name for name in published if name.endswith(".atom")]
    assert report.publish.written == []  # type: ignore[attr-defined]
    assert report.publish.unchanged >= len(feeds)  # type: ignore[attr-defined]
    db = sqlite3.connect(tmp_path / "store.sqlite3")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    # Its page size was fixed when it was written; only new stores get bigger pages.
    assert db.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert db.execute("SELECT COUNT(*) FROM item_keys").fetchone()[0] >= 25
    assert db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] >= 25


def test_a_schema_1_store_gets_a_full_text_index_of_its_items(tmp_path: Path) -> None:
    shutil.copy(V1 / "store.sqlite3", tmp_path / "store.sqlite3")
    Store(tmp_path / "store.sqlite3").close()  # upgrades it
    reader = ReadOnlyStore(tmp_path / "store.sqlite3")
    try:
        found = reader.query_items(["en"], [], '"constitut" *', 50, 5.0)
        everything = reader.query_items(["en", "kk", "ru"], [], None, 100, 5.0)
    finally:
        reader.close()
    assert len(everything) == 25
    expected = [s.atom_id for s in everything if re.search(
        r"\bconstitut", (s.item.title + " " + s.item.text).lower())]
    assert expected and [s.atom_id for s in found] == expected
    store = Store(tmp_path / "store.sqlite3")
    try:
        assert store.integrity_problems() == []
    finally:
        store.close()


def test_a_store_from_a_newer_feedsvc_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer feedsvc"):
        Store(path)
    assert path.read_bytes() == before


def test_a_new_store_gets_big_pages_a_64_mb_checkpoint_interval_and_the_cache_asked(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    try:
        assert store.db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        pages = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages * PAGE_SIZE == 64 * 1024 * 1024
    finally:
        store.close()
    reopened = Store(tmp_path / "store.sqlite3", cache_mib=8)
    try:
        assert reopened.db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        assert reopened.db.execute("PRAGMA cache_size").fetchone()[0] == -8 * 1024
    finally:
        reopened.close()


def test_the_tie_breaker_sorts_as_the_atom_ids_do() -> None:
    ids = ["urn:uuid:0f3c9a1e-7d2b-5c11-8a4e-93b1f0c2d7aa",
           "urn:uuid:0f3c9a1e-7d2b-5c12-8a4e-93b1f0c2d7aa",
           "urn:uuid:a0000000-0000-5000-8000-000000000000",
           "urn:uuid:ffffffff-ffff-5fff-bfff-ffffffffffff"]
    assert sorted(ids, key=order_tie) == sorted(ids)
    assert all(0 <= order_tie(i) < 2**63 for i in ids)
    assert order_tie("tag:example.org,2026:1") == order_tie("tag:example.org,2026:1")


def test_content_hashes_stay_what_earlier_versions_stored() -> None:
    """Stored sightings are compared by hash: a hash that drifts (a JSON library writing other
    bytes) would make every stored item look changed on the next run."""
    kazakh = Item("«Жаңа» закон: O'Brien & <b> \"quotes\"", datetime(2026, 3, 1, tzinfo=ALMATY),
                  Origin("x.txt", 3), ("Бірінші абзац.\tTab", "Second — para\u2028graph 1.5 U.K."),
                  None, "kk", "https://www.gov.kz/memleket/entities/mfa/press/news/details/5?lang=kk",
                  "kk", "mfa", 5, ("World", "News"), ("c",), "Shymkent View", None)
    bare = Item("No date", None, Origin("y.txt"), (), "<p>html</p>", raw_date="31.02.2026")
    # Values computed by feedsvc 0.1 (json.dumps) before the switch to orjson.
    assert kazakh.content_hash() == \
        "689a5b5446d20a9d333b0218ae08f185a05aaaae0a9f314474d9ff53a0fb0f7b"
    assert bare.content_hash() == \
        "d8bf784aedff1aa2842066d49f226160129c12ea572326045052a728ffa2db00"
    assert Item.from_json(kazakh.to_json()) == kazakh


def test_a_failing_inner_transaction_undoes_only_itself(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite3")
    try:
        with store.transaction():
            store.set_meta("outer", "kept")
            with pytest.raises(RuntimeError), store.transaction():
                store.set_meta("inner", "undone")
                raise RuntimeError("one source failed")
            store.commit_so_far()
            store.set_meta("after", "kept too")
        assert (store.get_meta("outer"), store.get_meta("inner"),
                store.get_meta("after")) == ("kept", None, "kept too")
        with pytest.raises(RuntimeError), store.transaction():
            store.set_meta("outer", "changed")
            store.commit_so_far()  # durable from here on
            store.set_meta("after", "undone")
            raise RuntimeError("the build died")
        assert (store.get_meta("outer"), store.get_meta("after")) == ("changed", "kept too")
        with pytest.raises(RuntimeError, match="outermost"):
            store.commit_so_far()
    finally:
        store.close()


def _reference_normalise_title(title: str) -> str:
    """normalise_title as feedsvc 0.1 wrote it: title keys in existing stores come from it."""
    text = unicodedata.normalize("NFKC", title).casefold()
    text = text.replace("'", "").replace("’", "").replace("ʼ", "").replace("`", "")
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def test_title_normalisation_is_what_stored_title_keys_were_made_with() -> None:
    rng = random.Random(7)
    alphabet = ("abcXYZ019 -–—'’ʼ`\"«»&<>.,:;!?\t\u00a0\u2028ÅåÉéİıŞşßẞﬁ①²Ⅻ"
                "әіңғүұқөһӘІҢҒҮҰҚӨҺабвЁё_")
    titles = [line for seed in (ROOT / "seeds").glob("*.txt")
              for line in seed.read_text(encoding="utf-8").splitlines()]
    titles += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
               for _ in range(5000)]
    for title in titles:
        assert normalise_title(title) == _reference_normalise_title(title), title


def test_an_items_derived_values_are_computed_once_and_stay_out_of_its_equality() -> None:
    item = Item("Title", datetime(2026, 3, 1, tzinfo=ALMATY), Origin("x.txt", 1), ("Body.",))
    first = (item.title_key, item.content_hash(), item.to_json())
    assert {"title_key", "_content_hash", "_json"} <= vars(item).keys()
    assert (item.title_key, item.content_hash(), item.to_json()) == first
    assert item.title_key is first[0] and item.to_json() is first[2]  # the same objects
    fresh = Item("Title", datetime(2026, 3, 1, tzinfo=ALMATY), Origin("x.txt", 1), ("Body.",))
    assert fresh == item and hash(fresh) == hash(item)



if __name__ == "__main__":  # regenerate data/store-v1/out (see V1)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "out"
        migrate_v1(fresh, Path(scratch) / "store.sqlite3")
        shutil.rmtree(V1 / "out")
        shutil.copytree(fresh, V1 / "out")
