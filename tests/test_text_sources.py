"""The book's text corpora (data.text.source: recipes / wine_reviews), served by a real local HTTP server."""

import functools
import hashlib
import http.server
import io
import json
import threading
import zipfile

import numpy as np
import pytest

from gdl.data import text
from gdl.download import ChecksumError
from gdl.params import ParamsError, TextData, validate

RECIPES = [{"title": "Lentil Soup", "directions": ["Rinse the lentils.", "Simmer 30 minutes."]},
           {"title": None, "directions": ["No title: skipped, as the book does."]},
           {"title": "Toast", "directions": ["Toast the bread."]}]


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def zipped(member: str, records) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"archive/{member}", json.dumps(records))
    return buf.getvalue()


def test_recipes_are_fetched_checked_and_written_as_the_book_does(www, tmp_path, monkeypatch):
    root, base = www
    payload = zipped("full_format_recipes.json", RECIPES)
    (root / "epirecipes.zip").write_bytes(payload)
    monkeypatch.chdir(tmp_path)
    cfg = TextData(source="recipes", url=f"{base}/epirecipes.zip", sha256=hashlib.sha256(payload).hexdigest())
    raw = text.acquire(cfg, seed=0)
    assert list(raw["texts"]) == ["Recipe for Lentil Soup | Rinse the lentils. Simmer 30 minutes.",
                                  "Recipe for Toast | Toast the bread."]
    assert list(raw["names"]) == ["recipes/000000", "recipes/000001"]


def test_a_tampered_corpus_is_refused_and_nothing_is_left_behind(www, tmp_path, monkeypatch):
    root, base = www
    payload = zipped("winemag-data-130k-v2.json", [{"country": "Italy", "province": "Sicily", "variety": "White",
                                                    "description": "Aromas of tropical fruit."}])
    pinned = hashlib.sha256(payload).hexdigest()
    (root / "wine.zip").write_bytes(payload[:-10] + b"0123456789")  # the mirror's copy differs
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ChecksumError):
        text.acquire(TextData(source="wine_reviews", url=f"{base}/wine.zip", sha256=pinned), seed=0)
    assert not (tmp_path / "data" / "downloads").exists() or not any((tmp_path / "data" / "downloads").iterdir())
    (root / "wine.zip").write_bytes(payload)
    raw = text.acquire(TextData(source="wine_reviews", url=f"{base}/wine.zip", sha256=pinned), seed=0)
    assert raw["texts"][0] == "wine review : Italy : Sicily : White : Aromas of tropical fruit."
    assert raw["texts"].dtype.kind == "U" and isinstance(raw["names"], np.ndarray)


def test_a_book_source_needs_its_checksum_pinned():
    with pytest.raises(ParamsError, match=r"data\.text.*sha256"):
        validate({"data": {"text": {"source": "recipes"}}}, "params.yaml")
