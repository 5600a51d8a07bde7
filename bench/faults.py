"""Faults: kill training runs at random moments, resume them, and check that no run is lost or mixed.

    python bench/faults.py [--preset tiny] [--steps 12] [--trials 4] [--kills 3] [--seed 0] [--json]

An uninterrupted run gives the reference weights. Each trial then trains the same run in a
`llada pretrain ar` subprocess with `--save-every 1` (so kills land while starting, training and
writing checkpoints), SIGKILLs it after a random delay (every other time at the next checkpoint
write after it), resumes it (or starts it again when it died
before writing its run.json) and kills again, `--kills` times; the last attempt runs to the end
and its final weights must equal the reference's, bit for bit. Every other trial starts as an
`--overwrite` of a finished run: after each kill, that old run must be back in place, kept under a
visible name, or replaced by a new run that has saved a checkpoint. Then two races: an overwrite
and a second resume of a run being trained must both be refused, naming its process. Last, full
disks: the same run, and an export, in a process that cannot write a file over N bytes (writes
fail with EFBIG as with ENOSPC), N just under the size of each file a run writes (tokenizer.json,
run.json, the weights, the trainer state): each must fail in one line, or finish, and the run then
finish unlimited with the reference's weights; an export must leave no folder.

Prints kills (and how many landed in a checkpoint write), resumes, bit-identical runs,
leftovers (temp folders, hidden runs or folders without run.json still there at the end), lost
runs (a run that could not be finished, or an overwritten run gone before its replacement saved
anything), mixed runs (finished with other weights than the reference's) and the race checks.
Not part of the test suite: a few minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SHAPE = ["--batch-size", "4", "--seq-len", "64", "--vocab-size", "512", "--dtype", "fp32"]
LEFTOVERS = ("checkpoints/.step-*", "checkpoints/*.old", ".*.tmp")  # what a killed write leaves


@dataclass
class Figures:
    kills: int = 0
    kills_mid_checkpoint: int = 0  # a checkpoint's temp folder was there after the kill
    resumes: int = 0
    bit_identical_runs: int = 0
    leftovers: int = 0
    lost_runs: int = 0
    mixed_runs: int = 0
    old_runs_kept_visible: int = 0
    race_checks_passed: int = 0
    race_checks: int = 0
    full_disk_trials: int = 0
    full_disk_one_line_errors: int = 0  # the others finished (the limit was above every file)
    full_disk_tracebacks: int = 0


def tensors(data: bytes) -> dict[str, bytes]:
    """A safetensors file's tensors, name -> dtype, shape and raw bytes. Not the file's bytes: the
    order of its header's metadata changes from one process to the next."""
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + size])
    header.pop("__metadata__", None)
    body = data[8 + size :]
    return {
        name: f"{entry['dtype']}{entry['shape']}".encode() + body[slice(*entry["data_offsets"])]
        for name, entry in header.items()
    }


class Bench:
    def __init__(self, home: Path, preset: str, steps: int, rng: random.Random) -> None:
        self.home, self.rng, self.preset, self.steps = home, rng, preset, steps
        self.runs = home / "runs"
        self.figures = Figures()
        self.reference: dict[str, bytes] = {}
        self.duration = 0.0

    def train(self, name: str, steps: int | None = None) -> list[str]:
        steps_flags = ["--save-every", "1", "--max-steps", str(steps or self.steps)]
        return ["pretrain", "ar", "--preset", self.preset, *SHAPE, *steps_flags, "--run-name", name]

    def llada(self, *args: str, file_limit: int | None = None) -> subprocess.Popen:
        # one thread: the same sums in the same order in every process, so weights compare bit for bit
        command = [sys.executable, "-m", "llada_cli", "--home", str(self.home), "--quiet", "--threads", "1"]
        command += args

        def limit() -> None:  # a full disk: writes past file_limit bytes fail (EFBIG), not the process
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

        return subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limit if file_limit is not None else None,
        )

    def finish(self, *args: str, file_limit: int | None = None) -> tuple[int, str]:
        process = self.llada(*args, file_limit=file_limit)
        _, stderr = process.communicate()
        return process.returncode, stderr

    def weights(self, name: str) -> dict[str, bytes]:
        run = self.runs / name
        step = (run / "latest").read_text().strip()
        return tensors((run / "checkpoints" / step / "model.safetensors").read_bytes())

    def info(self, name: str) -> dict | None:
        path = self.runs / name / "run.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def make_reference(self) -> None:
        """The uninterrupted run, and how long one takes (timed on a second one: the first also
        prepares the data), which bounds the random delays before a kill."""
        for name in ("reference", "timing"):
            started = time.perf_counter()
            code, stderr = self.finish(*self.train(name))
            if code != 0:
                raise SystemExit(f"the reference run failed:\n{stderr}")
            self.duration = time.perf_counter() - started
        shutil.rmtree(self.runs / "timing")
        self.reference = self.weights("reference")

    def killed(self, args: list[str], mid_checkpoint: bool) -> None:
        """Start `llada ARGS` and SIGKILL it after a random delay, or (`mid_checkpoint`) at the first
        checkpoint write after that delay, as soon as its temp folder appears; it may end first."""
        before = set(self.runs.glob("*/checkpoints/.step-*"))  # a killed resume may leave older ones
        process = self.llada(*args)
        deadline = time.perf_counter() + self.rng.uniform(0.2, 0.9 * self.duration)
        while process.poll() is None:
            if time.perf_counter() >= deadline and (
                not mid_checkpoint or any(self.runs.glob("*/checkpoints/.step-*"))
            ):
                break
            time.sleep(0.001)
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.figures.kills += 1
        self.figures.kills_mid_checkpoint += bool(set(self.runs.glob("*/checkpoints/.step-*")) - before)

    def trial(self, name: str, kills: int, overwrite: bool) -> None:
        old = None  # the run an overwrite trial replaces: a finished copy of the reference
        if overwrite:
            shutil.copytree(self.runs / "reference", self.runs / name)
            old = self.info(name)["created"]
        watching = overwrite  # until the old run is found kept, or rightly dropped
        for attempt in range(kills + 1):
            if attempt:
                self.finish("runs", "list")  # what a user does next: recovers what an overwrite left
                where = self.old_run(name, old) if watching else "done"
                if where is None:
                    self.figures.lost_runs += 1
                    return
                watching = where == "in place"
            info = self.info(name)
            new = info is not None and info["created"] != old
            if new and info["status"] == "completed":
                break
            args = self.train(name) + (["--resume"] if new else ["--overwrite"] if overwrite else [])
            self.figures.resumes += new
            if attempt < kills:
                self.killed(args, mid_checkpoint=attempt % 2 == 1)  # ended first: the next attempt sees it
                continue
            code, stderr = self.finish(*args)
            if code != 0:
                print(f"{name}: the last attempt failed: {stderr.strip()}", file=sys.stderr)
        info = self.info(name)
        if info is None or info["status"] != "completed" or info["created"] == old:
            self.figures.lost_runs += 1
        elif self.weights(name) == self.reference:
            self.figures.bit_identical_runs += 1
        else:
            self.figures.mixed_runs += 1

    def old_run(self, name: str, created: str) -> str | None:
        """Where the overwritten run is after a kill: "in place", "kept visible" (under another
        name), "dropped" (rightly: the new run has saved a checkpoint), or None: lost."""
        for kept in self.runs.glob(f"{name}.replaced-*"):
            if (self.info(kept.name) or {}).get("created") == created:
                self.figures.old_runs_kept_visible += 1
                shutil.rmtree(kept)  # found: the trial goes on with the new run
                return "kept visible"
        info = self.info(name)
        if info is not None and info["created"] == created:
            return "in place"
        if info is not None and any((self.runs / name / "checkpoints").glob("step-*")):
            return "dropped"
        return None

    def race(self, name: str) -> None:
        """While a run trains, an overwrite and a second resume are refused naming its process; once
        it is killed, it shows as interrupted and resumes."""
        trainer = self.llada(*self.train(name, steps=100_000))
        while (self.info(name) or {}).get("status") != "running":
            if trainer.poll() is not None:
                raise SystemExit(f"the race's run ended early:\n{trainer.stderr.read()}")
            time.sleep(0.05)
        for args in ([*self.train(name), "--overwrite"], ["pretrain", "ar", "--run-name", name, "--resume"]):
            code, stderr = self.finish(*args)
            self.check(code == 1 and f"by process {trainer.pid} (" in stderr)
        trainer.send_signal(signal.SIGKILL)
        trainer.wait()
        self.figures.kills += 1
        shown = json.loads(self.llada("runs", "show", name, "--json").communicate()[0])
        self.check(shown["status"] == "interrupted")
        # the next resume (one more step) clears what the kill left mid checkpoint
        resumed = ["pretrain", "ar", "--run-name", name, "--resume", "--max-steps", str(shown["step"] + 1)]
        self.figures.resumes += 1
        self.check(self.finish(*resumed)[0] == 0)

    def full_disk(self, name: str, file_limit: int) -> None:
        """Train under a file-size limit, then unlimited: one line or success, then the reference."""
        self.figures.full_disk_trials += 1
        code, stderr = self.finish(*self.train(name), file_limit=file_limit)
        self.figures.full_disk_tracebacks += "Traceback" in stderr
        self.figures.full_disk_one_line_errors += code == 1 and len(stderr.strip().splitlines()) == 1
        info = self.info(name)
        if info is None or info["status"] != "completed":
            self.finish(*self.train(name), *(["--resume"] if info is not None else []))
        info = self.info(name)
        if info is None or info["status"] != "completed":
            self.figures.lost_runs += 1
        elif self.weights(name) == self.reference:
            self.figures.bit_identical_runs += 1
        else:
            self.figures.mixed_runs += 1

    def full_disk_export(self, file_limit: int) -> None:
        self.figures.full_disk_trials += 1
        out = self.home / "export"
        code, stderr = self.finish("export", "reference", str(out), file_limit=file_limit)
        self.figures.full_disk_tracebacks += "Traceback" in stderr
        one_line = code == 1 and len(stderr.strip().splitlines()) == 1
        self.figures.full_disk_one_line_errors += one_line
        self.figures.leftovers += one_line and (out.exists() or (self.home / ".export.partial").exists())

    def file_limits(self) -> list[int]:
        """Just under the size of each file a run writes: each limit fails a different write."""
        run = self.runs / "reference"
        step = run / "checkpoints" / (run / "latest").read_text().strip()
        files = [run / "tokenizer.json", run / "run.json", step / "model.safetensors", step / "trainer.pt"]
        return sorted({path.stat().st_size - 1 for path in files})

    def check(self, passed: bool) -> None:
        self.figures.race_checks += 1
        self.figures.race_checks_passed += passed

    def count_leftovers(self) -> None:
        for path in self.runs.iterdir():
            if path.name.startswith(".") or not (path / "run.json").is_file():
                self.figures.leftovers += 1
                print(f"leftover: {path.name}", file=sys.stderr)
            for junk in (junk for pattern in LEFTOVERS for junk in path.glob(pattern)):
                self.figures.leftovers += 1
                print(f"leftover: {junk.relative_to(self.runs)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--kills", type=int, default=3, help="kills per trial before the last attempt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="llada-faults-"))
    try:
        bench = Bench(home, args.preset, args.steps, random.Random(args.seed))
        started = time.perf_counter()
        bench.make_reference()
        for trial in range(args.trials):
            bench.trial(f"trial-{trial}", args.kills, overwrite=trial % 2 == 1)
        bench.race("race")
        limits = bench.file_limits()
        for limit in limits:
            bench.full_disk(f"disk-{limit}", limit)
        bench.full_disk_export(limits[-2])  # under the weights' size
        bench.finish("runs", "list")
        bench.count_leftovers()
        figures = asdict(bench.figures) | {"seconds": round(time.perf_counter() - started, 1)}
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key.replace('_', ' '):>24}  {value}")


if __name__ == "__main__":
    main()
