"""Reading whole releases: directories, OTP lib trees, release tarballs and ``.ez`` archives.

:func:`open_release` accepts

- a directory: a flat directory of ``.beam`` files, or any tree containing ``ebin/``
  directories: an OTP lib tree (``lib/APP-VSN/ebin``), a release root (``lib/`` +
  ``releases/VSN/NAME.rel``), a rebar3 or mix ``_build/PROFILE/lib/APP/ebin`` tree;
- a tarball (``.tar``, ``.tar.gz``, ``.tgz``, any compression ``tarfile`` knows), as
  ``systools:make_tar``, relx and ``mix release`` make them;
- an ``.ez`` archive (a zip of ``APP-VSN/ebin/...``), also when nested in a tarball or
  sitting in a release's ``lib/``;
- a single ``.beam`` file.

Nothing is ever extracted to disk.  Archives are streamed once: the members that matter
(``.beam``, ``.app``, ``.appup``, ``.rel``, ``RELEASES``, ``start_erl.data``, ``.ez``,
a release's ``sys.config`` and ``runtime.exs``) are read into memory one by one; of the
files under an application's ``priv/`` only the size and a digest are kept; every other
member is skipped.

Security decisions (archives):

- a member with an absolute path, a ``..`` component, or that is a symbolic link,
  hard link, device or FIFO is *refused*: it is skipped, a :class:`ReleaseWarning`
  (kind ``unsafe_member``) is recorded, and reading goes on;
- sizes are checked from the headers before any data is read: a member larger than
  ``max_member_size`` or archive members adding up to more than ``max_total_size``
  (everything counts, since a stream must be decompressed to be skipped) stop the read
  with :class:`~beaminspect.errors.LimitError`, as does a member count above
  ``max_members``; reads are bounded by the header size, so a lying header cannot
  make a read grow;
- compressed streams are decompressed incrementally (``tarfile`` stream mode).

Which copy wins: when a release root holds several versions of an application
(``lib/foo-1.0`` and ``lib/foo-1.1`` after an upgrade), the version named by the
current ``.rel`` is kept (the current release is ``rel_vsn=`` if given, else
``releases/start_erl.data``, else the ``permanent`` entry of ``releases/RELEASES``, else
the only or highest release version); without a ``.rel`` the highest version is kept.
The other versions are left out with a warning (kind ``superseded_app``).  Two
``.beam`` files with the same module name left after that are recorded in
``Release.duplicates``; ``Release.modules`` keeps the first in sorted path order.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from typing import Callable

from beaminspect.errors import BeamError, FormatError, LimitError, ReadError
from beaminspect.format.reader import read_file
from beaminspect.terms.source import as_text, parse_bytes
from beaminspect.terms import Atom

__all__ = [
    "open_release", "Release", "ModuleSource", "AppInfo", "RelInfo", "ReleaseWarning",
    "Limits", "version_key", "PrivFile", "proplist",
]

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds for reading archives (and files in directories)."""

    max_member_size: int = 256 * MB
    max_total_size: int = 4096 * MB
    max_members: int = 200_000
    max_nesting: int = 1          # archives inside an archive (.ez in a tarball); deeper ones are skipped


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ReleaseWarning:
    """A problem that does not stop the release from being read."""

    kind: str               # unsafe_member, bad_app_file, bad_appup, bad_rel, superseded_app...
    path: str
    message: str
    offset: int | None = None

    def __str__(self) -> str:
        where = self.path if self.offset is None else f"{self.path}: at offset {self.offset}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "offset": self.offset,
                "message": self.message}


@dataclass(frozen=True, eq=False)
class ModuleSource:
    """One ``.beam`` file of a release.  ``name`` is the file stem (the module name
    checked later by the parser); ``path`` is for display (``rel.tar.gz!lib/a-1/ebin/m.beam``);
    ``read()`` returns the bytes (read on demand from a directory, kept in memory for
    archives)."""

    name: str
    app: str | None
    app_vsn: str | None
    path: str
    size: int
    read: Callable[[], bytes] = field(repr=False)
    _digest: list = field(default_factory=list, repr=False, compare=False)

    def content_hash(self) -> bytes:
        """BLAKE2b of the bytes, computed once: equal hashes mean identical files."""
        if not self._digest:
            import hashlib
            self._digest.append(hashlib.blake2b(self.read(), digest_size=32).digest())
        return self._digest[0]


@dataclass(frozen=True)
class AppInfo:
    """An application found in the release.  ``app_file_terms`` is the parsed ``.app``
    file (``None`` when absent or malformed, see ``app_error``); ``appup`` the parsed
    ``.appup`` (a list of terms) with ``appup_error`` set instead when it is malformed;
    ``modules``: the modules found in its ``ebin``; ``declared_modules``: the ``modules``
    key of the ``.app`` file."""

    name: str
    vsn: str | None
    app_file_terms: list | None
    appup: list | None
    appup_path: str | None
    modules: list[str]
    path: str | None = None
    app_file_path: str | None = None
    declared_modules: list[str] | None = None
    app_error: BeamError | None = None
    appup_error: BeamError | None = None
    #: Files under the application's ``priv/``, by path below it.
    priv: dict = field(default_factory=dict)

    def app_property(self, key: str, default=None):
        """A value from the ``.app`` file's property list (``vsn``, ``applications``...)."""
        props = _app_props(self.app_file_terms)
        return props.get(key, default) if props is not None else default


@dataclass(frozen=True, eq=False)
class PrivFile:
    """A file under an application's ``priv/``: its size, and its content's digest on
    demand (kept from the read for archives, whose members are not kept)."""

    path: str
    size: int
    _entry: "_Entry" = field(repr=False)

    def digest(self) -> bytes:
        e = self._entry
        if e.digest is None:
            e.digest = _digest(e.read())
        return e.digest


@dataclass(frozen=True)
class RelInfo:
    """A ``.rel`` file: ``{release, {Name, Vsn}, {erts, ErtsVsn}, [{App, Vsn, ...}]}``."""

    name: str
    vsn: str
    erts_vsn: str | None
    apps: list[tuple[str, str]]
    path: str


@dataclass(frozen=True)
class Release:
    root: str
    modules: dict[str, ModuleSource]
    apps: dict[str, AppInfo]
    warnings: list[ReleaseWarning]
    duplicates: list[tuple[str, list[ModuleSource]]]
    rels: list[RelInfo] = field(default_factory=list)
    current_rel: RelInfo | None = None
    #: The current release's configuration files (``sys.config``, ``runtime.exs``) by
    #: name: ``(display path, read)``.
    configs: dict = field(default_factory=dict)

    def module(self, name: str) -> ModuleSource | None:
        return self.modules.get(name)


# ---------------------------------------------------------------------------
# Helpers


def version_key(vsn: str | None):
    """Sort key for application versions: numeric parts compare as numbers."""
    parts = re.findall(r"\d+|[^\d.\-+]+", vsn or "")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _split_app_dir(dirname: str) -> tuple[str, str | None]:
    """``stdlib-4.2`` -> (``stdlib``, ``4.2``); ``myapp`` -> (``myapp``, None)."""
    m = re.match(r"^(.+?)-(\d[^-]*(?:-[^-]*)*)$", dirname)
    if m:
        return m.group(1), m.group(2)
    return dirname, None


def proplist(v) -> dict | None:
    """A list of ``{Key, Value}`` with atom keys as a dict (the last of a repeated key
    wins; other elements left out), or None when ``v`` is not a list."""
    if not isinstance(v, list):
        return None
    out = {}
    for item in v:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Atom):
            out[str(item[0])] = item[1]
    return out


def _app_props(terms) -> dict | None:
    if not terms or not isinstance(terms[0], tuple) or len(terms[0]) != 3:
        return None
    return proplist(terms[0][2])


class _Entry:
    """A file of interest found in a release, with its bytes or a way to read them."""

    __slots__ = ("relpath", "display", "size", "read", "digest")

    def __init__(self, relpath: str, display: str, size: int, read: Callable[[], bytes],
                 digest: bytes | None = None):
        self.relpath = relpath
        self.display = display
        self.size = size
        self.read = read
        self.digest = digest


def _digest(data: bytes) -> bytes:
    import hashlib
    return hashlib.blake2b(data, digest_size=32).digest()


#: A release's configuration files, read from ``releases/VSN/``.
CONFIG_FILES = ("sys.config", "runtime.exs")
#: A release's boot script, as text or as the binary term systools makes.
BOOT_FILES = ("start.script", "start.boot")


def _priv_split(relpath: str) -> tuple[str, str] | None:
    """``(application directory, path below priv/)`` for a file under an application's
    ``priv/`` (``lib/app-1.0/priv/x.so``, ``app/priv/x``), else None."""
    parts = relpath.split("/")
    for i in range(len(parts) - 1):
        if parts[i] == "priv":
            return "/".join(parts[:i]), "/".join(parts[i + 1:])
    return None


def _interesting(relpath: str) -> bool:
    base = posixpath.basename(relpath)
    if base.endswith((".beam", ".app", ".appup", ".rel", ".ez")):
        return True
    if base in CONFIG_FILES or base in BOOT_FILES:
        return _is_releases_path(relpath)
    return base in ("RELEASES", "start_erl.data") or _priv_split(relpath) is not None


def _archived(relpath: str, display: str, data: bytes) -> "_Entry":
    """An archive member as an entry: its bytes kept, or for a ``priv/`` file (which
    may be large, and is only compared) its digest alone."""
    if _priv_split(relpath) is not None and not relpath.endswith((".beam", ".app", ".appup",
                                                                    ".ez")):
        def gone() -> bytes:
            raise ReadError("the content of priv files in archives is not kept", file=display)
        return _Entry(relpath, display, len(data), gone, _digest(data))
    return _Entry(relpath, display, len(data), _const(data))


def _unsafe_reason(name: str) -> str | None:
    if not name:
        return "empty member name"
    if "\x00" in name:
        return "member name contains NUL"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute member path"
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        return "member path contains '..'"
    return None


def _normalise(name: str) -> str:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


class _Budget:
    """Counts members and bytes of one archive against the limits."""

    def __init__(self, limits: Limits, display: str) -> None:
        self.limits = limits
        self.display = display
        self.members = 0
        self.total = 0

    def charge(self, name: str, size: int) -> None:
        lim = self.limits
        self.members += 1
        if self.members > lim.max_members:
            raise LimitError(f"more than {lim.max_members} archive members",
                             file=self.display)
        if size < 0 or size > lim.max_member_size:
            raise LimitError(f"member {name!r} claims {size} bytes, more than the "
                             f"{lim.max_member_size}-byte member limit", file=self.display)
        self.total += size
        if self.total > lim.max_total_size:
            raise LimitError(f"archive members add up to more than {lim.max_total_size} "
                             f"bytes", file=self.display)


# ---------------------------------------------------------------------------
# Sources: each yields _Entry objects for the files of interest


# tarfile and zipfile are imported when an archive is read: directory trees, the common
# case, do without them.

_TAR_INFO: list = []


def _recording_tar_info():
    """A ``TarInfo`` that remembers why reading headers stopped: in stream mode
    ``tarfile`` ends quietly on a truncated or garbled header after the first member,
    which must not pass for the end of the archive."""
    if not _TAR_INFO:
        import tarfile

        class _RecordingTarInfo(tarfile.TarInfo):
            @classmethod
            def fromtarfile(cls, tf):
                try:
                    return super().fromtarfile(tf)
                except tarfile.HeaderError as exc:
                    tf.stop_reason = exc
                    raise

        _TAR_INFO.append(_RecordingTarInfo)
    return _TAR_INFO[0]


def _iter_tar(fileobj, display: str, limits: Limits, warnings: list, depth: int):
    import tarfile
    import zlib
    budget = _Budget(limits, display)
    try:
        tf = tarfile.open(fileobj=fileobj, mode="r|*",
                          tarinfo=_recording_tar_info())
    except tarfile.ReadError as exc:
        raise FormatError(f"not a readable tar archive ({exc})", file=display) from None
    except (EOFError, OSError, zlib.error) as exc:
        raise FormatError(f"corrupt compressed stream ({exc})", file=display) from None
    with tf:
        try:
            for member in tf:
                name = member.name
                budget.charge(name, member.size)
                reason = _unsafe_reason(name)
                if reason is None and not (member.isreg() or member.isdir()):
                    kind = ("symbolic link" if member.issym() else "hard link" if
                            member.islnk() else "device" if member.ischr() or member.isblk()
                            else "FIFO" if member.isfifo() else "special file")
                    reason = f"{kind} member"
                if reason is not None:
                    warnings.append(ReleaseWarning("unsafe_member", f"{display}!{name}",
                                                   f"refused: {reason}"))
                    continue
                if member.isdir():
                    continue
                relpath = _normalise(name)
                if not _interesting(relpath):
                    continue
                fh = tf.extractfile(member)
                data = fh.read(member.size) if fh is not None else b""
                if len(data) != member.size:
                    raise FormatError(f"member {name!r} is truncated", file=display)
                yield _archived(relpath, f"{display}!{relpath}", data)
            stop = getattr(tf, "stop_reason", None)
            if not isinstance(stop, tarfile.EOFHeaderError):
                what = "truncated" if isinstance(stop, (tarfile.EmptyHeaderError,
                                                        tarfile.TruncatedHeaderError)) \
                    else "corrupt"
                raise FormatError(f"tar archive is {what} (no end-of-archive marker after "
                                  f"byte {tf.offset})", file=display, offset=tf.offset)
        except tarfile.TarError as exc:
            raise FormatError(f"corrupt tar archive ({exc})", file=display) from None
        except (EOFError, OSError, zlib.error) as exc:
            raise FormatError(f"corrupt compressed stream ({exc})", file=display) from None


def _iter_zip(fileobj, display: str, limits: Limits, warnings: list, depth: int):
    import zipfile
    import zlib
    budget = _Budget(limits, display)
    try:
        zf = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FormatError(f"not a readable zip archive ({exc})", file=display) from None
    with zf:
        infos = zf.infolist()
        for info in infos:             # sizes from the central directory, before any read
            budget.charge(info.filename, info.file_size)
        for info in infos:
            name = info.filename
            reason = _unsafe_reason(name)
            mode = info.external_attr >> 16         # Unix mode when made on Unix
            if reason is None and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                reason = "symbolic link member" if stat.S_ISLNK(mode) else "special file member"
            if reason is not None:
                warnings.append(ReleaseWarning("unsafe_member", f"{display}!{name}",
                                               f"refused: {reason}"))
                continue
            if info.is_dir():
                continue
            relpath = _normalise(name)
            if not _interesting(relpath):
                continue
            try:
                with zf.open(info) as fh:
                    data = fh.read(info.file_size + 1)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                    RuntimeError, zlib.error) as exc:
                warnings.append(ReleaseWarning("bad_member", f"{display}!{name}",
                                               f"cannot read: {exc}"))
                continue
            if len(data) != info.file_size:
                raise FormatError(f"member {name!r} does not have its declared size",
                                  file=display)
            yield _archived(relpath, f"{display}!{relpath}", data)


def _const(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _dir_reader(path: str, limits: Limits, file_reader):
    def read() -> bytes:
        if file_reader is not None:
            return file_reader(path)
        try:
            return read_file(path, limits.max_member_size)
        except ReadError as e:
            raise ReadError(f"cannot read: {e.reason}", file=path) from None
    return read


def _iter_dir(root: str, limits: Limits, file_reader):
    """Files of interest under ``root``, depth first in name order, following symbolic
    links to directories; a directory reached twice (a link loop) is read once."""
    seen: set[tuple[int, int]] = set()
    try:
        st = os.stat(root)
    except OSError:
        return
    todo = [(root, "", (st.st_dev, st.st_ino))]
    while todo:
        dirpath, rel, ident = todo.pop()
        if ident in seen:           # a symlink loop, or the same tree reached twice
            continue
        seen.add(ident)
        files, dirs = [], []
        try:
            with os.scandir(dirpath) as it:
                for e in it:
                    try:
                        is_dir = e.is_dir()
                    except OSError:
                        is_dir = False
                    (dirs if is_dir else files).append(e)
        except OSError:
            continue
        files.sort(key=_entry_name)
        for e in files:
            relpath = rel + e.name
            if not _interesting(relpath):
                continue
            try:
                if not e.is_file():
                    continue
                size = e.stat().st_size
            except OSError:
                continue
            yield _Entry(relpath, e.path, size, _dir_reader(e.path, limits, file_reader))
        subdirs = []
        for e in sorted(dirs, key=_entry_name):
            try:
                st = e.stat()
            except OSError:
                continue
            subdirs.append((e.path, rel + e.name + "/", (st.st_dev, st.st_ino)))
        todo.extend(reversed(subdirs))


def _entry_name(e: os.DirEntry) -> str:
    return e.name


# ---------------------------------------------------------------------------
# Collecting


class _Collector:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.warnings: list[ReleaseWarning] = []
        self.beams: list[tuple[str | None, _Entry]] = []     # (app dir key, entry)
        self.app_files: dict[str, _Entry] = {}                # app dir key -> .app
        self.appups: dict[str, _Entry] = {}
        self.rels: list[_Entry] = []
        self.start_erl: _Entry | None = None
        self.releases_file: _Entry | None = None
        self.configs: list[_Entry] = []                       # releases/VSN/sys.config...
        self.boot: list[_Entry] = []                          # releases/VSN/start.script
        self.priv: dict[str, dict[str, _Entry]] = {}          # app dir key -> path -> entry
        self.seen_paths: dict[str, int] = {}

    def add(self, entry: _Entry, depth: int, prefix: str = "") -> None:
        relpath = entry.relpath = prefix + entry.relpath
        base = posixpath.basename(relpath)
        parent = posixpath.dirname(relpath)
        if base.endswith(".ez"):
            if depth + 1 > self.limits.max_nesting:
                self.warnings.append(ReleaseWarning("nested_archive", entry.display,
                                                    "archive nested too deeply; skipped"))
                return
            data = entry.read()
            try:
                for inner in _iter_zip(io.BytesIO(data), entry.display, self.limits,
                                       self.warnings, depth + 1):
                    self.add(inner, depth + 1, prefix=posixpath.dirname(relpath) + "/"
                             if posixpath.dirname(relpath) else "")
            except BeamError as exc:
                self.warnings.append(ReleaseWarning("bad_archive", entry.display,
                                                    exc.reason))
            return
        if relpath in self.seen_paths:
            self.warnings.append(ReleaseWarning(
                "repeated_member", entry.display,
                "the same path appears twice in the archive; the last copy is used"))
            self._forget(relpath)
        self.seen_paths[relpath] = 1
        in_ebin = posixpath.basename(parent) == "ebin"
        app_key = posixpath.dirname(parent) if in_ebin else None
        if base.endswith(".beam"):
            self.beams.append((app_key, entry))
        elif base.endswith(".app") and in_ebin:
            self.app_files[app_key] = entry
        elif base.endswith(".appup") and in_ebin:
            self.appups[app_key] = entry
        elif base.endswith(".rel") and _is_releases_path(relpath):
            self.rels.append(entry)
        elif base == "start_erl.data" and _is_releases_path(relpath):
            self.start_erl = entry
        elif base == "RELEASES" and _is_releases_path(relpath):
            self.releases_file = entry
        elif base in CONFIG_FILES and _is_releases_path(relpath):
            self.configs.append(entry)
        elif base in BOOT_FILES and _is_releases_path(relpath):
            self.boot.append(entry)
        else:
            split = _priv_split(relpath)
            if split is not None:
                self.priv.setdefault(split[0], {})[split[1]] = entry

    def _forget(self, relpath: str) -> None:
        self.beams = [(k, e) for k, e in self.beams if e.relpath != relpath]
        for d in (self.app_files, self.appups):
            for k in [k for k, e in d.items() if e.relpath == relpath]:
                del d[k]
        self.rels = [e for e in self.rels if e.relpath != relpath]
        self.configs = [e for e in self.configs if e.relpath != relpath]
        for files in self.priv.values():
            for k in [k for k, e in files.items() if e.relpath == relpath]:
                del files[k]


def _is_releases_path(relpath: str) -> bool:
    parts = relpath.split("/")
    return "releases" in parts[:-1]


def _parse_terms_entry(entry: _Entry, cache: dict | None = None):
    """The terms of a term file; ``cache`` maps the bytes of files parsed before
    (without error) to their terms, so identical files are parsed once."""
    data = entry.read()
    if cache is None:
        return parse_bytes(data, file=entry.display)
    terms = cache.get(data)
    if terms is None:
        terms = cache[data] = parse_bytes(data, file=entry.display)
    return terms


def _text(term) -> str | None:
    if isinstance(term, Atom):
        return str(term)
    return as_text(term)


def _parse_rel(entry: _Entry, warnings: list) -> RelInfo | None:
    try:
        terms = _parse_terms_entry(entry)
    except BeamError as exc:
        warnings.append(ReleaseWarning("bad_rel", entry.display, exc.reason, exc.offset))
        return None
    t = terms[0] if len(terms) == 1 else None
    if not (isinstance(t, tuple) and len(t) == 4 and t[0] == "release"
            and isinstance(t[1], tuple) and len(t[1]) == 2 and isinstance(t[3], list)):
        warnings.append(ReleaseWarning("bad_rel", entry.display,
                                       "not {release, {Name, Vsn}, {erts, Vsn}, Apps}"))
        return None
    name, vsn = _text(t[1][0]), _text(t[1][1])
    erts = _text(t[2][1]) if isinstance(t[2], tuple) and len(t[2]) == 2 else None
    apps = []
    for a in t[3]:
        if isinstance(a, tuple) and len(a) >= 2 and isinstance(a[0], Atom) \
                and _text(a[1]) is not None:
            apps.append((str(a[0]), _text(a[1])))
        else:
            warnings.append(ReleaseWarning("bad_rel", entry.display,
                                           f"malformed application entry {a!r}"))
    if name is None or vsn is None:
        warnings.append(ReleaseWarning("bad_rel", entry.display, "release name or vsn "
                                       "is not a string"))
        return None
    return RelInfo(name, vsn, erts, apps, entry.display)


def _choose_rel(c: _Collector, rels: list[RelInfo], rel_vsn: str | None) -> RelInfo | None:
    if not rels:
        return None
    wanted = rel_vsn
    if wanted is None and c.start_erl is not None:
        words = c.start_erl.read()[:4096].decode("utf-8", "replace").split()
        if len(words) >= 2:
            wanted = words[1]
    if wanted is None and c.releases_file is not None:
        try:
            terms = _parse_terms_entry(c.releases_file)
        except BeamError as exc:
            c.warnings.append(ReleaseWarning("bad_releases_file", c.releases_file.display,
                                             exc.reason, exc.offset))
            terms = []
        entries = terms[0] if terms and isinstance(terms[0], list) else []
        for status in ("permanent", "current"):
            for e in entries:
                if isinstance(e, tuple) and len(e) == 6 and e[5] == status:
                    wanted = _text(e[2])
                    break
            if wanted is not None:
                break
    vsns = sorted({r.vsn for r in rels}, key=version_key)
    if wanted is None:
        wanted = vsns[-1]
        if len(vsns) > 1:
            c.warnings.append(ReleaseWarning(
                "release_choice", rels[0].path,
                f"several release versions ({', '.join(vsns)}); using the highest, {wanted}"))
    candidates = [r for r in rels if r.vsn == wanted]
    if not candidates:
        c.warnings.append(ReleaseWarning("release_choice", rels[0].path,
                                         f"no .rel file for release version {wanted}"))
        return None
    # mix releases carry start_clean.rel beside the real one: prefer the fullest.
    return max(candidates, key=lambda r: (r.name not in ("start_clean", "no_dot_erlang"),
                                          len(r.apps)))


def _build(c: _Collector, root: str, rel_vsn: str | None,
           terms_cache: dict | None = None) -> Release:
    warnings = c.warnings
    rels = [r for r in (_parse_rel(e, warnings) for e in c.rels) if r is not None]
    current = _choose_rel(c, rels, rel_vsn)
    rel_apps = dict(current.apps) if current else {}

    # Application directories: name/vsn from the .app file, else from the directory name.
    keys = sorted({k for k, _ in c.beams if k is not None} | set(c.app_files) | set(c.appups))
    displays: dict[str, str] = {}
    for key, entry in list(c.app_files.items()) + list(c.appups.items()) + [
            (k, e) for k, e in c.beams if k is not None]:
        displays.setdefault(key, entry.display.rsplit("/ebin/", 1)[0])
    infos: dict[str, dict] = {}
    for key in keys:
        dir_name, dir_vsn = _split_app_dir(posixpath.basename(key)
                                           or os.path.basename(os.path.abspath(root)))
        entry = c.app_files.get(key)
        terms = props = None
        app_error = None
        name, vsn = dir_name, dir_vsn
        if entry is not None:
            try:
                terms = _parse_terms_entry(entry, terms_cache)
                props = _app_props(terms)
                if props is None:
                    raise FormatError("not {application, Name, [Properties]}",
                                      file=entry.display)
            except BeamError as exc:
                app_error = exc
                terms = None
                warnings.append(ReleaseWarning("bad_app_file", entry.display, exc.reason,
                                               exc.offset))
            if props is not None:
                name = str(terms[0][1]) if isinstance(terms[0][1], Atom) else name
                file_vsn = _text(props.get("vsn"))
                if file_vsn is not None:
                    if dir_vsn is not None and file_vsn != dir_vsn:
                        warnings.append(ReleaseWarning(
                            "vsn_mismatch", entry.display,
                            f"vsn {file_vsn!r} differs from the directory's {dir_vsn!r}"))
                    vsn = file_vsn
        infos[key] = dict(name=name, vsn=vsn, terms=terms, props=props, app_error=app_error,
                          app_entry=entry)

    # One directory per application name.
    by_name: dict[str, list[str]] = {}
    for key, info in infos.items():
        by_name.setdefault(info["name"], []).append(key)
    chosen: dict[str, str] = {}
    for name, ks in by_name.items():
        if len(ks) == 1:
            chosen[name] = ks[0]
            continue
        want = rel_apps.get(name)
        pick = [k for k in ks if infos[k]["vsn"] == want] if want else []
        if pick:
            keep, why = pick[0], f"release {current.name} {current.vsn} uses {name} {want}"
        else:
            keep = max(ks, key=lambda k: version_key(infos[k]["vsn"]))
            why = f"keeping the highest version, {infos[keep]['vsn']}"
        chosen[name] = keep
        for k in ks:
            if k != keep:
                warnings.append(ReleaseWarning(
                    "superseded_app", displays[k], f"{name} {infos[k]['vsn']} left out: {why}"))

    kept_keys = set(chosen.values())
    modules: dict[str, ModuleSource] = {}
    found: dict[str, list[ModuleSource]] = {}
    per_app: dict[str, list[str]] = {}
    boot_path = _boot_path(c, current, warnings)
    rank: dict[str, int] = {d: i for i, d in enumerate(boot_path or ())}
    # Directories of the release's own that the boot path names (mix's consolidated
    # protocols): a copy there replaces the others by design.
    overrides = {d for d in rank if "releases" in d.split("/")}
    chosen_dir: dict[str, str] = {}
    for key, entry in sorted(c.beams, key=lambda ke: ke[1].relpath):
        if key is not None and key not in kept_keys:
            continue
        where = posixpath.dirname(entry.relpath)
        if boot_path is not None and where not in rank and _is_releases_path(entry.relpath):
            continue        # another release version's directory (its consolidated protocols)
        info = infos.get(key) if key is not None else None
        mod = posixpath.basename(entry.relpath)[:-len(".beam")]
        src = ModuleSource(mod, info["name"] if info else None, info["vsn"] if info else None,
                           entry.display, entry.size, entry.read)
        found.setdefault(mod, []).append(src)
        # The copy the code server loads: the first on the boot script's code path.
        if mod not in modules or rank.get(where, len(rank)) < rank.get(chosen_dir[mod],
                                                                      len(rank)):
            modules[mod] = src
            chosen_dir[mod] = where
        if info:
            per_app.setdefault(info["name"], []).append(mod)
    duplicates = [(m, srcs) for m, srcs in sorted(found.items())
                  if len(srcs) > 1 and chosen_dir[m] not in overrides]
    for m, srcs in duplicates:
        warnings.append(ReleaseWarning(
            "duplicate_module", srcs[0].path,
            f"module {m} also in {', '.join(s.path for s in srcs[1:])}; using the first"))

    apps: dict[str, AppInfo] = {}
    for name, key in sorted(chosen.items()):
        info = infos[key]
        appup_entry = c.appups.get(key)
        appup = appup_error = None
        if appup_entry is not None:
            try:
                appup = _parse_terms_entry(appup_entry, terms_cache)
            except BeamError as exc:
                appup_error = exc
                warnings.append(ReleaseWarning("bad_appup", appup_entry.display, exc.reason,
                                               exc.offset))
        declared = None
        if info["props"] is not None and isinstance(info["props"].get("modules"), list):
            declared = [str(m) for m in info["props"]["modules"] if isinstance(m, Atom)]
        apps[name] = AppInfo(
            name=name, vsn=info["vsn"], app_file_terms=info["terms"], appup=appup,
            appup_path=appup_entry.display if appup_entry else None,
            modules=sorted(per_app.get(name, [])), path=displays[key],
            app_file_path=info["app_entry"].display if info["app_entry"] else None,
            declared_modules=declared, app_error=info["app_error"], appup_error=appup_error,
            priv={sub: PrivFile(e.display, e.size, e)
                  for sub, e in sorted(c.priv.get(key, {}).items())})
    return Release(root=root, modules=modules, apps=apps, warnings=warnings,
                   duplicates=duplicates, rels=rels, current_rel=current,
                   configs=_current_configs(c, current))


def _boot_path(c: _Collector, current: RelInfo | None, warnings: list) -> list[str] | None:
    """The code path of the current release's boot script (``releases/VSN/start.script``
    or ``start.boot``), as directories relative to the release root, in order; None
    without one."""
    by_vsn: dict[str, _Entry] = {}
    for e in c.boot:
        parts = e.relpath.split("/")
        if e.relpath.endswith(".script") or parts[-2] not in by_vsn:
            by_vsn[parts[-2]] = e
    entry = by_vsn.get(current.vsn) if current is not None else (
        next(iter(by_vsn.values())) if len(by_vsn) == 1 else None)
    if entry is None:
        return None
    prefix = posixpath.dirname(posixpath.dirname(posixpath.dirname(entry.relpath)))
    try:
        data = entry.read()
        if entry.relpath.endswith(".boot"):
            from beaminspect.terms.etf import decode
            script = decode(data, file=entry.display)
        else:
            terms = parse_bytes(data, file=entry.display)
            script = terms[0] if len(terms) == 1 else None
    except BeamError as exc:
        warnings.append(ReleaseWarning("bad_boot_script", entry.display, exc.reason,
                                       exc.offset))
        return None
    if not (isinstance(script, tuple) and len(script) == 3 and isinstance(script[2], list)):
        warnings.append(ReleaseWarning("bad_boot_script", entry.display,
                                       "not {script, {Name, Vsn}, Instructions}"))
        return None
    out: list[str] = []
    for ins in script[2]:
        if isinstance(ins, tuple) and len(ins) == 2 and ins[0] == Atom("path") \
                and isinstance(ins[1], list):
            for d in ins[1]:
                text = as_text(d)
                if text is None:
                    continue
                text = text.replace("$RELEASE_LIB", "lib").replace("$ROOT/", "")
                rel = posixpath.normpath(text)
                if prefix:
                    rel = posixpath.join(prefix, rel)
                if rel not in out:
                    out.append(rel)
    return out


def _current_configs(c: _Collector, current: RelInfo | None) -> dict:
    """The configuration files of the current release version (``releases/VSN/``), or
    of the only version there is."""
    by_vsn: dict[str, dict] = {}
    for e in c.configs:
        parts = e.relpath.split("/")
        by_vsn.setdefault(parts[-2], {})[parts[-1]] = (e.display, e.read)
    if current is not None and current.vsn in by_vsn:
        return by_vsn[current.vsn]
    return next(iter(by_vsn.values())) if len(by_vsn) == 1 else {}


def _has_app_file(directory: str) -> bool:
    try:
        with os.scandir(directory) as it:
            return any(e.name.endswith(".app") and e.is_file() for e in it)
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Entry point


def open_release(path, *, file_reader: Callable[[str], bytes] | None = None,
                 limits: Limits = DEFAULT_LIMITS, rel_vsn: str | None = None,
                 terms_cache: dict | None = None) -> Release:
    """Read a release (directory, tarball, ``.ez`` or single ``.beam``) without
    extracting anything.  ``file_reader(path) -> bytes`` replaces plain file reads for
    directory trees (reads happen when ``ModuleSource.read()`` is called).
    ``terms_cache``: a dict shared by several calls (two releases being compared) so
    that ``.app`` and ``.appup`` files with the same bytes are parsed once; the
    releases then share those terms, which must be treated as read-only.

    Raises :class:`BeamError` subclasses: ``LimitError`` for archives over the limits,
    ``FormatError`` for unreadable archives, ``BeamError`` when ``path`` does not exist.
    """
    root = os.fspath(path)
    c = _Collector(limits)
    if os.path.isdir(root):
        # An application's bare ebin (with its .app file) is that application: its
        # files are taken as APP/ebin/..., APP being the directory above it.
        prefix = ""
        here = os.path.abspath(root)
        if os.path.basename(here) == "ebin" and _has_app_file(here):
            prefix = (os.path.basename(os.path.dirname(here)) or "app") + "/ebin/"
        for entry in _iter_dir(root, limits, file_reader):
            c.add(entry, 0, prefix=prefix)
        return _build(c, root, rel_vsn, terms_cache)
    if not os.path.isfile(root):
        raise ReadError("no such file or directory", file=root)
    if root.endswith(".beam"):
        size = os.path.getsize(root)
        c.add(_Entry(os.path.basename(root), root, size,
                     _dir_reader(root, limits, file_reader)), 0)
        return _build(c, root, rel_vsn, terms_cache)
    try:
        with open(root, "rb") as fh:
            magic = fh.read(4)
            fh.seek(0)
            if magic == b"PK\x03\x04" or magic == b"PK\x05\x06":
                entries = _iter_zip(fh, root, limits, c.warnings, 1)
            else:
                entries = _iter_tar(fh, root, limits, c.warnings, 0)
            for entry in entries:
                c.add(entry, 0)
    except OSError as exc:
        raise ReadError(f"cannot read: {exc.strerror or exc}", file=root) from None
    return _build(c, root, rel_vsn, terms_cache)
