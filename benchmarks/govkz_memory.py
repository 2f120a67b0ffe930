"""Peak memory of a ``feedsvc build`` whose gov.kz source answers a huge (but size-capped) list.

Each case serves one listing answer from the loopback fake (``tests/govkz_fake.py``) and runs
``feedsvc build --source <organisation link>`` in a subprocess against it; the peak resident set
size of that process is printed with its exit status. The peak is the kernel's high-water mark
``VmHWM`` of the process's own memory, read from ``/proc`` every 10 ms until it exits
(``ru_maxrss`` would not do: Linux carries the parent's high-water mark across ``exec``)::

    .venv/bin/python benchmarks/govkz_memory.py
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/govkz_memory.py  # compare

Cases: ``normal`` (a real-looking page of 50 news), ``empty-objects`` (10 MB of
``[{},{},...]``) and ``id-objects`` (a million ``{"id":1}``, 9 MB). Loopback only.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from govkz_fake import GovkzFake  # noqa: E402

SLUG = "mfa-brussels"


def answers() -> dict[str, bytes | None]:
    return {
        "normal": None,  # the fake's own pages
        "empty-objects": b"[" + b"{}," * 3_332_999 + b"{}]",
        "id-objects": b"[" + b'{"id":1},' * 999_999 + b'{"id":1}]',
    }


def run_case(body: bytes | None) -> tuple[int, int, str]:
    """(peak RSS in KiB, exit status, last stderr line) of one build against ``body``."""
    with GovkzFake(orgs=[SLUG], items=60) as server, tempfile.TemporaryDirectory() as tmp:
        if body is not None:
            server.fault("news", 200, body, times=None)
        config = Path(tmp) / "feedsvc.toml"
        config.write_text(f'[govkz]\nbase_url = "{server.base_url}"\ndelay = 0.0\nretries = 1\n'
                          "max_response_bytes = 10000000\n", encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, "-m", "feedsvc.cli", "build", "--config", str(config), "--source",
             f"https://www.gov.kz/memleket/entities/{SLUG}", "--lang", "en", "--out",
             str(Path(tmp) / "out"), "--db", str(Path(tmp) / "store.sqlite3")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp)
        peak = 0
        while process.poll() is None:
            peak = max(peak, high_water_kib(process.pid))
            time.sleep(0.01)
        assert process.stderr is not None
        lines = [line for line in process.stderr.read().splitlines()
                 if line.startswith("error:")]
        return peak, process.returncode, (lines or [""])[-1][:160]


def high_water_kib(pid: int) -> int:
    """The process's peak resident set so far (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    print(f"{'case':<15} {'answer':>10} {'peak RSS':>10}  exit  error")
    for name, body in answers().items():
        peak, status, error = run_case(body)
        size = f"{len(body) / 1e6:.1f} MB" if body is not None else "-"
        print(f"{name:<15} {size:>10} {peak / 1024:>7.0f} MiB  {status:>4}  {error}")


if __name__ == "__main__":
    main()
