"""Tests for gdl.download against a real HTTP server on loopback, with fixture files made here."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gdl.download import ChecksumError, DownloadError, fetch, sha256_file

PAYLOAD = b"generative deep learning\n" * 1000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Server:
    root: Path
    base_url: str
    requests: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    state = Server(root=root, base_url="")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    # A short poll interval so that shutdown() returns at once instead of after 0.5 s per test.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


# --- archive builders ---------------------------------------------------------------------------

GOOD_FILES = {"data/a.txt": b"alpha\n", "data/sub/b.bin": bytes(range(256))}


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def assert_only(directory: Path, *names: str) -> None:
    """``directory`` holds exactly ``names``: no temp files or half-extracted trees left over."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(names)


# --- fetch --------------------------------------------------------------------------------------


def test_fetch_downloads_and_verifies(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    dest = fetch(url, out / "blob.bin", sha(PAYLOAD), progress=False)
    assert dest == out / "blob.bin"
    assert dest.read_bytes() == PAYLOAD
    assert sha256_file(dest) == sha(PAYLOAD)
    assert_only(out, "blob.bin")


def test_fetch_creates_parent_dirs_and_accepts_uppercase_hash(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    dest = fetch(url, out / "a" / "b" / "blob.bin", sha(PAYLOAD).upper(), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_fetch_shows_progress_on_stderr(
    server: Server, out: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.put("blob.bin", PAYLOAD)
    fetch(url, out / "blob.bin", sha(PAYLOAD), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "blob.bin" in captured.err


def test_second_fetch_uses_cached_file(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    fetch(url, out / "blob.bin", sha(PAYLOAD), progress=False)
    assert server.requests == ["/blob.bin"]
    fetch(url, out / "blob.bin", sha(PAYLOAD), progress=False)
    assert server.requests == ["/blob.bin"]


def test_stale_file_with_wrong_hash_is_replaced(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    (out / "blob.bin").write_bytes(b"stale")
    fetch(url, out / "blob.bin", sha(PAYLOAD), progress=False)
    assert (out / "blob.bin").read_bytes() == PAYLOAD
    assert len(server.requests) == 1
    assert_only(out, "blob.bin")


def test_checksum_mismatch(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch(url, out / "blob.bin", wrong, progress=False)
    message = str(info.value)
    assert url in message
    assert str(out / "blob.bin") in message
    assert wrong in message
    assert sha(PAYLOAD) in message
    assert isinstance(info.value, DownloadError)
    assert_only(out)


def test_checksum_mismatch_keeps_existing_file_untouched(server: Server, out: Path) -> None:
    url = server.put("blob.bin", PAYLOAD)
    (out / "blob.bin").write_bytes(b"previous")
    with pytest.raises(ChecksumError):
        fetch(url, out / "blob.bin", "1" * 64, progress=False)
    assert (out / "blob.bin").read_bytes() == b"previous"
    assert_only(out, "blob.bin")


def test_404_raises_download_error(server: Server, out: Path) -> None:
    url = server.url("missing.bin")
    with pytest.raises(DownloadError) as info:
        fetch(url, out / "missing.bin", sha(PAYLOAD), progress=False)
    assert not isinstance(info.value, ChecksumError)
    assert url in str(info.value)
    assert str(out / "missing.bin") in str(info.value)
    assert_only(out)


def test_connection_refused_raises_download_error(out: Path) -> None:
    # Bind then close a loopback port, so nothing listens there.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.bin"
    with pytest.raises(DownloadError, match="x.bin"):
        fetch(url, out / "x.bin", sha(PAYLOAD), timeout=2, progress=False)
    assert_only(out)


def test_file_url(tmp_path: Path, out: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = fetch(src.as_uri(), out / "copy.bin", sha(PAYLOAD), progress=False)
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("bad", ["", "abc", "g" * 64, "0" * 63, "0" * 65, None])
def test_invalid_sha_rejected(server: Server, out: Path, bad: object) -> None:
    url = server.put("blob.bin", PAYLOAD)
    with pytest.raises(ValueError, match="blob.bin"):
        fetch(url, out / "blob.bin", bad, progress=False)  # type: ignore[arg-type]
    assert server.requests == []
    assert_only(out)
