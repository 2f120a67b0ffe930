"""The daemon as operators run it: a real process on a loopback port, real HTTP, real signals."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
import requests

from feedsvc.store import Store

from support import SEEDS

DEADLINE = 20.0


class DaemonProcess:
    def __init__(self, root: Path, *args: str) -> None:
        """``feedsvc daemon ARGS...`` in ``root``, its output in a log file."""
        self.log = root / f"daemon-{time.monotonic_ns()}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc.cli", "daemon", *args],
            cwd=root, stdout=self.handle, stderr=subprocess.STDOUT, text=True)
        self.url = ""

    def wait_listening(self) -> str:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            found = re.search(r"serve\.listening url=(\S+)", self.log.read_text())
            if found:
                self.url = found.group(1)
                return self.url
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"daemon did not start: {self.log.read_text()}")

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]

    def wait_for(self, path: str, predicate: object) -> requests.Response:
        end = time.monotonic() + DEADLINE
        last = None
        while time.monotonic() < end:
            last = self.get(path)
            if last.status_code == 200 and predicate(last):  # type: ignore[operator]
                return last
            time.sleep(0.1)
        raise AssertionError(f"{path} never matched; last: {last and last.status_code}; "
                             f"log: {self.log.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE)
        self.handle.close()
        return code


@pytest.fixture
def root(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SEEDS, src)
    (tmp_path / "feedsvc.toml").write_text(
        'out_dir = "out"\ndb = "store.sqlite3"\nbase_url = "http://feeds.test/"\n'
        '[server]\nport = 0\n[schedule]\nfile_interval = 1\njitter = 0\n'
        '[[sources]]\npath = "src"\n', encoding="utf-8")
    return tmp_path


@pytest.fixture
def daemon(root: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(root, "--config", str(root / "feedsvc.toml"))
    process.wait_listening()
    yield process
    process.stop()


def entries(response: requests.Response) -> list:
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, (response.status_code, response.url, response.content[:300])
    return parsed.entries


def test_serves_index_opml_and_feeds_built_from_the_sources(daemon: DaemonProcess) -> None:
    feed = daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    assert feed.headers["content-type"] == "application/atom+xml; charset=utf-8"
    # The index is there from the start; it lists the feeds right after they are published.
    index = daemon.wait_for("", lambda r: 'type="application/atom+xml"' in r.text)
    assert "text/html" in index.headers["content-type"]
    opml = daemon.get("feeds.opml")
    assert opml.status_code == 200 and "xmlUrl" in opml.text
    assert len(entries(daemon.get("ministry/mfa.atom"))) == 7


def test_new_file_dropped_into_the_source_directory_is_served(daemon: DaemonProcess,
                                                               root: Path) -> None:
    daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    (root / "src" / "new.txt").write_text("World\nA BRAND NEW STORY 20.11.2026\nIt is new.\n",
                                          encoding="utf-8")
    feed = daemon.wait_for("all.atom", lambda r: len(entries(r)) == 26)
    assert entries(feed)[0].title == "A BRAND NEW STORY"


def test_conditional_get_answers_304_without_a_body(daemon: DaemonProcess) -> None:
    first = daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    again = daemon.get("all.atom", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize("path", ["../feedsvc.toml", "%2e%2e/feedsvc.toml",
                                  "..%2fstore.sqlite3", ".lock"])
def test_paths_outside_the_output_answer_404(daemon: DaemonProcess, path: str) -> None:
    daemon.wait_for("all.atom", lambda r: True)
    response = requests.get(daemon.url + path, timeout=5)
    assert response.status_code == 404
    assert "sources" not in response.text


def test_healthz_reports_every_source(daemon: DaemonProcess) -> None:
    daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    health = daemon.wait_for("healthz", lambda r: True)  # "starting" (503) until then
    body = health.json()
    assert body["status"] == "ok" and body["last_regeneration"]
    assert {Path(name).name for name in body["sources"]} == {
        "000_b0f3105e8a9764a0.txt", "003_9838bf1a0f284c14.txt"}


def test_broken_file_makes_health_fail_and_keeps_serving(daemon: DaemonProcess,
                                                         root: Path) -> None:
    daemon.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    daemon.wait_for("healthz", lambda r: True)  # the first pass is over: "ok"
    (root / "src" / "broken.txt").write_bytes(b"\x00\x01binary")
    end = time.monotonic() + DEADLINE
    while daemon.get("healthz").status_code != 503 and time.monotonic() < end:
        time.sleep(0.1)
    health = daemon.get("healthz")
    assert health.status_code == 503
    failing = [s for s in health.json()["sources"].values() if not s["healthy"]]
    assert len(failing) == 1 and "binary file" in failing[0]["last_error"]
    assert len(entries(daemon.get("all.atom"))) == 25


def test_sigterm_exits_zero_and_leaves_the_store_consistent(root: Path) -> None:
    process = DaemonProcess(root, "--config", str(root / "feedsvc.toml"))
    process.wait_listening()
    process.wait_for("all.atom", lambda r: len(entries(r)) == 25)
    assert process.stop() == 0
    store = Store(root / "store.sqlite3")
    try:
        assert store.integrity_problems() == []
        assert store.count_items() == 25
    finally:
        store.close()
    assert not list((root / "out").rglob(".tmp-*"))


def test_second_daemon_on_the_same_store_refuses_to_start(daemon: DaemonProcess,
                                                          root: Path) -> None:
    second = subprocess.run(
        [sys.executable, "-m", "feedsvc.cli", "daemon", "--config", str(root / "feedsvc.toml")],
        cwd=root, capture_output=True, text=True, timeout=DEADLINE)
    assert second.returncode == 3  # another process owns the store
    assert "already in use by process" in second.stderr
    assert daemon.proc.poll() is None


def test_hanging_gov_kz_source_does_not_hold_up_the_files(root: Path, govkz_server) -> None:
    govkz_server.fault("*", status=None, hang=3.0, times=None)
    config = root / "hang.toml"
    config.write_text(
        'out_dir = "out"\ndb = "store.sqlite3"\nbase_url = "http://feeds.test/"\n'
        '[server]\nport = 0\n[schedule]\nfile_interval = 1\njitter = 0\n'
        f'[govkz]\nbase_url = "{govkz_server.base_url}"\ndelay = 0\nread_timeout = 0.5\n'
        'connect_timeout = 0.5\nretries = 1\n'
        '[[sources]]\nurl = "https://www.gov.kz/memleket/entities/mfa-brussels"\n'
        '[[sources]]\npath = "src"\n', encoding="utf-8")
    process = DaemonProcess(root, "--config", str(config))
    try:
        process.wait_listening()
        process.wait_for("all.atom", lambda r: len(entries(r)) == 25)
        end = time.monotonic() + DEADLINE
        while process.get("healthz").status_code != 503 and time.monotonic() < end:
            time.sleep(0.1)
        health = process.get("healthz").json()
        assert health["sources"]["govkz:mfa-brussels:kk"]["healthy"] is False
        assert "timed out" in health["sources"]["govkz:mfa-brussels:kk"]["last_error"].lower()
    finally:
        assert process.stop() == 0


def test_without_a_base_url_feeds_name_the_address_actually_served(root: Path) -> None:
    process = DaemonProcess(root, "--source", "src", "--out", "plain", "--db", "plain.sqlite3",
                            "--port", "0")
    try:
        url = process.wait_listening()
        feed = feedparser.parse(process.wait_for("all.atom",
                                                 lambda r: len(entries(r)) == 25).content)
        assert {link.href for link in feed.feed.links if link.rel == "self"} == {
            url + "all.atom"}
    finally:
        assert process.stop() == 0


def test_index_is_served_and_health_says_starting_before_any_source_is_read(
        tmp_path: Path) -> None:
    from govkz_fake import GovkzFake

    with GovkzFake(["mfa-brussels"], items=3, langs=("en",)) as fake:
        fake.fault("*", status=None, hang=4.0, times=None)  # gov.kz answers nothing for now
        (tmp_path / "feedsvc.toml").write_text(
            'out_dir = "out"\ndb = "store.sqlite3"\n[server]\nport = 0\n'
            f'[govkz]\nbase_url = "{fake.base_url}"\nread_timeout = 10\nretries = 1\n'
            '[[sources]]\nurl = "https://www.gov.kz/memleket/entities/mfa-brussels?lang=en"\n',
            encoding="utf-8")
        process = DaemonProcess(tmp_path, "--config", "feedsvc.toml")
        try:
            process.wait_listening()
            index = process.wait_for("", lambda r: True)
            opml = process.get("feeds.opml")
            health = process.get("healthz")
            assert "text/html" in index.headers["content-type"]
            assert opml.status_code == 200
            assert health.status_code == 503 and health.json()["status"] == "starting"
        finally:
            assert process.stop() == 0
