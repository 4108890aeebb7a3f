"""results.csv of a sweep: one row per finished point, appended and flushed as each completes,
so a crash or Ctrl-C loses nothing that finished. sweep.json beside it records which sweep the
folder belongs to; a rerun with the same signature resumes, a different one is refused.

Every file here is written so that a crash or a full disk leaves no half-written state: sweep.json
and the other whole files go through `write_atomic` (temporary file, fsync, rename), and an append
to results.csv that fails is cut back to the last whole row. A sweep.json left empty or garbled by
an older version is rewritten when results.csv holds no rows yet, and refused in one line otherwise.
Any OSError (ENOSPC above all) is one ConfigError line naming the file."""
from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
from pathlib import Path
from typing import Any

from quant.errors import ConfigError

RESULTS = "results.csv"
SIGNATURE = "sweep.json"
LOCK = ".lock"  # flock-ed while a sweep writes here
OUTPUTS = ("tables.json", "pareto.csv", "pareto.png", "results.parquet")  # written whole, beside results.csv


def disk_error(path: Path, err: OSError, doing: str = "write") -> ConfigError:
    """One line for a failed read or write: the file, the reason, and what to do after a full disk."""
    hint = ("; free some space and rerun the same command: finished points are kept"
            if err.errno in (errno.ENOSPC, errno.EDQUOT) else "")
    return ConfigError(f"{path}: cannot {doing} ({err.strerror or err}){hint}")


def write_atomic(path: Path, data: bytes) -> None:
    """The whole file or the old one, never a cut one: a temporary file, fsync-ed, renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise disk_error(path, err) from None


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
        self._file: io.FileIO | None = None
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
        try:
            self._lock = open(self.folder / LOCK, "w")
        except OSError as err:
            raise disk_error(self.folder / LOCK, err, "create") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise ConfigError(f"--out {self.folder}: another sweep is running in this folder") from None
        sig_path = self.folder / SIGNATURE
        done: dict[str, dict] = {}
        old = self._read_signature(sig_path) if sig_path.is_file() else None
        if old is not None:
            if old != self.signature:
                changed = sorted(k for k in set(old) | set(self.signature) if old.get(k) != self.signature.get(k))
                raise ConfigError(f"--out {self.folder}: holds a different sweep ({', '.join(changed)} changed); "
                                  "use another --out, or delete the folder to start over")
            done = self._read_repairing()
        else:
            if not sig_path.is_file():
                theirs = [n for n in (RESULTS, *OUTPUTS) if (self.folder / n).exists()]
                if theirs:
                    raise ConfigError(f"--out {self.folder}: {theirs[0]} exists without {SIGNATURE}; not a sweep "
                                      "folder of this tool, refusing to write over it")
            write_atomic(sig_path, (json.dumps(self.signature, indent=2) + "\n").encode())
        try:
            self._file = open(self.path, "ab", buffering=0)
        except OSError as err:
            raise disk_error(self.path, err, "open") from None
        if self._file.seek(0, os.SEEK_END) == 0:
            self._write([list(self.columns)])
        return done

    def _read_signature(self, sig_path: Path) -> dict | None:
        """The signature in sweep.json; None when an earlier crash left it empty or garbled and results.csv
        holds no rows yet (nothing to lose: it is rewritten); refused when there are rows it should vouch for."""
        try:
            old = json.loads(sig_path.read_bytes())
        except OSError as err:
            raise disk_error(sig_path, err, "read") from None
        except ValueError:  # empty, cut short, not UTF-8 or not JSON
            old = None
        if isinstance(old, dict):
            return old
        if self._has_rows():
            raise ConfigError(f"--out {self.folder}: {SIGNATURE} is damaged (empty or not JSON), so the rows in "
                              f"{RESULTS} cannot be matched to this sweep; use another --out, or delete the "
                              "folder to start over")
        return None

    def _has_rows(self) -> bool:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as err:
            raise disk_error(self.path, err, "read") from None
        first = data.find(b"\n")  # a whole line after the header
        return first >= 0 and data.find(b"\n", first + 1) >= 0

    def _read_repairing(self) -> dict[str, dict]:
        """Rows of a previous run; a last line cut short by a kill is dropped (and cut from the file)."""
        try:
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                data = data[:data.rfind(b"\n") + 1]
                os.truncate(self.path, len(data))  # needs no free space
        except FileNotFoundError:
            return {}
        except OSError as err:
            raise disk_error(self.path, err, "repair") from None
        header, rows = self._parse(data)
        if header is None:
            self.path.unlink()
            return {}
        if tuple(header) != self.columns:
            raise ConfigError(f"{self.path}: columns differ from this version of hwsim sweep; use another --out")
        return rows

    def _parse(self, data: bytes) -> tuple[list[str] | None, dict[str, dict]]:
        """(header, rows by point key; the last if a point repeats, lines of the wrong width skipped)."""
        try:
            reader = csv.reader(io.StringIO(data.decode()))
            header = next(reader, None)
            return header, {r[0]: dict(zip(header, map(parse_value, r), strict=True))
                            for r in reader if header and len(r) == len(header)}
        except (UnicodeDecodeError, csv.Error) as err:
            raise ConfigError(f"{self.path}: not a results table of hwsim sweep ({err}); use another --out") from None

    def _write(self, rows: list[list[str]]) -> None:
        """Append whole rows; a write that fails (a full disk) is cut back to the last whole row."""
        assert self._file is not None
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        view = memoryview(buf.getvalue().encode())
        end = self._file.seek(0, os.SEEK_END)
        try:
            while view:
                view = view[self._file.write(view):]
        except OSError as err:
            with contextlib.suppress(OSError):
                os.ftruncate(self._file.fileno(), end)
            raise disk_error(self.path, err) from None

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
        """The finished rows, one per point (the last if a point repeats); lines of the wrong width skipped."""
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise disk_error(self.path, err, "read") from None
        return list(self._parse(data)[1].values())
