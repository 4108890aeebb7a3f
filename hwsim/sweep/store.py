"""results.csv of a sweep: one row per finished point, appended and flushed as each completes,
so a crash or Ctrl-C loses nothing that finished. sweep.json beside it records which sweep the
folder belongs to; a rerun with the same signature resumes, a different one is refused."""
from __future__ import annotations

import csv
import fcntl
import io
import json
from pathlib import Path
from typing import Any

from quant.errors import ConfigError

RESULTS = "results.csv"
SIGNATURE = "sweep.json"
LOCK = ".lock"  # flock-ed while a sweep writes here


def format_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return str(v)


def parse_value(text: str) -> Any:
    if text == "":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class ResultStore:
    def __init__(self, folder: Path, signature: dict, columns: tuple[str, ...]):
        self.folder, self.columns = folder, columns
        self.signature = json.loads(json.dumps(signature))  # compared with what sweep.json reads back
        self.path = folder / RESULTS
        self._file: io.TextIOWrapper | None = None
        self._lock: io.TextIOWrapper | None = None

    def open(self) -> dict[str, dict]:
        """Create or resume; returns the finished rows by point key."""
        try:
            return self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> dict[str, dict]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"--out {self.folder}: cannot create the sweep folder ({err.strerror or err})") from None
        self._lock = open(self.folder / LOCK, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise ConfigError(f"--out {self.folder}: another sweep is running in this folder") from None
        sig_path = self.folder / SIGNATURE
        done: dict[str, dict] = {}
        if sig_path.is_file():
            old = json.loads(sig_path.read_text())
            if old != self.signature:
                changed = sorted(k for k in set(old) | set(self.signature) if old.get(k) != self.signature.get(k))
                raise ConfigError(f"--out {self.folder}: holds a different sweep ({', '.join(changed)} changed); "
                                  "use another --out, or delete the folder to start over")
            done = self._read_repairing()
        elif self.path.exists():
            raise ConfigError(f"--out {self.folder}: {RESULTS} exists without {SIGNATURE}; not a sweep folder of "
                              "this tool, refusing to append to it")
        else:
            sig_path.write_text(json.dumps(self.signature, indent=2) + "\n")
        new = not self.path.exists()
        self._file = open(self.path, "a", newline="")
        if new:
            self._write([list(self.columns)])
        return done

    def _read_repairing(self) -> dict[str, dict]:
        """Rows of a previous run; a last line cut short by a kill is dropped (and cut from the file)."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]
            self.path.write_bytes(data)
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader, None)
        if header is None:
            self.path.unlink()
            return {}
        if tuple(header) != self.columns:
            raise ConfigError(f"{self.path}: columns differ from this version of hwsim sweep; use another --out")
        return {r[0]: dict(zip(header, map(parse_value, r), strict=True)) for r in reader if len(r) == len(header)}

    def _write(self, rows: list[list[str]]) -> None:
        assert self._file is not None
        csv.writer(self._file).writerows(rows)
        self._file.flush()

    def append(self, rows: list[dict]) -> None:
        self._write([[format_value(r[c]) for c in self.columns] for r in rows])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def rows(self) -> list[dict]:
        with open(self.path, newline="") as f:
            return [{k: parse_value(v) for k, v in r.items()} for r in csv.DictReader(f)]
