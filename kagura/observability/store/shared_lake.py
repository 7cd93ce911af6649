"""A lake many hosts share: a folder or an S3 prefix, one sub-prefix per host.

Each host compacts into `host=<id>/` of the shared lake (`executions/date=.../`,
`events/date=.../`, the same layout as a local lake) and publishes its manifest
there as a new object per change (`host=<id>/_manifest/m-<seq>.json`). Readers
take each host's newest manifest, so hosts never coordinate and a reader never
sees half a compaction. Object storage goes through pyarrow's S3 filesystem:
credentials come from the standard AWS variables and files (and AWS_ENDPOINT_URL
for S3-compatible servers); kagura never stores or writes them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa

from kagura.observability.errors import StoreError

LAKE_ENV = "KAGURA_LAKE"  # the shared lake: s3://bucket/prefix or a folder
HOST_ENV = "KAGURA_HOST_ID"  # this host's name in the lake (default: the hostname)
HOSTS_ENV = "KAGURA_LAKE_HOSTS"  # readers: only these hosts (comma-separated)
MANIFESTS = "_manifest"
SHARED_PREFIX = "host="  # a segment path that starts so lives in the shared lake
KEEP_MANIFESTS = 3  # a host's newest manifests kept; older ones go after GRACE
GRACE = 60.0  # seconds an unlisted object stays, for readers of an older manifest
REFRESH = 2.0  # seconds a reader keeps the fleet's manifests before looking again
TABLE_CACHE_BYTES = 256 << 20  # rollups a reader keeps in memory, at most
FRAGMENTS_KEPT = 4096  # lake files whose Parquet footer a reader keeps, at most
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_MANIFEST_NAME = re.compile(r"m-(\d{12})\.json")


def lake_url(value: Any = None) -> str | None:
    """The shared lake asked for: `value`, else KAGURA_LAKE, else None (the store's own lake)."""
    if value is None:
        value = os.environ.get(LAKE_ENV) or None
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise StoreError(
            f"the shared lake is empty; give s3://bucket/prefix or a folder ({LAKE_ENV})"
        )
    return text


def check_host_id(value: str) -> str:
    """`value` when it is a valid host id (letters, digits, '.', '_', '-'; at most 63); StoreError otherwise."""
    if not isinstance(value, str) or not _HOST_ID.fullmatch(value):
        raise StoreError(
            f"bad host id {value!r}: use 1-63 letters, digits, '.', '_' or '-' "
            f"(set {HOST_ENV} to a name of that form)"
        )
    return value


def host_id() -> str:
    """This host's id: KAGURA_HOST_ID, else the hostname made safe (stable per host)."""
    given = os.environ.get(HOST_ENV)
    if given is not None:
        return check_host_id(given.strip())
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip(".-_")[:63]
    return name or "host"


def host_filter(value: Any = None) -> frozenset[str] | None:
    """Hosts a reader keeps: `value` (a name, comma-separated names or a list), else KAGURA_LAKE_HOSTS; None: all."""
    if value is None:
        value = os.environ.get(HOSTS_ENV) or None
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(check_host_id(str(n).strip()) for n in names if str(n).strip())


def is_shared(rel: str) -> bool:
    """Whether a segment path names a file of the shared lake (else the store's own lake)."""
    return rel.startswith(SHARED_PREFIX)


def host_of(rel: str) -> str:
    """The host id in a shared segment path `host=<id>/...`."""
    return rel[len(SHARED_PREFIX) :].split("/", 1)[0]


@dataclass(frozen=True)
class ManifestEntry:
    """One host's newest manifest as a reader found it."""

    host: str
    seq: int
    segments: tuple[dict[str, Any], ...]
    store: str | None = None  # which store wrote it: one store per host id


class SharedLake:
    """One shared lake: where it is, this host's prefix in it, and its manifests."""

    def __init__(self, url: str, host: str | None = None, store: str | None = None):
        self.url = url
        self.host = check_host_id(host) if host is not None else host_id()
        # The writing store (hostname and database path): two stores must not share a host id.
        self.store = store
        self.fs, self.root = _filesystem(url)
        self.local = self.root.startswith("/")
        self._fleet: tuple[float, dict[str, ManifestEntry]] | None = None
        self._sizes: dict[str, int] = {}  # lake files never change: their sizes are kept
        self._tables: OrderedDict[str, pa.Table] = OrderedDict()  # small files kept whole
        self._fragments: OrderedDict[str, Any] = OrderedDict()  # files with their footers
        self._format: Any = None
        self._table_bytes = 0
        self._fleet_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SharedLake({self.url!r}, host={self.host!r})"

    @property
    def prefix(self) -> str:
        """This host's prefix in the lake: `host=<id>`."""
        return f"{SHARED_PREFIX}{self.host}"

    def full(self, rel: str) -> str:
        """The filesystem path of lake-relative `rel`."""
        return f"{self.root}/{rel}"

    def shown(self, rel: str) -> str:
        """`rel` as the user knows the lake: its URL and the path."""
        return f"{self.url.rstrip('/')}/{rel}"

    # --- files --------------------------------------------------------------------

    def write_file(self, rel: str, write: Callable[[Any], None]) -> int:
        """Write one object with `write(stream)`; return its size. Complete or absent, never half.

        S3 makes an object visible only once its upload completes; in a folder
        the file is written under a temporary name, fsynced and renamed.
        """
        path = self.full(rel)
        try:
            if self.local:
                return _write_local(path, write)
            with self.fs.open_output_stream(path) as stream:
                write(stream)
                return stream.tell()
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot write {self.shown(rel)}: {_first_line(exc)}") from exc

    def read_parquet(
        self, rel: str, schema: pa.Schema | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        """One Parquet file of the lake as a table."""
        import pyarrow.parquet as pq

        try:
            return pq.read_table(self.full(rel), schema=schema, columns=columns, filesystem=self.fs)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot read {self.shown(rel)}: {_first_line(exc)}") from exc

    def remove(self, rels: Iterable[str]) -> None:
        """Delete lake objects (missing ones are fine)."""
        for rel in rels:
            try:
                self.fs.delete_file(self.full(rel))
            except FileNotFoundError:
                pass
            except OSError as exc:
                if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
                    raise StoreError(
                        f"cannot delete {self.shown(rel)}: {_first_line(exc)}"
                    ) from exc

    def engine_path(self, rel: str) -> str:
        """`rel` as another engine names it: a local path, or `s3a://bucket/...` (Spark's hadoop-aws)."""
        return self.full(rel) if self.local else f"s3a://{self.full(rel)}"

    def dataset(self, rels: list[str], schema: pa.Schema):
        """An Arrow dataset over lake files (DuckDB scans it with filter pushdown; no listing).

        Lake files never change once written, so what a scan learns of a file is
        kept: its size (asked once, so a scan sends no HEAD) and its Parquet footer
        (kept with the file's fragment, so a later query sends no footer GET). The
        column chunks a query needs are fetched in as few ranged GETs as their gaps
        allow: 1 request per file and query once the footer is known (measured:
        5-6 with pyarrow's defaults).
        """
        import pyarrow.dataset as ds

        if self._format is None:
            self._format = ds.ParquetFileFormat(
                default_fragment_scan_options=ds.ParquetFragmentScanOptions(
                    pre_buffer=True,
                    cache_options=pa.CacheOptions(
                        hole_size_limit=1 << 20, range_size_limit=64 << 20, lazy=False
                    ),
                )
            )
        fmt = self._format
        with self._fleet_lock:
            kept = {r: self._fragments[r] for r in rels if r in self._fragments}
            for rel in kept:
                self._fragments.move_to_end(rel)  # the least recently used go first
        missing = [r for r in rels if r not in kept]
        if missing:
            sizes = self._sizes_of(missing)
            made = {
                r: fmt.make_fragment(self.full(r), filesystem=self.fs, file_size=sizes[r])
                for r in missing
            }
            # Each footer read now (together) and kept with its fragment: DuckDB's scans of
            # a dataset read it again on every query otherwise.
            _each(lambda f: f.ensure_complete_metadata(), list(made.values()))
            kept.update(made)
            with self._fleet_lock:
                for rel, fragment in made.items():
                    self._fragments.setdefault(rel, fragment)
                while len(self._fragments) > FRAGMENTS_KEPT:
                    self._fragments.popitem(last=False)
        fragments = [kept[r] for r in rels]
        return ds.FileSystemDataset(fragments, schema=schema, format=fmt, filesystem=self.fs)

    def tables(self, rels: list[str], schema: pa.Schema) -> pa.Table:
        """Small lake files (rollups) read whole into one table of `schema`, kept in memory.

        Each file costs two GETs the first time (its footer, then its columns in one
        range; its size is asked once per lake file, as for every lake file) and none
        after: lake files never change once written. Columns a file lacks (written
        before they were added) read as NULL. At most TABLE_CACHE_BYTES are kept,
        the least recently used going first.
        """
        with self._fleet_lock:
            found = {r: self._tables[r] for r in rels if r in self._tables}
        missing = [r for r in dict.fromkeys(rels) if r not in found]
        if missing:
            self._sizes_of(missing)  # asked together, before the reads
            read = _each(lambda r: self._read_whole(r, schema), missing)
            found.update(zip(missing, read, strict=True))
        with self._fleet_lock:
            for rel in rels:
                if rel in self._tables:
                    self._tables.move_to_end(rel)
                else:
                    self._tables[rel] = found[rel]
                    self._table_bytes += found[rel].nbytes
            while self._table_bytes > TABLE_CACHE_BYTES and len(self._tables) > 1:
                _, dropped = self._tables.popitem(last=False)
                self._table_bytes -= dropped.nbytes
        return pa.concat_tables([found[r] for r in rels]) if rels else schema.empty_table()

    def _read_whole(self, rel: str, schema: pa.Schema) -> pa.Table:
        """One lake file as a table of `schema` (missing columns NULL): its footer, then its data."""
        try:
            return self.dataset([rel], schema).to_table()
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot read {self.shown(rel)}: {_first_line(exc)}") from exc

    def _sizes_of(self, rels: list[str]) -> dict[str, int]:
        """Byte sizes of lake files, asked once each (in one call) and kept."""
        with self._fleet_lock:
            missing = [r for r in rels if r not in self._sizes]
        if missing:
            try:
                infos = self.fs.get_file_info([self.full(r) for r in missing])
            except (OSError, pa.ArrowException) as exc:
                raise StoreError(
                    f"cannot read {self.shown(missing[0])}: {_first_line(exc)}"
                ) from exc
            for rel, info in zip(missing, infos, strict=True):
                if info.size is None:
                    raise StoreError(
                        f"lake file {self.shown(rel)} is missing; its host lists it "
                        "(was it deleted by hand?)"
                    )
            with self._fleet_lock:
                for rel, info in zip(missing, infos, strict=True):
                    self._sizes[rel] = info.size
        with self._fleet_lock:
            return {r: self._sizes[r] for r in rels}

    # --- manifests ------------------------------------------------------------------

    def _manifests(self, host: str) -> list[tuple[int, str, float]]:
        """A host's manifests: (seq, lake-relative path, mtime), oldest first."""
        import pyarrow.fs as pafs

        base = f"{SHARED_PREFIX}{host}/{MANIFESTS}"
        selector = pafs.FileSelector(self.full(base), allow_not_found=True)
        found = []
        for info in self._list(selector, base):
            match = _MANIFEST_NAME.fullmatch(info.base_name)
            if match and info.type == pafs.FileType.File:
                mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
                found.append((int(match.group(1)), f"{base}/{info.base_name}", mtime))
        return sorted(found)

    def _list(self, selector, rel: str) -> list:
        try:
            return self.fs.get_file_info(selector)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot list {self.shown(rel)}: {_first_line(exc)}") from exc

    def newest(
        self, host: str, listed: list[tuple[int, str, float]] | None = None
    ) -> ManifestEntry | None:
        """A host's newest complete manifest, or None when it has none (`listed`: its manifests, just listed)."""
        for seq, rel, _ in reversed(self._manifests(host) if listed is None else listed):
            try:
                with self.fs.open_input_stream(self.full(rel)) as f:
                    value = json.loads(f.read())
            except FileNotFoundError:
                continue  # removed since the listing: an older one was newest for a moment
            except ValueError:
                continue  # not a manifest we wrote whole: take the one before
            except (OSError, pa.ArrowException) as exc:
                raise StoreError(f"cannot read {self.shown(rel)}: {_first_line(exc)}") from exc
            if isinstance(value, dict) and isinstance(value.get("segments"), list):
                return ManifestEntry(host, seq, tuple(value["segments"]), value.get("store"))
        return None

    def publish(self, segments: list[dict[str, Any]]) -> int:
        """Write this host's next manifest listing `segments`; return its sequence number."""
        known = self._manifests(self.host)
        seq = (known[-1][0] if known else 0) + 1
        body = json.dumps(
            {
                "format": 1,
                "host": self.host,
                "store": self.store,
                "seq": seq,
                "written_at": time.time(),
                "segments": segments,
            },
            separators=(",", ":"),
        ).encode()
        rel = f"{self.prefix}/{MANIFESTS}/m-{seq:012d}.json"
        self.write_file(rel, lambda stream: stream.write(body))
        return seq

    def hosts(self) -> list[str]:
        """The hosts that have written into the lake, by id."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.root, allow_not_found=True)
        names = []
        for info in self._list(selector, ""):
            name = info.base_name
            if info.type == pafs.FileType.Directory and name.startswith(SHARED_PREFIX):
                host = name[len(SHARED_PREFIX) :]
                if _HOST_ID.fullmatch(host):
                    names.append(host)
        return sorted(names)

    def fleet(
        self, hosts: frozenset[str] | None = None, skip: str | None = None, refresh: float = REFRESH
    ) -> list[ManifestEntry]:
        """Every host's newest manifest (only `hosts` if given, never `skip`), kept `refresh` seconds."""
        with self._fleet_lock:
            now = time.monotonic()
            if self._fleet is None or now - self._fleet[0] > refresh:
                before = self._fleet[1] if self._fleet is not None else {}
                found: dict[str, ManifestEntry] = {}
                for host in self.hosts():
                    if host == skip or (hosts is not None and host not in hosts):
                        continue
                    seqs = self._manifests(host)
                    old = before.get(host)
                    if old is not None and seqs and seqs[-1][0] == old.seq:
                        found[host] = old  # unchanged: no need to read it again
                        continue
                    entry = self.newest(host, seqs)
                    if entry is not None:
                        found[host] = entry
                self._fleet = (now, found)
            return [
                e
                for h, e in sorted(self._fleet[1].items())
                if h != skip and (hosts is None or h in hosts)
            ]

    def forget(self) -> None:
        """Drop the kept manifests: the next read lists the lake again."""
        with self._fleet_lock:
            self._fleet = None

    # --- housekeeping (this host's prefix only) ---------------------------------

    def cleanup(self, listed: set[str], keep: set[str], grace: float = GRACE) -> int:
        """Delete this host's unlisted files and old manifests older than `grace`; return how many."""
        import pyarrow.fs as pafs

        now = time.time()
        doomed = []
        for kind in ("executions", "events", "rollups"):
            base = f"{self.prefix}/{kind}"
            selector = pafs.FileSelector(self.full(base), recursive=True, allow_not_found=True)
            for info in self._list(selector, base):
                if info.type != pafs.FileType.File:
                    continue
                rel = info.path[len(self.root) + 1 :]
                mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
                if rel not in listed and rel not in keep and now - mtime > grace:
                    doomed.append(rel)
        manifests = self._manifests(self.host)
        doomed += [rel for _, rel, mtime in manifests[:-KEEP_MANIFESTS] if now - mtime > grace]
        self.remove(doomed)
        return len(doomed)


# --- compaction's side: the manifest follows the store's own list ---------------------


def listed_shared(con) -> list[dict[str, Any]]:
    """The store's segments that live in the shared lake, as manifest entries (every column kept)."""
    cur = con.execute(f"SELECT * FROM segments WHERE executions_path LIKE '{SHARED_PREFIX}%'")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def segment_of(entry: dict[str, Any], segment_type: type) -> Any:
    """A manifest entry as the store's Segment (unknown keys, e.g. later additions, left out;
    keys an older writer did not know, e.g. rollup_path, take their default)."""
    return segment_type(**{f.name: entry[f.name] for f in fields(segment_type) if f.name in entry})


# --- the lake's filesystem ------------------------------------------------------------


def _filesystem(url: str):
    """(pyarrow filesystem, root path) for an s3:// URL, a file:// URL or a folder; StoreError if bad."""
    import pyarrow.fs as pafs

    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme == "s3":
        bucket = parsed.netloc
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket or ""):
            raise StoreError(
                f"bad lake URL {url!r}: the bucket name must be 3-63 lower-case letters, digits, '.' or '-' "
                "(s3://bucket/prefix)"
            )
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            raise StoreError(
                f"bad lake URL {url!r}: give s3://bucket/prefix only; credentials come from "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws, never from the URL"
            )
        prefix = parsed.path.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise StoreError(f"bad lake URL {url!r}: the prefix has an empty, '.' or '..' part")
        return _s3(), f"{bucket}/{prefix}" if prefix else bucket
    if scheme == "file":
        path = parsed.path
    elif scheme and len(scheme) > 1:
        raise StoreError(
            f"bad lake URL {url!r}: give s3://bucket/prefix or a folder path (no {scheme}:// support)"
        )
    else:
        path = url
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise StoreError(f"bad lake {url!r}: {path} is a file; give a folder or s3://bucket/prefix")
    return pafs.LocalFileSystem(), path.rstrip("/") or "/"


def _s3():
    """pyarrow's S3 filesystem; credentials and region from the standard AWS chain."""
    import pyarrow.fs as pafs

    options: dict[str, Any] = {
        "connect_timeout": float(os.environ.get("KAGURA_S3_CONNECT_TIMEOUT", "5")),
        "request_timeout": float(os.environ.get("KAGURA_S3_REQUEST_TIMEOUT", "30")),
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    }
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_override"] = endpoint
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    try:
        return pafs.S3FileSystem(**options)
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise StoreError(f"cannot set up S3 access: {_first_line(exc)}") from exc


def _write_local(path: str, write: Callable[[Any], None]) -> int:
    """Write a file of a shared folder: owner-only, temporary name, fsync, rename."""
    folder = os.path.dirname(path)
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for part in reversed(missing):
        try:
            os.mkdir(part, 0o700)
        except FileExistsError:
            pass
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(os.path.dirname(path), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return size


def _each(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """fn of each item, up to 8 at once (requests to the lake wait on the network, not the CPU)."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(8, len(items))) as pool:
        return list(pool.map(fn, items))


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    return message.splitlines()[0]
