"""A real HTTP server on loopback that speaks e-Stat API v3 JSON, with faults and admin endpoints.

Why a real server (not a mocked transport): the client's HTTP stack, timeouts, connection reuse
and error handling are exercised exactly as against ``api.e-stat.go.jp``.

API paths: ``/rest/<version>/app/json/{getStatsList,getMetaInfo,getStatsData,getDataCatalog}``.
Admin paths (JSON): ``GET /_emulator/health``, ``GET|DELETE /_emulator/requests``,
``GET|POST|DELETE /_emulator/faults``, ``POST /_emulator/republish`` (a release, see
``release.py``), ``GET|POST /_emulator/tables``, ``DELETE /_emulator/tables/<statsDataId>``.

Query strings are decoded as UTF-8 whether percent-encoded or sent as raw bytes (``searchWord``).
"""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from .faults import REPLACING, FaultRule, FaultSet
from .release import Release
from .responses import ENDPOINTS, error_document, jst_now, respond
from .store import TableStore
from .wire import dumps

JSON_TYPE = "application/json;charset=utf-8"
_API_PATH = re.compile(r"/rest/[0-9.]+/app/json/(\w+)")
_SECRET_PARAMS = ("appId",)
_NON_ASCII = re.compile(rb"[\x80-\xff]+")


class RequestLog:
    """The API requests received (bounded), with the appId masked: what tests assert on."""

    def __init__(self, size: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, **entry}
            self._entries.append(entry)
            return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def mask_params(params: dict[str, str]) -> dict[str, str]:
    """Request parameters safe to log: the appId is replaced by ``***``."""
    return {k: ("***" if k in _SECRET_PARAMS else v) for k, v in params.items()}


class _Reply:
    """What to send: status, headers, body and how to damage it (reset/truncate)."""

    def __init__(
        self, status: int, body: bytes, content_type: str = JSON_TYPE, **headers: str
    ) -> None:
        self.status = status
        self.body = body
        self.headers = {"Content-Type": content_type, **headers}
        self.reset_after: int | None = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (or faults that hang up on them) are normal here: stay quiet."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, ValueError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    server_version = "estat-emulator/0.1"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped eventually
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def parse_request(self) -> bool:
        """Percent-encode raw non-ASCII bytes of the request line before parsing it.

        Why: ``http.server`` decodes the line as Latin-1 and splits it on Unicode whitespace, so
        raw UTF-8 such as 病 (E7 97 85; U+0085 is whitespace) would break the request apart.
        Percent-encoded, the bytes reach :func:`query_params` intact and decode as UTF-8.
        """
        self.raw_requestline = _NON_ASCII.sub(
            lambda m: b"".join(b"%%%02X" % byte for byte in m.group()), self.raw_requestline
        )
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default line includes the query string and with it the appId."""

    def do_GET(self) -> None:
        self.server.emulator.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator.handle(self, "POST")

    def do_DELETE(self) -> None:
        self.server.emulator.handle(self, "DELETE")


def query_params(query: str) -> dict[str, str]:
    """Request parameters (the last of repeated names), decoded as UTF-8 like e-Stat does.

    ``http.server`` decodes the request line as Latin-1, so raw UTF-8 bytes in the query string
    (which some clients send unescaped) arrive as mojibake; they are turned back into bytes and
    decoded as UTF-8 before percent-decoding, which is UTF-8 too. Invalid UTF-8 becomes U+FFFD.
    """
    with contextlib.suppress(UnicodeEncodeError):  # text beyond Latin-1: not a request line
        query = query.encode("latin-1").decode("utf-8", errors="replace")
    parsed = parse_qs(query, keep_blank_values=True, encoding="utf-8", errors="replace")
    return {k: v[-1] for k, v in parsed.items()}


def _json_reply(status: int, data: Any) -> _Reply:
    return _Reply(status, orjson.dumps(data))


class EmulatorServer:
    """The e-Stat emulator: ``with EmulatorServer(store) as server: httpx.get(server.api_base)``."""

    def __init__(
        self,
        store: TableStore | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        required_app_id: str | None = None,
        *,
        faults: FaultSet | None = None,
        ascii_only: bool = True,
        gzip_responses: bool = False,
        log_size: int = 10_000,
    ) -> None:
        """Bind now (so ``url`` is known); serve after :meth:`start` or :meth:`serve_forever`.

        ``ascii_only`` escapes non-ASCII as ``\\uXXXX`` like the real wire; ``gzip_responses``
        compresses bodies for clients sending ``Accept-Encoding: gzip`` (off: costs CPU).
        """
        self.store = store if store is not None else TableStore.default()
        self.faults = faults if faults is not None else FaultSet()
        self.requests = RequestLog(log_size)
        self.required_app_id = required_app_id
        self.ascii_only = ascii_only
        self.gzip_responses = gzip_responses
        self._httpd = _HTTPServer((host, port), self)
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.url}/rest/3.0/app/json"

    def start(self) -> EmulatorServer:
        """Serve in a background (daemon) thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever,
                name=f"estat-emulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
            self._running.wait(timeout=5)
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` is called from another thread."""
        self._running.set()
        try:
            self._httpd.serve_forever(poll_interval=0.05)
        finally:
            self._running.clear()

    def stop(self) -> None:
        """Stop serving, drop open keep-alive connections and release the port."""
        if self._running.is_set():
            self._httpd.shutdown()
        with self._httpd.connections_lock:
            open_connections = list(self._httpd.connections)
        for conn in open_connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling -----------------------------------------------------------------

    def handle(self, handler: _Handler, method: str) -> None:
        """Route one request and send the (possibly damaged) reply."""
        split = urlsplit(handler.path)
        params = query_params(split.query)
        body = b""
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            body = handler.rfile.read(length)
        if split.path.startswith("/_emulator/"):
            reply = self._admin(method, split.path, body)
        else:
            match = _API_PATH.fullmatch(split.path)
            if match is None or match.group(1) not in ENDPOINTS:
                reply = _json_reply(404, {"error": f"no such endpoint: {split.path}"})
            elif method != "GET":
                reply = _json_reply(405, {"error": "the e-Stat JSON API is GET only"})
            else:
                reply = self._api(match.group(1), split.path, params, handler)
        self._send(handler, reply)

    def _api(self, endpoint: str, path: str, params: dict[str, str], handler: _Handler) -> _Reply:
        table_id = params.get("statsDataId") or None
        fired = self.faults.fire(endpoint, table_id)
        kinds = [rule.kind for rule in fired]
        delay = sum(rule.seconds for rule in fired if rule.kind == "latency")
        if delay > 0:
            time.sleep(delay)
        for rule in fired:
            if rule.kind == "republish" and table_id in self.store:
                self._fault_release(table_id, rule)
        replacing = next((r for r in fired if r.kind in REPLACING), None)
        api_status: int | None = None
        if replacing is not None and replacing.kind != "api_error":
            reply = self._http_fault(replacing)
        else:
            if replacing is not None:
                assert replacing.status is not None
                document = error_document(endpoint, replacing.status, params, replacing.error_msg)
            else:
                short_by = sum(r.drop_rows for r in fired if r.kind == "short_page")
                document = respond(
                    endpoint,
                    self.store,
                    params,
                    required_app_id=self.required_app_id,
                    short_by=short_by,
                    ascii_only=self.ascii_only,
                )
            api_status = next(iter(document.values()))["RESULT"]["STATUS"]
            reply = _Reply(200, dumps(document, ascii_only=self.ascii_only))
            self._damage(reply, fired, handler)
        self.requests.add(
            {
                "time": jst_now(),
                "method": "GET",
                "path": path,
                "endpoint": endpoint,
                "params": mask_params(params),
                "http_status": reply.status,
                "status": api_status,
                "faults": kinds,
            }
        )
        return reply

    def _fault_release(self, table_id: str, rule: FaultRule) -> None:
        """A ``republish`` fault: new values by default, or the rule's own release."""
        if rule.release is None:
            release = Release(updated_date=rule.updated_date, perturb=True)
        else:
            release = Release.from_dict({"updated_date": rule.updated_date, **rule.release})
        self.store.release(table_id, release)

    @staticmethod
    def _http_fault(rule: FaultRule) -> _Reply:
        if rule.kind == "rate_limit":
            status, text = 429, "Too Many Requests"
        else:
            status = int(rule.status or 500)
            text = {500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        page = f"<html><body><h1>{status} {text}</h1></body></html>".encode()
        reply = _Reply(status, page, "text/html;charset=utf-8")
        if rule.retry_after is not None:
            reply.headers["Retry-After"] = str(max(0, round(rule.retry_after)))
        return reply

    def _damage(self, reply: _Reply, fired: list[FaultRule], handler: _Handler) -> None:
        """Apply truncate (before compression: the JSON is broken) and gzip and reset."""
        truncate = next((r for r in fired if r.kind == "truncate"), None)
        if truncate is not None:
            keep = truncate.keep_bytes if truncate.keep_bytes is not None else len(reply.body) // 2
            reply.body = reply.body[: max(0, min(keep, len(reply.body) - 1))]
        accepts = handler.headers.get("Accept-Encoding", "")
        if self.gzip_responses and "gzip" in accepts:
            reply.body = gzip.compress(reply.body, compresslevel=1)
            reply.headers["Content-Encoding"] = "gzip"
        reset = next((r for r in fired if r.kind == "reset"), None)
        if reset is not None:
            cut = reset.after_bytes if reset.after_bytes is not None else len(reply.body) // 2
            reply.reset_after = max(0, min(cut, len(reply.body) - 1))

    def _send(self, handler: _Handler, reply: _Reply) -> None:
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        try:
            if reply.reset_after is None:
                handler.wfile.write(reply.body)
                return
            handler.wfile.write(reply.body[: reply.reset_after])
            handler.wfile.flush()
            time.sleep(0.05)  # let the partial body reach the client before the reset
            conn = handler.connection
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            # SO_LINGER 0: when the handler's files are closed right after this, the peer sees
            # a TCP reset instead of an orderly close (the socket's fd is released then)
            conn.close()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    # -- admin ----------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> _Reply:
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as exc:
            return _json_reply(400, {"error": f"invalid JSON: {exc}"})
        route = path.rstrip("/")
        try:
            if route == "/_emulator/health" and method == "GET":
                return _json_reply(200, {"status": "ok", "tables": len(self.store)})
            if route == "/_emulator/requests":
                if method == "DELETE":
                    self.requests.clear()
                return _json_reply(200, {"requests": self.requests.entries()})
            if route == "/_emulator/faults":
                if method == "POST":
                    rules = data if isinstance(data, list) else [data]
                    self.faults.extend(rules)
                elif method == "DELETE":
                    self.faults.clear()
                return _json_reply(200, {"faults": [r.to_dict() for r in self.faults.rules()]})
            if route == "/_emulator/republish" and method == "POST":
                return self._admin_republish(data)
            if route == "/_emulator/tables":
                if method == "POST":
                    table = self.store.add_generated(data or {})
                    return _json_reply(201, _table_summary(table))
                return _json_reply(200, {"tables": [_table_summary(t) for t in self.store]})
            if route.startswith("/_emulator/tables/") and method == "DELETE":
                table_id = route.rsplit("/", 1)[1]
                if not self.store.remove(table_id):
                    return _json_reply(404, {"error": f"no table {table_id}"})
                return _json_reply(200, {"removed": table_id})
        except (ValueError, TypeError) as exc:
            return _json_reply(400, {"error": str(exc)})
        return _json_reply(404, {"error": f"no admin endpoint {method} {path}"})

    def _admin_republish(self, data: Any) -> _Reply:
        if not isinstance(data, dict) or not data.get("statsDataId"):
            return _json_reply(400, {"error": 'expected {"statsDataId": ..., "updated_date": ...}'})
        table_id = str(data["statsDataId"])
        release = Release.from_dict(data)  # ValueError → 400 in _admin
        try:
            table = self.store.release(table_id, release)
        except KeyError:
            return _json_reply(404, {"error": f"no table {table_id}"})
        return _json_reply(200, _table_summary(table))


def _table_summary(table: Any) -> dict[str, Any]:
    return {
        "statsDataId": table.id,
        "kind": table.kind,
        "has_metadata": table.has_metadata,
        "OVERALL_TOTAL_NUMBER": table.table_inf.get("OVERALL_TOTAL_NUMBER"),
        "UPDATED_DATE": table.table_inf.get("UPDATED_DATE"),
        "revision": table.revision,
    }
