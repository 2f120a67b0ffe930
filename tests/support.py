"""Helpers shared by the build tests: run a real build on real files and read what it wrote."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser

from feedsvc.config import Config, SourceConfig
from feedsvc.pipeline import BuildReport, make_pipeline

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DUMPS = Path(__file__).resolve().parent / "data" / "dumps"
BASE = "http://feeds.test/"


@dataclass
class FakeClock:
    """A clock the test moves by hand: builds never depend on the real time."""

    now: datetime = field(default_factory=lambda: datetime(2026, 3, 20, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def sleep(self, seconds: float) -> None:
        """What clients call to wait (between requests, before a retry): no real waiting."""
        self.now += timedelta(seconds=seconds)


@dataclass
class Site:
    """A source directory, a store and an output directory under one tmp_path."""

    root: Path
    clock: FakeClock = field(default_factory=FakeClock)

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def db(self) -> Path:
        return self.root / "store.sqlite3"

    def config(self, *sources: Path, **overrides: object) -> Config:
        chosen = sources or (self.src,)
        config = Config(sources=tuple(SourceConfig(str(s), "file") for s in chosen),
                        out_dir=self.out, db=self.db, base_url=BASE)
        return config.with_overrides(**overrides)

    def build(self, *sources: Path, **overrides: object) -> BuildReport:
        """One build; then the store must be consistent, whatever the build met."""
        pipeline = make_pipeline(self.config(*sources, **overrides), clock=self.clock)
        try:
            report = pipeline.refresh()
            assert pipeline.writer.call(pipeline.store.integrity_problems) == []
            return report
        finally:
            pipeline.close()

    def add(self, name: str, text: str | bytes) -> Path:
        self.src.mkdir(parents=True, exist_ok=True)
        path = self.src / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def copy_seeds(self) -> None:
        self.src.mkdir(parents=True, exist_ok=True)
        for seed in SEEDS.glob("*.txt"):
            shutil.copy(seed, self.src / seed.name)

    def feed(self, path: str) -> feedparser.FeedParserDict:
        parsed = feedparser.parse((self.out / path).read_bytes())
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
        return parsed

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Every output file: (mtime_ns, sha256)."""
        return {str(p.relative_to(self.out)): (p.stat().st_mtime_ns,
                                               hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted(self.out.rglob("*")) if p.is_file()}


def entry_ids(parsed: feedparser.FeedParserDict) -> list[str]:
    return [entry.id for entry in parsed.entries]
