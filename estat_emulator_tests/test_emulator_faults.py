"""Fault injection and admin endpoints of the e-Stat emulator, observed from an httpx client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from estat_assets.estat.shape import as_list
from estat_emulator import EmulatorServer, FaultRule, FaultSet, TableStore

APP_ID = "secret-app-id-must-not-leak-42"
GEN = "9900020202"
REC = "0000020202"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A fresh server per test: faults, republishing and new tables change its state."""
    with EmulatorServer(TableStore.default()) as srv:
        yield srv


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_base, timeout=30) as c:
        yield c


def get_data(client: httpx.Client, table_id: str = REC, **params: Any) -> httpx.Response:
    return client.get("/getStatsData", params={"appId": APP_ID, "statsDataId": table_id, **params})


def body_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200
    (body,) = response.json().values()
    return body


def admin(server: EmulatorServer, method: str, path: str, payload: Any = None) -> httpx.Response:
    content = None if payload is None else orjson.dumps(payload)
    return httpx.request(method, f"{server.url}/_emulator/{path}", content=content, timeout=30)


# -- HTTP-level faults -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_http_error_then_recovery(
    server: EmulatorServer, client: httpx.Client, status: int
) -> None:
    server.faults.add(kind="http_error", status=status)  # times=1 by default
    assert get_data(client).status_code == status
    assert body_of(get_data(client))["RESULT"]["STATUS"] == 0


def test_rate_limit_with_retry_after(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="rate_limit", retry_after=7, times=2)
    for _ in range(2):
        response = get_data(client)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
    assert get_data(client).status_code == 200


def test_latency(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="latency", seconds=0.3)
    started = time.monotonic()
    response = get_data(client)
    assert time.monotonic() - started >= 0.3  # a lower bound only: never flaky
    assert body_of(response)["RESULT"]["STATUS"] == 0
    assert server.requests.entries()[-1]["faults"] == ["latency"]


def test_connection_reset_mid_body(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="reset", after_bytes=1000)
    with pytest.raises(httpx.TransportError):
        get_data(client, GEN, limit=50_000)
    assert body_of(get_data(client, GEN, limit=10))["RESULT"]["STATUS"] == 0


def test_reset_delivers_headers_and_part_of_the_body(server: EmulatorServer) -> None:
    server.faults.add(kind="reset", after_bytes=5000)
    received = 0
    claimed = 0
    params = {"appId": APP_ID, "statsDataId": GEN}
    with (
        httpx.Client(base_url=server.api_base) as c,
        pytest.raises(httpx.TransportError),
        c.stream("GET", "/getStatsData", params=params) as r,
    ):
        assert r.status_code == 200
        claimed = int(r.headers["Content-Length"])
        for chunk in r.iter_raw():
            received += len(chunk)
    assert 0 < received < claimed


def test_truncated_json_body(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="truncate", keep_bytes=500)
    response = get_data(client)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["Content-Length"]) == 500
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (100, "認証に失敗しました。"),
        (101, None),
        (200, "サーバ内部でエラーが発生しました。"),
        (299, "サーバ内部でエラーが発生しました。"),
    ],
)
def test_api_error_bodies(
    server: EmulatorServer, client: httpx.Client, status: int, message: str | None
) -> None:
    server.faults.add(kind="api_error", status=status, error_msg=message)
    body = body_of(get_data(client))
    assert body["RESULT"]["STATUS"] == status
    if message:
        assert body["RESULT"]["ERROR_MSG"] == message
    assert list(body) == ["RESULT", "PARAMETER"]
    assert body["PARAMETER"]["STATS_DATA_ID"] == REC


def test_short_page(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="short_page", drop_rows=2)
    sd = body_of(get_data(client, limit=5))["STATISTICAL_DATA"]
    assert sd["RESULT_INF"]["FROM_NUMBER"] == 1 and sd["RESULT_INF"]["TO_NUMBER"] == 5
    assert len(as_list(sd["DATA_INF"]["VALUE"])) == 3
    gen = body_of(get_data(client, GEN, limit=100))["STATISTICAL_DATA"]
    assert len(as_list(gen["DATA_INF"]["VALUE"])) == 100  # times=1: already used up


def test_republished_during_paging(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="republish", stats_data_id=GEN, skip=1, updated_date="2025-08-01")
    first = body_of(get_data(client, GEN, limit=1000, startPosition=1))["STATISTICAL_DATA"]
    second = body_of(get_data(client, GEN, limit=1000, startPosition=1001))["STATISTICAL_DATA"]
    assert first["TABLE_INF"]["UPDATED_DATE"] == "2025-06-20"
    assert second["TABLE_INF"]["UPDATED_DATE"] == "2025-08-01"
    again = body_of(get_data(client, GEN, limit=1000, startPosition=1))["STATISTICAL_DATA"]
    old = [v["$"] for v in first["DATA_INF"]["VALUE"]]
    new = [v["$"] for v in again["DATA_INF"]["VALUE"]]
    assert sum(a != b for a, b in zip(old, new, strict=True)) > 900
    assert [v["@time"] for v in first["DATA_INF"]["VALUE"]] == [
        v["@time"] for v in again["DATA_INF"]["VALUE"]
    ]


# -- rule matching and counting --------------------------------------------------------------


def test_nth_requests_for_one_table(server: EmulatorServer, client: httpx.Client) -> None:
    rule = server.faults.add(kind="http_error", status=503, stats_data_id=GEN, nth=[2, 3])
    codes = []
    for _ in range(4):
        get_data(client, REC)  # another table: not counted by the rule
        codes.append(get_data(client, GEN, limit=1).status_code)
    assert codes == [200, 503, 503, 200]
    assert (rule.seen, rule.hits) == (4, 2)


def test_skip_and_unlimited_times(server: EmulatorServer, client: httpx.Client) -> None:
    server.faults.add(kind="http_error", status=500, skip=2, times=None, endpoint="getMetaInfo")
    codes = [
        client.get("/getMetaInfo", params={"appId": APP_ID, "statsDataId": REC}).status_code
        for _ in range(5)
    ]
    assert codes == [200, 200, 500, 500, 500]
    assert get_data(client).status_code == 200  # other endpoints unaffected
    server.faults.clear()
    assert (
        client.get("/getMetaInfo", params={"appId": APP_ID, "statsDataId": REC}).status_code == 200
    )


def test_fault_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule(kind="explode")
    with pytest.raises(ValueError, match="unknown fault rule fields"):
        FaultRule.from_dict({"kind": "latency", "sleep": 1})
    assert FaultRule.from_dict({"kind": "republish", "after": 3}).skip == 3
    assert FaultRule(kind="short_page").endpoint == "getStatsData"


def test_faults_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"kind": "http_error", "status": 503, "times": 1}]))
    faults = FaultSet()
    faults.load(path)
    with EmulatorServer(TableStore.default(), faults=faults) as srv:
        params = {"appId": APP_ID, "statsDataId": REC}
        assert httpx.get(f"{srv.api_base}/getStatsData", params=params).status_code == 503
        assert httpx.get(f"{srv.api_base}/getStatsData", params=params).status_code == 200


# -- admin endpoints -------------------------------------------------------------------------


def test_admin_faults_endpoint(server: EmulatorServer, client: httpx.Client) -> None:
    rules = [{"kind": "rate_limit", "retry_after": 3}, {"kind": "http_error", "status": 500}]
    listed = admin(server, "POST", "faults", rules).json()["faults"]
    assert [r["kind"] for r in listed] == ["rate_limit", "http_error"]
    assert get_data(client).status_code == 429  # both fire; the first replacing rule wins
    assert get_data(client).status_code == 200
    counts = admin(server, "GET", "faults").json()["faults"]
    assert [(r["seen"], r["hits"]) for r in counts] == [(2, 1), (2, 1)]
    admin(server, "POST", "faults", {"kind": "http_error", "status": 503})
    assert admin(server, "DELETE", "faults").json() == {"faults": []}
    assert get_data(client).status_code == 200
    bad = admin(server, "POST", "faults", [{"kind": "nope"}])
    assert bad.status_code == 400


def test_health(server: EmulatorServer) -> None:
    assert admin(server, "GET", "health").json() == {"status": "ok", "tables": len(server.store)}


def test_request_log_never_contains_the_app_id(
    server: EmulatorServer, client: httpx.Client
) -> None:
    get_data(client, limit=2)
    client.get("/getStatsList", params={"appId": APP_ID, "statsCode": "00200521"})
    response = admin(server, "GET", "requests")
    assert APP_ID not in response.text
    entries = response.json()["requests"]
    assert [e["endpoint"] for e in entries] == ["getStatsData", "getStatsList"]
    assert entries[0]["params"] == {"appId": "***", "statsDataId": REC, "limit": "2"}
    assert entries[0]["path"] == "/rest/3.0/app/json/getStatsData"
    assert entries[0]["status"] == 0 and entries[0]["http_status"] == 200
    assert APP_ID not in repr(server.requests.entries())
    admin(server, "DELETE", "requests")
    assert admin(server, "GET", "requests").json() == {"requests": []}


def test_admin_republish(server: EmulatorServer, client: httpx.Client) -> None:
    before = body_of(get_data(client, GEN, limit=200))["STATISTICAL_DATA"]
    answer = admin(server, "POST", "republish", {"statsDataId": GEN, "updated_date": "2025-09-01"})
    assert answer.status_code == 200 and answer.json()["UPDATED_DATE"] == "2025-09-01"
    after = body_of(get_data(client, GEN, limit=200))["STATISTICAL_DATA"]
    assert after["TABLE_INF"]["UPDATED_DATE"] == "2025-09-01"
    assert [v["$"] for v in after["DATA_INF"]["VALUE"]] != [
        v["$"] for v in before["DATA_INF"]["VALUE"]
    ]
    rec_before = body_of(get_data(client, REC))["STATISTICAL_DATA"]
    admin(server, "POST", "republish", {"statsDataId": REC, "updated_date": "2025-09-02"})
    rec_after = body_of(get_data(client, REC))["STATISTICAL_DATA"]
    assert rec_after["TABLE_INF"]["UPDATED_DATE"] == "2025-09-02"
    assert rec_after["DATA_INF"]["VALUE"] == rec_before["DATA_INF"]["VALUE"]
    listed = body_of(
        client.get("/getStatsList", params={"appId": APP_ID, "updatedDate": "20250902"})
    )
    assert as_list(listed["DATALIST_INF"]["TABLE_INF"])[0]["@id"] == REC
    assert admin(server, "POST", "republish", {"statsDataId": "0999999999"}).status_code == 404
    assert admin(server, "POST", "republish", {}).status_code == 400


def test_admin_add_table_appears_in_listing(server: EmulatorServer, client: httpx.Client) -> None:
    def listed() -> set[str]:
        body = body_of(
            client.get("/getStatsList", params={"appId": APP_ID, "updatedDate": "20251001"})
        )
        return {t["@id"] for t in as_list(body["DATALIST_INF"].get("TABLE_INF"))}

    assert listed() == set()
    spec = {
        "GENERATED_TABLE": {
            "id": "9900000042",
            "metadata_from": "0000020202",
            "seed": 42,
            "updated_date": "2025-10-01",
            "axes": {"time": {"limit": 2}, "area": {"limit": 3}},
        }
    }
    answer = admin(server, "POST", "tables", spec)
    assert answer.status_code == 201
    assert answer.json()["OVERALL_TOTAL_NUMBER"] == 1 * 9 * 3 * 2
    assert listed() == {"9900000042"}
    sd = body_of(get_data(client, "9900000042"))["STATISTICAL_DATA"]
    assert sd["RESULT_INF"]["TOTAL_NUMBER"] == 54
    tables = admin(server, "GET", "tables").json()["tables"]
    assert "9900000042" in {t["statsDataId"] for t in tables}
    bad = admin(server, "POST", "tables", {"id": "9900000043", "metadata_from": "0000000001"})
    assert bad.status_code == 400
    assert admin(server, "DELETE", "tables/9900000042").status_code == 200
    assert body_of(get_data(client, "9900000042"))["RESULT"]["STATUS"] == 102


def test_unknown_admin_endpoint(server: EmulatorServer) -> None:
    assert admin(server, "GET", "nothing").status_code == 404
