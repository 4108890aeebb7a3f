"""A folder that hwsim owns: built beside its target, moved into place with two renames, and
replaced only when it holds exactly what hwsim wrote there.

`OUT/.hwsim-report.json` (the marker) lists every file hwsim wrote with its size and SHA-256.
hwsim replaces OUT only if it is absent, an empty folder, or a real folder (not a symbolic link)
holding that marker and nothing but the listed files, unchanged. Anything else in the way (a
file of the user's, an edited report, a symbolic link, a folder of someone else's) is refused
with one line naming it; hwsim deletes only the files its marker lists, never a whole tree.

The new folder is built in `.OUT.tmp-PID-*`; the old one is renamed to `.OUT.hwsim-old`, the new
one renamed to OUT, then the old one removed. A process killed between the two renames leaves no
OUT but the old report in `.OUT.hwsim-old`: the next run (or `check_output`) renames it back, or
removes it if OUT already holds a complete report, and removes the build folders of dead runs."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from quant.errors import ConfigError

MARKER = ".hwsim-report.json"
FORMAT = "hwsim-report"
VERSION = 1
_PART = MARKER + ".part"  # the final marker is written here, then renamed over the placeholder


@dataclass(frozen=True)
class Target:
    """Where a folder goes: `out` as the user gave it (for messages), `path` absolute with its
    parent resolved and its last component kept as given (so a symbolic link is seen, not followed)."""
    out: Path
    path: Path

    @property
    def parent(self) -> Path:
        return self.path.parent

    @property
    def old(self) -> Path:
        return self.parent / f".{self.path.name}.hwsim-old"

    @property
    def tmp_prefix(self) -> str:
        return f".{self.path.name}.tmp-{os.getpid()}-"

    def error(self, what: str) -> ConfigError:
        return ConfigError(f"--out {self.out}: {what}")


def target(out: Path) -> Target:
    """`out` made absolute; refuses the root, the home folder, and the current folder or any
    folder holding it."""
    t = Target(Path(out), Path(out))
    try:
        given = Path(out).absolute()  # ".." left to the file system, as the shell would
        path = given.resolve() if given.name in ("", "..") else given.parent.resolve() / given.name
        here, home = Path.cwd().resolve(), Path.home().resolve()
    except (OSError, RuntimeError) as err:
        raise t.error(f"cannot write there ({getattr(err, 'strerror', None) or err})") from None
    if path.parent == path:
        raise t.error("is the root folder; choose a folder of its own for the report")
    if path == home:
        raise t.error("is your home folder; choose a folder of its own for the report")
    if path == here or path in here.parents:
        raise t.error("is the current folder or holds it; choose a folder of its own for the report")
    return Target(Path(out), path)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _safe_rel(rel: object) -> bool:
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and str(p) == rel and ".." not in p.parts and rel not in (MARKER, _PART)


def _dirs_of(files: Iterable[str]) -> set[str]:
    return {str(parent) for rel in files for parent in PurePosixPath(rel).parents if str(parent) != "."}


def read_marker(folder: Path) -> dict | None:
    """The marker's document if `folder` holds a well-formed one (a regular file, not a link)."""
    path = folder / MARKER
    try:
        st = _lstat(path)
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("format") == FORMAT and isinstance(doc.get("files"), dict)
            and all(_safe_rel(rel) for rel in doc["files"])):
        return None
    return doc


def _walk(folder: Path, below: PurePosixPath | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """Everything under `folder` (relative POSIX path, lstat), sorted, never following a link."""
    below = below or PurePosixPath()
    with os.scandir(folder / below) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = below / entry.name
        st = entry.stat(follow_symlinks=False)
        yield str(rel), st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(folder, rel)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def in_the_way(folder: Path) -> str | None:
    """None if hwsim may replace `folder` (absent, empty, or exactly what hwsim wrote there);
    else what is in the way, in words."""
    st = _lstat(folder)
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link; give the real folder"
    if not stat.S_ISDIR(st.st_mode):
        return "is a file, not a folder"
    entries = list(_walk(folder))
    if not entries:
        return None
    doc = read_marker(folder)
    if doc is None or doc.get("complete") is not True:
        return f"folder exists and is not an hwsim report (no valid {MARKER} listing what hwsim wrote)"
    files, dirs = doc["files"], _dirs_of(doc["files"])
    for rel, st in entries:
        mode = st.st_mode
        if rel == MARKER or (stat.S_ISDIR(mode) and rel in dirs):
            continue
        if stat.S_ISLNK(mode):
            return f"holds {rel}, a symbolic link hwsim did not write"
        if not (stat.S_ISREG(mode) and rel in files):
            return f"holds {rel}, which hwsim did not write"
        entry = files[rel] if isinstance(files[rel], dict) else {}
        try:
            changed = st.st_size != entry.get("bytes") or _sha256(folder / rel) != entry.get("sha256")
        except OSError as err:
            return f"holds {rel}, which hwsim cannot read ({err.strerror or err})"
        if changed:
            return f"holds {rel}, changed since hwsim wrote it"
    return None


def remove_listed(folder: Path, files: Iterable[str]) -> bool:
    """Delete the listed regular files, the marker and the emptied folders of `folder`; anything
    else stays. True if `folder` is gone."""
    files = [rel for rel in files if _safe_rel(rel)]
    for rel in [*files, _PART, MARKER]:
        path = folder / rel
        st = _lstat(path)
        if st is not None and stat.S_ISREG(st.st_mode):
            path.unlink()
    for rel in sorted(_dirs_of(files), key=lambda d: d.count("/"), reverse=True):
        _rmdir_if_empty(folder / rel)
    return _rmdir_if_empty(folder)


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return not any(True for _ in it)


def _rmdir_if_empty(path: Path) -> bool:
    st = _lstat(path)
    if st is None:
        return True
    if not stat.S_ISDIR(st.st_mode):
        return False
    try:
        path.rmdir()
    except OSError as err:
        if err.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialize recovery and the swap between hwsim processes writing beside each other."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: run unserialized
        yield
    finally:
        os.close(fd)


def _writer_alive(name: str, prefix: str) -> bool:
    m = re.fullmatch(r"(\d+)-[A-Za-z0-9_]+", name[len(prefix):])
    if m is None:
        return True  # not one of our names: leave it alone
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _recover(t: Target) -> None:
    """Undo what a killed run left beside `t.path` (call with the parent locked)."""
    st = _lstat(t.old)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise t.error(f"{t.old} is in the way (hwsim keeps the previous report there while replacing it); "
                          "remove it")
        if _lstat(t.path) is None:
            os.rename(t.old, t.path)  # killed between the two renames: the previous report goes back
        else:
            if in_the_way(t.old) is not None:
                raise t.error(f"{t.old} is left from an interrupted run and holds files hwsim did not write; "
                              "move what you need out of it and delete it")
            if read_marker(t.path) is None or in_the_way(t.path) is not None:
                raise t.error(f"both it and the previous report {t.old} exist; move one of them away")
            remove_listed(t.old, (read_marker(t.old) or {"files": {}})["files"])  # may be empty
    prefix = f".{t.path.name}.tmp-"
    with os.scandir(t.parent) as it:
        stale = [Path(e.path) for e in it if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)
                 and not _writer_alive(e.name, prefix)]
    for tmp in stale:
        doc = read_marker(tmp)
        if doc is not None:
            remove_listed(tmp, doc["files"])
        else:
            _rmdir_if_empty(tmp)  # a probe, or a build killed before its marker: only if empty


def _not_a_folder(path: Path) -> Path | None:
    """The first of `path` and its parents that exists and is not a folder."""
    for p in [*reversed(path.parents), path]:
        try:
            if not stat.S_ISDIR(os.stat(p).st_mode):
                return p
        except OSError:
            return None
    return None


def check_output(out: Path) -> Target:
    """Fail before any work if `out` cannot become an hwsim folder; put back what a killed run left."""
    t = target(out)
    try:
        t.parent.mkdir(parents=True, exist_ok=True)
        with _locked(t.parent):
            _recover(t)
            problem = in_the_way(t.path)
        if problem is None:
            Path(tempfile.mkdtemp(prefix=t.tmp_prefix, dir=t.parent)).rmdir()
    except OSError as err:
        blocking = _not_a_folder(t.parent)
        why = f"{blocking} is a file, not a folder" if blocking else err.strerror or err
        raise t.error(f"cannot write there ({why})") from None
    if problem is not None:
        raise t.error(f"{problem}; refusing to replace it: move it away or choose another --out")
    return t


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _marker(files: dict, complete: bool) -> bytes:
    doc = {"format": FORMAT, "version": VERSION, "complete": complete, "files": files}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _not_written(t: Target, err: OSError) -> ConfigError:
    kept = "the previous report is unchanged" if _lstat(t.path) is not None else "nothing was written"
    return t.error(f"could not write the report ({err.strerror or err}); {kept}")


def _build(t: Target, files: dict[str, bytes]) -> Path:
    """Write `files` and the marker into a new build folder beside `t.path`."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=t.tmp_prefix, dir=t.parent))
    except OSError as err:
        raise _not_written(t, err) from None
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report folder is for sharing
        _write_file(tmp / MARKER, _marker(dict.fromkeys(files), complete=False))  # ours, should we be killed
        listed = {}
        for rel, data in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            _write_file(tmp / rel, data)
            listed[rel] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        _write_file(tmp / _PART, _marker(listed, complete=True))
        os.rename(tmp / _PART, tmp / MARKER)
        for folder in [tmp, *(tmp / d for d in _dirs_of(files))]:
            _fsync_dir(folder)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)  # our own, just made: nobody else's files are in it
        if isinstance(err, OSError):
            raise _not_written(t, err) from None
        raise
    return tmp


def _swap(t: Target, tmp: Path) -> None:
    """Move `tmp` to `t.path`, the previous folder (if any) out of the way first (parent locked)."""
    if _lstat(t.path) is None or _is_empty(t.path):
        os.rename(tmp, t.path)  # nothing there, or an empty folder, which rename replaces
        return
    previous = read_marker(t.path)["files"]
    os.rename(t.path, t.old)
    try:
        os.rename(tmp, t.path)
    except BaseException:
        os.rename(t.old, t.path)
        raise
    try:
        _fsync_dir(t.parent)
        if not remove_listed(t.old, previous):
            warnings.warn(f"{t.old}: the previous report could not be removed whole; delete it", stacklevel=3)
    except OSError as err:
        warnings.warn(f"{t.old}: the previous report could not be removed ({err.strerror or err}); "
                      "the next run removes it", stacklevel=3)


def publish(files: dict[str, bytes], out: Path) -> list[Path]:
    """Write `files` (relative POSIX path -> bytes) as the folder `out`, replacing the hwsim folder
    there whole or not at all. Returns the paths written, the marker included."""
    bad = [rel for rel in files if not _safe_rel(rel)]
    if bad:
        raise ValueError(f"not a relative path inside the folder: {bad[0]!r}")
    t = check_output(out)
    tmp = _build(t, files)
    try:
        with _locked(t.parent):
            _recover(t)
            problem = in_the_way(t.path)
            if problem is not None:
                raise t.error(f"{problem}; refusing to replace it: move it away or choose another --out")
            _swap(t, tmp)
    except OSError as err:
        where = (f"the previous report is in {t.old}: the next run puts it back"
                 if _lstat(t.old) is not None and _lstat(t.path) is None else "the previous report is unchanged")
        raise t.error(f"could not move the new report into place ({err.strerror or err}); {where}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # still there if it did not move in; ours alone
    return sorted(t.out / rel for rel in [*files, MARKER])
