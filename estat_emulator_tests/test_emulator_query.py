"""Query strings are UTF-8: percent-encoded or raw bytes, never Latin-1 (``searchWord``)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, TableStore
from estat_emulator.server import query_params


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


def raw_get(server: EmulatorServer, query: bytes) -> dict[str, Any]:
    """GET with the query string sent byte for byte (httpx would percent-encode it)."""
    path = b"/rest/3.0/app/json/getStatsList?appId=query-test&" + query
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    return json.loads(body)["GET_STATS_LIST"]


def ids(body: dict[str, Any]) -> set[str]:
    return {t["@id"] for t in as_list(body.get("DATALIST_INF", {}).get("TABLE_INF"))}


@pytest.mark.parametrize("word", ["人口", "ＧＤＰ", "賃金", "病院 学校"])
def test_raw_and_percent_encoded_utf8_agree(server: EmulatorServer, word: str) -> None:
    raw = raw_get(server, b"searchWord=" + word.encode("utf-8").replace(b" ", b"+"))
    encoded = raw_get(server, b"searchWord=" + quote(word).encode("ascii"))
    assert raw["PARAMETER"]["SEARCH_WORD"] == encoded["PARAMETER"]["SEARCH_WORD"] == word
    assert ids(raw) == ids(encoded)


def test_search_words_find_the_right_tables(server: EmulatorServer) -> None:
    population = ids(raw_get(server, "searchWord=人口".encode()))
    assert {"9900000001", "9900000002", "0003148500"} <= population
    assert "9900000003" not in population
    # full-width ＧＤＰ (as in the survey name) and half-width GDP are the same word (NFKC)
    assert ids(raw_get(server, "searchWord=ＧＤＰ".encode())) == {"9900000003"}
    assert ids(raw_get(server, b"searchWord=GDP")) == {"9900000003"}
    assert ids(raw_get(server, "searchWord=ｇｄｐ".encode())) == {"9900000003"}
    assert ids(raw_get(server, "searchWord=賃金".encode())) == {"9900000004"}
    assert ids(raw_get(server, "searchWord=病院".encode())) == {"9900000005"}
    assert ids(raw_get(server, "searchWord=学校".encode())) == {"9900000006"}


def test_latin1_reading_would_have_failed(server: EmulatorServer) -> None:
    """The mojibake a Latin-1 decoder makes of 人口 is not what the server searched for."""
    mojibake = "人口".encode().decode("latin-1")
    body = raw_get(server, "searchWord=人口".encode())
    assert body["PARAMETER"]["SEARCH_WORD"] != mojibake
    assert body["RESULT"]["STATUS"] == 0


def test_query_params_decoding() -> None:
    as_latin1 = "searchWord=人口&statsCode=00200521".encode().decode("latin-1")
    assert query_params(as_latin1) == {"searchWord": "人口", "statsCode": "00200521"}
    assert query_params("searchWord=%E4%BA%BA%E5%8F%A3+%EF%BC%A7") == {"searchWord": "人口 Ｇ"}
    assert query_params("a=1&a=2&b=") == {"a": "2", "b": ""}
    assert query_params("searchWord=%FF") == {"searchWord": "\ufffd"}  # not UTF-8: replaced
