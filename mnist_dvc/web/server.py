"""`make serve`: the page and the API on http://127.0.0.1:8000/ (`--host`, `--port`; port 0 picks a free one).

    python -m mnist_dvc.web.server [--host 127.0.0.1] [--port 8000] [--repo .] [--quiet]

A threaded server from Python's standard library: one thread per connection, with at most
DECODING_AT_ONCE images decoded and normalised at a time (a large photo briefly takes a few hundred MB, so
the memory stays bounded whatever the number of clients), a socket timeout against clients that stall,
and the body's size checked from its Content-Length before a byte of it is read. It starts without
TensorFlow (LiteRT's interpreter only) and answers within a second of starting.
"""

from __future__ import annotations

import argparse
import http.server
import logging
import sys
import threading
from pathlib import Path

from mnist_dvc.web.api import MAX_BODY_BYTES, Response, declared_length_problem, error_response, handle
from mnist_dvc.web.served_model import ModelSlot

logger = logging.getLogger("mnist_dvc.web")

DECODING_AT_ONCE = 2
SOCKET_TIMEOUT_S = 20.0
BODY_CHUNK = 64 * 1024


class DigitServer(http.server.ThreadingHTTPServer):
    daemon_threads = True  # a stalled client never keeps the process from exiting
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], slot: ModelSlot, quiet: bool = False) -> None:
        self.slot = slot
        self.quiet = quiet
        self.decoding = threading.BoundedSemaphore(DECODING_AT_ONCE)
        super().__init__(address, RequestHandler)


class RequestHandler(http.server.BaseHTTPRequestHandler):
    server: DigitServer
    timeout = SOCKET_TIMEOUT_S
    protocol_version = "HTTP/1.1"
    server_version = "mnist-dvc"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._answer("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        refusal = declared_length_problem(method, headers)
        if refusal is not None:
            self.close_connection = True  # the unread body must not be taken for the next request
            self._send(refusal, method)
            return
        body = b""
        if method == "POST":
            read = self._read_body(int(headers["content-length"]))
            if isinstance(read, Response):
                self.close_connection = True
                self._send(read, method)
                return
            body = read
        try:
            if method == "POST":
                with self.server.decoding:
                    response = handle(method, self.path, headers, body, self.server.slot)
            else:
                response = handle(method, self.path, headers, body, self.server.slot)
        except MemoryError:
            response = error_response(503, "busy", "Expected memory to decode the image. Received: none left; retry")
        except Exception:  # a bug, never the input's fault: logged with its traceback, answered as one
            logger.exception("%s %s failed", method, self.path)
            response = error_response(500, "internal_error", "The server failed on this request; see its log.")
        self._send(response, method)

    def _read_body(self, length: int) -> bytes | Response:
        assert length <= MAX_BODY_BYTES  # declared_length_problem refused larger
        chunks, received = [], 0
        try:
            while received < length:
                chunk = self.rfile.read(min(BODY_CHUNK, length - received))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except (TimeoutError, ConnectionError):
            pass
        if received < length:
            return error_response(
                400, "incomplete_body", f"Expected {length:,} bytes (its Content-Length). Received: {received:,}"
            )
        return b"".join(chunks)

    def _send(self, response: Response, method: str) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one; default 8000)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the checkout whose model to serve")
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    slot = ModelSlot(args.repo.resolve())
    try:
        server = DigitServer((args.host, args.port), slot, args.quiet)
    except OSError as error:
        print(f"serve: cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        return 2
    model = slot.current()
    address, port = server.server_address[:2]
    host = address.decode() if isinstance(address, bytes) else address
    state = f"serving {slot.path} (md5 {model.md5})" if model else f"no model yet at {slot.path}: run `make repro`"
    print(f"Digit recognizer on http://{host}:{port}/ ({state}); API docs at /api/docs. Ctrl-C stops it.", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
