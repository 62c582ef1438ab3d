"""Crash safety of `dimnb archive`: SIGKILL the real job at chosen and random points, check after every kill.

    python bench/archive_crash.py [--kills 50] [--calls 160] [--seed 1] [--quick] [--keep DIR]

A demo 3CX export (real WAV files) is loaded into a fresh data directory and
a few sources are deleted (3CX housekeeping). Then, again and again, the job
(`python -m dimnb archive`, a real process) is started and killed: at a named
step through the job's test hook (mid-copy, after fsync before rename, after
rename before publish, mid-publish), or at a random moment while it runs in
slow motion. After every kill every 3CX recording must be either pending with
its source intact, or available with a verified copy in the archive (or, for
a deleted source, pending or missing), no file under a final archive name may
differ from its recording, and the per-call counters must agree. After a
complete run no temp file a killed run was writing (``.last-run.json.<pid>.tmp``)
may be left over. When all
work is done the call store is reset to its freshly loaded state (the
archive emptied) and the kills go on. A last uninterrupted run must finish
the job. The last line is the number of violations (target 0).

The same functions drive tests/test_archive_crash.py.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dimnb import archive  # noqa: E402
from dimnb.store.callstore import CallStore  # noqa: E402

STEPS = archive.STEPS


@dataclass
class World:
    data: Path
    pbx: Path
    removed: set[str] = field(default_factory=set)

    @property
    def pristine(self) -> Path:
        return self.data.parent / "calls.pristine"


def build_world(base: Path, *, calls: int, seed: int, remove: int = 3) -> World:
    """Generate the demo export, load it into a new data directory, delete ``remove`` recording sources."""
    from dimnb.demo.generate import generate
    from dimnb.directory import import_directory
    from dimnb.ingest.threecx import load_3cx
    from dimnb.store.stores import Stores

    world = World(base / "data", base / "pbx")
    generate(world.pbx, calls=calls, seed=seed)
    stores = Stores.open(str(world.data), create=True)
    import_directory(stores.state, world.pbx / "directory.json")
    load_3cx(stores, [world.pbx])
    paths = [r[0] for r in stores.calls.query(
        "SELECT source_path FROM recordings WHERE state = 'pending_archive' ORDER BY recording_id")]
    stores.close()
    for path in random.Random(seed).sample(paths, min(remove, len(paths))):
        os.unlink(path)
        world.removed.add(path)
    shutil.copytree(world.data / "calls", world.pristine, symlinks=True)
    return world


def reset(world: World) -> None:
    """Back to the freshly loaded state: the loaded generation, an empty archive (deleted sources stay deleted)."""
    shutil.rmtree(world.data / "calls")
    shutil.copytree(world.pristine, world.data / "calls", symlinks=True)
    shutil.rmtree(world.data / "archive", ignore_errors=True)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIMNB_ARCHIVE_TEST_")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def _command(world: World, batch_size: int) -> list[str]:
    return [sys.executable, "-m", "dimnb", "archive", "--data", str(world.data), "--no-progress",
            "--batch-size", str(batch_size)]


def kill_at_step(world: World, step: str, nth: int, *, batch_size: int = 4, timeout: float = 120) -> bool:
    """Run the job until it pauses at the ``nth`` time it reaches ``step``, then SIGKILL it.

    Returns False when the job finished without reaching that point (nothing was killed).
    """
    env = _env(**{archive.PAUSE_ENV: f"{step}:{nth}", archive.PAUSE_SECONDS_ENV: "600"})
    proc = subprocess.Popen(_command(world, batch_size), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    assert proc.stderr is not None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                line = proc.stderr.readline()
                if line.startswith(archive.PAUSE_MARKER):
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return True
                if line == "":  # end of output: the job finished without reaching the step
                    proc.wait()
                    return False
        raise TimeoutError(f"the archive job did not reach {step}:{nth} within {timeout} s")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def kill_at_random(world: World, rng: random.Random, *, batch_size: int = 4, within: float = 2.0,
                   step_delay: float = 0.004) -> bool:
    """Start the job in slow motion and SIGKILL it after a random delay; False if it had already finished."""
    env = _env(**{archive.STEP_DELAY_ENV: str(step_delay)})
    proc = subprocess.Popen(_command(world, batch_size), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=rng.uniform(0.05, within))
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def run_to_end(world: World) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(world, 500), env=_env(), capture_output=True, text=True, timeout=600)


def _sha(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check(world: World) -> list[str]:
    """Every way the data directory breaks the archive's promises right now (empty: none)."""
    problems: list[str] = []
    store = CallStore(world.data / "calls")
    try:
        rows = store.query(
            "SELECT recording_id, state, source_path, archive_path, checksum FROM recordings WHERE system = '3cx'")
        bad_counts = store.query(
            """
            SELECT c.call_id FROM calls c LEFT JOIN recordings r USING (call_id)
            GROUP BY c.call_id, c.recordings_available, c.recordings_pending, c.recordings_total
            HAVING c.recordings_available <> count(r.recording_id) FILTER (WHERE r.state = 'available')
                OR c.recordings_pending <> count(r.recording_id) FILTER (WHERE r.state = 'pending_archive')
                OR c.recordings_total <> count(r.recording_id)
            """
        )
    finally:
        store.close()
    problems += [f"call {r[0]}: recording counters disagree with its recordings" for r in bad_counts]
    archive_root = world.data / "archive"
    checksums = {}
    for recording_id, state, source_path, archive_path, checksum in rows:
        checksums[recording_id] = checksum
        source = Path(source_path)
        removed = source_path in world.removed
        where = f"recording {recording_id} ({state})"
        if checksum is None:
            if state != "missing":
                problems.append(f"{where}: no checksum but not missing")
            continue
        if not removed and (not source.is_file() or _sha(source) != checksum):
            problems.append(f"{where}: its source was changed or removed by the job")
        if state == "pending_archive":
            if archive_path is not None:
                problems.append(f"{where}: pending but has an archive path")
        elif state == "available":
            copy = archive_root / archive_path if archive_path else None
            if copy is None or not copy.is_file():
                problems.append(f"{where}: available without its archive copy")
            elif _sha(copy) != checksum:
                problems.append(f"{where}: available but its archive copy does not verify")
        elif state == "missing":
            if not removed:
                problems.append(f"{where}: marked missing though its source is there")
        else:
            problems.append(f"{where}: unknown state")
    if archive_root.is_dir():
        for folder, dirs, files in os.walk(archive_root):
            dirs[:] = [d for d in dirs if d != archive.INCOMING]
            for name in files:
                path = Path(folder) / name
                if path.parent == archive_root and name in (archive.LOCK_FILE, archive.LAST_RUN_FILE):
                    continue
                if path.parent == archive_root and _is_summary_temp(name):
                    continue  # a killed run's own; check_finished says whether the next runs remove it
                prefix = name.split("-", 1)[0]
                if not prefix.isdigit() or int(prefix) not in checksums:
                    problems.append(f"{path}: a file in the archive that names no recording")
                elif _sha(path) != checksums[int(prefix)]:
                    problems.append(f"{path}: a file under a final archive name that does not verify")
    return problems


def _is_summary_temp(name: str) -> bool:
    return name.startswith(f".{archive.LAST_RUN_FILE}.") and name.endswith(".tmp")


def check_finished(world: World) -> list[str]:
    """After an uninterrupted run: everything archived, the deleted sources missing, no temp file left over."""
    store = CallStore(world.data / "calls")
    try:
        rows = store.query("SELECT state, source_path, checksum FROM recordings WHERE system = '3cx'")
    finally:
        store.close()
    problems = []
    archive_root = world.data / "archive"
    if archive_root.is_dir():
        problems += [f"{p}: a stray temp file a killed run left behind" for p in archive_root.iterdir()
                     if _is_summary_temp(p.name)]
    for state, source_path, checksum in rows:
        expected = "missing" if source_path in world.removed or checksum is None else "available"
        if state != expected:
            problems.append(f"{source_path}: {state} after a complete run, expected {expected}")
    return problems


def _pending_left(world: World) -> int:
    store = CallStore(world.data / "calls")
    try:
        return int(store.query("SELECT count(*) FROM recordings WHERE state = 'pending_archive'")[0][0])
    finally:
        store.close()


@dataclass
class Campaign:
    kills: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    resets: int = 0


def campaign(world: World, kills: int, rng: random.Random, *, log=None) -> Campaign:
    """Kill the job ``kills`` times (each named step and random moments, in turn), checking after each kill."""
    result = Campaign()
    kinds = list(STEPS) + ["random"]
    attempts = 0
    while result.kills < kills:
        attempts += 1
        if attempts > kills * 6:
            result.violations.append(f"only {result.kills} kills in {attempts} attempts: the job never got there")
            break
        kind = kinds[result.kills % len(kinds)]  # a kind the job did not get to is tried again after a reset
        if kind == "random":  # somewhere in the run: it lasts longer the more is left to do
            killed = kill_at_random(world, rng, within=0.3 + 0.03 * _pending_left(world))
        else:
            killed = kill_at_step(world, kind, rng.randint(1, 3))
        if killed:
            result.kills += 1
            result.by_kind[kind] = result.by_kind.get(kind, 0) + 1
            found = check(world)
            result.violations += [f"after kill {result.kills} ({kind}): {p}" for p in found]
            if log:
                log(f"kill {result.kills:3d} at {kind:<8} pending {_pending_left(world):3d}  violations {len(found)}")
        elif _pending_left(world) == 0:
            result.violations += [f"after a complete run: {p}" for p in check(world) + check_finished(world)]
            reset(world)
            result.resets += 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--calls", type=int, default=160, help="demo calls (about a third have a recording)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer calls (still --kills kills)")
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args(argv)
    calls = 80 if args.quick else args.calls
    base = args.keep or Path(tempfile.mkdtemp(prefix="dimnb-archive-crash-"))
    base.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    started = time.monotonic()
    try:
        world = build_world(base, calls=calls, seed=args.seed)
        print(f"world: {calls} demo calls, {len(world.removed)} sources deleted, in {base}", flush=True)
        result = campaign(world, args.kills, rng, log=lambda line: print(line, flush=True))
        final = run_to_end(world)
        if final.returncode != 0:
            result.violations.append(f"the final run failed ({final.returncode}): {final.stdout}{final.stderr}")
        result.violations += [f"final: {p}" for p in check(world) + check_finished(world)]
        for line in result.violations[:50]:
            print("VIOLATION", line)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(result.by_kind.items()))
        print(f"{result.kills} kills ({kinds}), {result.resets} resets, {time.monotonic() - started:.0f} s")
        summary = [line for line in final.stdout.splitlines() if " archived (" in line]
        print(f"final run: {summary[0] if summary else final.stdout.strip() + final.stderr.strip()}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(f"violations: {len(result.violations)} (target == 0)")
    return 0 if not result.violations else 1


if __name__ == "__main__":
    sys.exit(main())
