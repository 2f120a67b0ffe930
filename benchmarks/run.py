"""One command for the one-shot build benchmark: full build, baseline, add one item, no change.

    .venv/bin/python benchmarks/run.py [--items 100000] [--runs 3]

1. Generates the corpus with ``gen_corpus.py`` (cached in ``benchmarks/out/corpus-<items>/``
   while its manifest matches the parameters).
2. For each run, in a fresh temporary directory (a copy of the corpus, an empty store and an
   empty output directory), each step a fresh subprocess:

   - **full build**: ``feedsvc build --source CORPUS --out OUT --db DB --base-url ...``;
   - **baseline**: ``baseline_feedgen.py CORPUS OUT2`` (feedgen, no store);
   - **add one**: one new dump file with one new item is dropped into CORPUS, same build again;
     files under OUT whose (mtime_ns, size, sha256) changed are counted and named;
   - **no change**: the same build once more; should change nothing.

3. Prints medians (min, max) next to the targets, with the machine, and writes the same as
   JSON to ``benchmarks/out/results.json``.

Wall time is the whole process, interpreter start-up included (``time.perf_counter`` around
spawn and reap). Peak RSS is ``ru_maxrss`` from ``os.wait4`` on that very child: the rusage
of the one process (and any children it waited for), no wrapper process involved.

``--feedsvc-cmd`` replaces the build command, for trying the harness before the CLI exists:
either an executable used in place of ``feedsvc`` (``build --source ...`` is appended), or a
template with ``{feedsvc} {python} {repo} {source} {out} {db} {base_url}`` placeholders, e.g.
``--feedsvc-cmd '{python} benchmarks/baseline_feedgen.py {source} {out}'``.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gen_corpus

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
OUT = BENCH / "out"
BASELINE = BENCH / "baseline_feedgen.py"
BASE_URL = "http://bench.invalid/"
DEFAULT_CMD = "{feedsvc} build --source {source} --out {out} --db {db} --base-url {base_url}"
TAIL = 2000

# metric key -> (label, target text, check on the median or worst value)
TARGETS = {
    "build_wall_s": ("< 10 s", lambda v: v < 10.0),
    "build_rss_mib": ("< 300 MB", lambda v: v < 300.0),
    "build_tree_rss_mib": ("< 300 MB", lambda v: v < 300.0),
    "add_one_wall_s": ("< 0.3 s", lambda v: v < 0.3),
    "no_change_files_changed": ("0 files", lambda v: v == 0),
}
LABELS = {
    "build_wall_s": "full build: wall (s)",
    "build_items_per_s": "full build: distinct items/s",
    "build_rss_mib": "full build: peak RSS (MiB)",
    "build_tree_rss_mib": "full build: all processes (MiB)",
    "build_out_files": "full build: files under OUT",
    "baseline_wall_s": "baseline: wall (s)",
    "baseline_rss_mib": "baseline: peak RSS (MiB)",
    "ratio_build_to_baseline": "full build / baseline time",
    "add_one_wall_s": "add one item: wall (s)",
    "add_one_files_changed": "add one item: files changed",
    "add_one_rss_mib": "add one item: peak RSS (MiB)",
    "no_change_wall_s": "no change: wall (s)",
    "no_change_files_changed": "no change: files changed",
}


# --- running one child -------------------------------------------------------------------------


@dataclass
class Measured:
    argv: list[str]
    status: int | None
    wall_s: float
    maxrss_kib: int | None
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    error: str | None = None
    tree_rss_kib: int | None = None  # sampled peak of the summed RSS of all its processes

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out

    @property
    def rss_mib(self) -> float | None:
        return None if self.maxrss_kib is None else self.maxrss_kib / 1024


# The wrapper is a fresh interpreter that fork()s and exec()s the command and reaps it with
# wait4(). Why not reap the command from this process: Linux records the *old* address space's
# high-water RSS into the exec'ing process's ru_maxrss, and subprocess uses vfork, so every
# child would inherit this harness's own peak (the corpus generation: ~300 MB). A fork()ed
# copy of the small wrapper leaves a floor of the wrapper's current RSS, ~8 MB, measured at
# start-up as "rss_floor_mib" by wrapping /bin/true.
WRAPPER = """
import json, os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"could not start {argv[0]}: {exc}\\n".encode())
    os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(result, "w") as out:
    json.dump({"status": os.waitstatus_to_exitcode(status), "wall_s": wall,
               "maxrss_kib": usage.ru_maxrss}, out)
"""


def measure(argv: list[str], logs: Path, name: str, timeout: float) -> Measured:
    """Run ``argv`` through the wrapper: exit status, wall time and the command's ru_maxrss."""
    out_path, err_path = logs / f"{name}.stdout", logs / f"{name}.stderr"
    result = logs / f"{name}.result.json"
    wrapped = [sys.executable, "-I", "-S", "-c", WRAPPER, str(result), *argv]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        try:
            proc = subprocess.Popen(wrapped, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    cwd=REPO, start_new_session=True)
        except OSError as exc:
            return Measured(argv, None, 0.0, None, False, "", "", f"could not start: {exc}")
        fired = threading.Event()
        timer = threading.Timer(timeout, _kill_group, (proc.pid, fired))
        timer.start()
        sampler = TreeRss(proc.pid)
        sampler.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
            sampler.stop()
    try:
        got = json.loads(result.read_text())
    except (OSError, ValueError):
        got = {"status": None, "wall_s": 0.0, "maxrss_kib": None}
    error = None if got["status"] is not None else \
        f"no result from the wrapper (exit status {proc.returncode})"
    return Measured(argv, got["status"], got["wall_s"], got["maxrss_kib"], fired.is_set(),
                    _tail(out_path), _tail(err_path), error, sampler.peak_kib or None)


class TreeRss(threading.Thread):
    """Samples, every 100 ms, the summed RSS of every process of the command's process group
    but the wrapper: the command and the workers it starts. ``ru_maxrss`` is one process's
    peak; a parallel build has three processes. Pages they share (the interpreter, libraries)
    count once per process, so the sum overstates the memory used. Linux only (/proc)."""

    def __init__(self, group: int) -> None:
        super().__init__(daemon=True)
        self.group = group
        self.peak_kib = 0
        self._done = threading.Event()
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak_kib = max(self.peak_kib, self._sample())

    def stop(self) -> None:
        self._done.set()
        self.join()

    def _sample(self) -> int:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == self.group:
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
                if int(fields[2]) != self.group:  # the process group, after state and ppid
                    continue
                with open(f"/proc/{entry.name}/statm", "rb") as statm:
                    total += int(statm.read().split()[1]) * self._page_kib
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
        return total


def rss_floor_mib() -> float | None:
    """What the wrapper adds to every ru_maxrss: the figure for /bin/true."""
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-floor-") as tmp:
        floor = measure(["true"], Path(tmp), "floor", 30.0)
    return floor.rss_mib


def _kill_group(pid: int, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    data = path.read_bytes()
    return data[-TAIL:].decode("utf-8", "replace")


# --- output snapshots --------------------------------------------------------------------------


def snapshot(root: Path, ignore: tuple[str, ...] = ()) -> dict[str, tuple[int, int, str]]:
    """Every file under ``root`` but ``ignore`` globs: relative path -> (mtime_ns, size, sha256)."""
    files: dict[str, tuple[int, int, str]] = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(fnmatch.fnmatch(rel, glob) for glob in ignore):
            stat = path.stat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[rel] = (stat.st_mtime_ns, stat.st_size, digest)
    return files


def changed(before: dict[str, tuple[int, int, str]],
            after: dict[str, tuple[int, int, str]]) -> list[str]:
    """Files added, removed, or with another mtime, size or content; marked +, -, ~."""
    result = [f"+{p}" for p in after if p not in before]
    result += [f"-{p}" for p in before if p not in after]
    result += [f"~{p}" for p in after if p in before and after[p] != before[p]]
    return sorted(result, key=lambda s: s[1:])


# --- one run -----------------------------------------------------------------------------------


def build_argv(template: str, work: Path, corpus: Path) -> list[str]:
    values = {"feedsvc": str(find_feedsvc()), "python": sys.executable, "repo": str(REPO),
              "source": str(corpus), "out": str(work / "out"), "db": str(work / "store.sqlite3"),
              "base_url": BASE_URL}
    if "{" not in template:
        template = shlex.join(shlex.split(template)) + DEFAULT_CMD.removeprefix("{feedsvc}")
    return [token.format_map(values) for token in shlex.split(template)]


def find_feedsvc() -> Path:
    beside = Path(sys.executable).parent / "feedsvc"
    if beside.exists():
        return beside
    found = shutil.which("feedsvc")
    return Path(found) if found else beside


def one_run(number: int, corpus_cache: Path, manifest: dict, args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"feedsvc-bench-{number}-"))
    logs = work / "logs"
    logs.mkdir()
    try:
        corpus = work / "corpus"
        shutil.copytree(corpus_cache, corpus, ignore=shutil.ignore_patterns("corpus.json"))
        build = build_argv(args.feedsvc_cmd, work, corpus)
        steps: dict[str, dict] = {}
        full = measure(build, logs, "build", args.timeout)
        steps["build"] = {**asdict(full), "out_files": len(snapshot(work / "out"))}
        if not args.no_baseline:
            base = measure([sys.executable, str(BASELINE), str(corpus), str(work / "baseline")],
                           logs, "baseline", args.timeout)
            steps["baseline"] = asdict(base)
        before = snapshot(work / "out", args.ignore)
        added = gen_corpus.write_one_item(corpus_cache, corpus / "zz_added.txt")
        steps["add_one"] = rerun(build, logs, "add_one", before, work, args)
        steps["add_one"]["added"] = added
        after = snapshot(work / "out", args.ignore)
        steps["no_change"] = rerun(build, logs, "no_change", after, work, args)
        return {"run": number, "distinct_items": manifest["distinct_items"], "steps": steps}
    finally:
        if args.keep:
            print(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def rerun(argv: list[str], logs: Path, name: str, before: dict, work: Path,
          args: argparse.Namespace) -> dict:
    result = measure(argv, logs, name, args.timeout)
    diff = changed(before, snapshot(work / "out", args.ignore))
    return {**asdict(result), "files_changed": len(diff), "changed": diff}


# --- figures -----------------------------------------------------------------------------------


def metrics(run: dict) -> dict[str, float | None]:
    """The figures of one run; None for a step that failed (non-zero exit, timeout, no start)."""
    steps = run["steps"]
    build, add, same = (_ok(steps[n]) for n in ("build", "add_one", "no_change"))
    base = _ok(steps.get("baseline"))
    values: dict[str, float | None] = {
        "build_wall_s": build and build["wall_s"],
        "build_items_per_s": build and run["distinct_items"] / build["wall_s"],
        "build_rss_mib": build and _mib(build["maxrss_kib"]),
        "build_tree_rss_mib": build and _mib(build.get("tree_rss_kib")),
        "build_out_files": build and build["out_files"],
        "baseline_wall_s": base and base["wall_s"],
        "baseline_rss_mib": base and _mib(base["maxrss_kib"]),
        "ratio_build_to_baseline": build and base and build["wall_s"] / base["wall_s"],
        "add_one_wall_s": add and add["wall_s"],
        "add_one_files_changed": add and add["files_changed"],
        "add_one_rss_mib": add and _mib(add["maxrss_kib"]),
        "no_change_wall_s": same and same["wall_s"],
        "no_change_files_changed": same and same["files_changed"],
    }
    return values


def _ok(step: dict | None) -> dict | None:
    return step if step and step["status"] == 0 and not step["timed_out"] else None


def _mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


def summarise(runs: list[dict]) -> dict[str, dict]:
    """Median, min and max of every figure over the runs whose step succeeded; the verdict.

    A target counts as met only when every run's step succeeded; wall time and RSS are judged
    on the median, files changed on the worst run.
    """
    per_run = [metrics(run) for run in runs]
    summary: dict[str, dict] = {}
    with_baseline = any("baseline" in run["steps"] for run in runs)
    for key in LABELS:
        if key.startswith(("baseline", "ratio")) and not with_baseline:
            continue
        values = [m[key] for m in per_run if m[key] is not None]
        failed = len(runs) - len(values)
        entry: dict = {"failed_runs": failed, "values": values}
        if values:
            entry |= {"median": statistics.median(values), "min": min(values),
                      "max": max(values)}
        if key in TARGETS:
            text, check = TARGETS[key]
            judged = (max(values) if key.endswith("files_changed") else entry["median"]) \
                if values else None
            entry |= {"target": text, "met": failed == 0 and bool(check(judged))}
        summary[key] = entry
    return summary


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(),
            "cpu_model": model, "mem_total": _meminfo_total(), "loadavg": os.getloadavg(),
            "python": sys.version.split()[0], "python_executable": sys.executable,
            "platform": platform.platform(), "git": _git_head()}


def _meminfo_total() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return line.split(":", 1)[1].strip()
    return None


def _git_head() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    return done.stdout.strip() or None


# --- corpus ------------------------------------------------------------------------------------


def ensure_corpus(args: argparse.Namespace) -> tuple[Path, dict, float | None]:
    """The cached corpus when its manifest matches, else a freshly generated one (and its time)."""
    where = OUT / f"corpus-{args.items}"
    wanted = gen_corpus.params(args.items, args.orgs, args.files, args.seed, args.dup_rate,
                               args.link_rate, gen_corpus.expected_slug_source())
    manifest = gen_corpus.read_manifest(where)
    if manifest and manifest.get("params") == wanted and _files_intact(where, manifest):
        return where, manifest, None
    print(f"generating corpus in {where} ...", flush=True)
    started = time.perf_counter()
    manifest = gen_corpus.generate(where, args.items, args.orgs, args.files, args.seed,
                                   args.dup_rate, args.link_rate)
    return where, manifest, time.perf_counter() - started


def _files_intact(where: Path, manifest: dict) -> bool:
    names = {f["name"]: f["bytes"] for f in manifest.get("files", [])}
    present = {p.name: p.stat().st_size for p in where.glob("*.txt")}
    return bool(names) and names == present


# --- report ------------------------------------------------------------------------------------


def report(summary: dict[str, dict], runs: list[dict], info: dict) -> None:
    corpus = info["corpus"]
    mach = info["machine"]
    print(f"\nmachine: {mach['nproc']} CPU(s) ({mach['cpu_model']}), {mach['mem_total']}, "
          f"Python {mach['python']}, load {mach['loadavg'][0]:.2f}, git {mach['git']}")
    print(f"corpus: {corpus['distinct_items']} distinct items + {corpus['duplicates']} "
          f"duplicates, {corpus['items_with_link']} with a link, {corpus['orgs']} orgs, "
          f"{corpus['files_count']} files, {corpus['mb']:.1f} MB ({corpus['generated']})")
    print(f"build command: {shlex.join(info['build_argv'])}")
    floor = info["rss_floor_mib"]
    print("peak RSS: ru_maxrss via a fork/exec wrapper"
          + (f" (floor: {floor:.1f} MiB for /bin/true)" if floor is not None else ""))
    globs = ", ".join(info["ignored"])
    ignored = f" (changed-file counts ignore {globs})" if globs else ""
    print(f"runs: {len(runs)}{ignored}\n")
    print(f"{'metric':<32}{'median':>10}{'min':>10}{'max':>10}   target")
    for key, entry in summary.items():
        verdict = ""
        if "target" in entry:
            verdict = f"{entry['target']:<9} {'ok' if entry['met'] else 'MISSED'}"
        if entry["failed_runs"]:
            verdict += f"  (step failed in {entry['failed_runs']}/{len(runs)} runs)"
        cells = [_fmt(entry[k]) if k in entry else "-" for k in ("median", "min", "max")]
        print(f"{LABELS[key]:<32}{cells[0]:>10}{cells[1]:>10}{cells[2]:>10}   {verdict}")
    report_failures(runs)
    report_changes(runs[0])


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def report_failures(runs: list[dict]) -> None:
    for run in runs:
        for name, step in run["steps"].items():
            if step["status"] == 0 and not step["timed_out"]:
                continue
            why = "timed out (killed)" if step["timed_out"] else \
                step["error"] or f"exit status {step['status']}"
            print(f"\nrun {run['run']} {name}: {why}")
            tail = (step["stderr_tail"].strip() or step["stdout_tail"].strip()).splitlines()[-15:]
            for line in tail:
                print(f"    {line}")


def report_changes(run: dict) -> None:
    for name in ("add_one", "no_change"):
        diff = run["steps"][name]["changed"]
        shown = ", ".join(diff[:20]) + (f", ... ({len(diff) - 20} more)" if len(diff) > 20 else "")
        print(f"\nrun {run['run']} {name}: {len(diff)} file(s) changed"
              + (f": {shown}" if diff else ""))
    print("\n(+ added, - removed, ~ mtime/size/content changed)")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="distinct items (100000)")
    parser.add_argument("--orgs", type=int, default=300, help="organisation slugs (300)")
    parser.add_argument("--files", type=int, default=100, help="dump files (100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--link-rate", type=float, default=0.75)
    parser.add_argument("--runs", type=int, default=3, help="repetitions (3)")
    parser.add_argument("--feedsvc-cmd", default=DEFAULT_CMD,
                        help="build command: an executable replacing feedsvc, or a template "
                             "(default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds before a step is killed (900)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline script")
    parser.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                        help="leave files matching GLOB (relative to OUT, e.g. .lock) out of the "
                             "changed-file counts; repeatable")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--results", type=Path, default=OUT / "results.json")
    return parser.parse_args(argv)


def compile_bytecode() -> None:
    """Compile feedsvc's modules to bytecode, as ``pip install`` does for a regular install.

    An editable install (this repository's ``.venv``) leaves that to the first import, and
    with ``PYTHONDONTWRITEBYTECODE`` set (as on CI machines) every run would compile the
    package from source again: 50 ms of an "add one item" run that a user never pays.
    """
    import compileall

    compileall.compile_dir(REPO / "feedsvc", quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.ignore = tuple(args.ignore)
    corpus_dir, manifest, gen_seconds = ensure_corpus(args)
    compile_bytecode()
    generated = "cached" if gen_seconds is None else f"generated in {gen_seconds:.1f} s"
    info = {
        "machine": machine(),
        "corpus": {**{k: manifest[k] for k in ("distinct_items", "duplicates", "occurrences",
                                               "items_with_link", "orgs", "params")},
                   "dir": str(corpus_dir), "files_count": len(manifest["files"]),
                   "mb": manifest["bytes"] / 1e6, "generated": generated,
                   "generation_s": gen_seconds},
        "build_argv": build_argv(args.feedsvc_cmd, Path("<tmp>"), Path("<tmp>/corpus")),
        "ignored": list(args.ignore),
        "rss_method": "ru_maxrss (KiB) from wait4() in a small wrapper that fork()s and "
                      "exec()s the command; includes the wrapper's image (rss_floor_mib)",
        "rss_floor_mib": rss_floor_mib(),
    }
    runs = []
    for number in range(1, args.runs + 1):
        print(f"run {number}/{args.runs} ...", flush=True)
        runs.append(one_run(number, corpus_dir, manifest, args))
    summary = summarise(runs)
    report(summary, runs, info)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({**info, "summary": summary, "runs": runs}, indent=1,
                                       ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nresults: {args.results}")
    return 0 if all(s["status"] == 0 for r in runs for s in r["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
