"""A tiny local chat-completions server for the fault cases only (429s, 4xx, a hang): real HTTP on loopback.

Each request takes the next scripted reply; past the script, every reply is a 200 answering "yes".
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "yes"  # the answer of a 200, the error message otherwise
    hang_s: float = 0.0  # seconds to wait before answering


@dataclass
class Seen:
    at: float
    authorization: str
    body: dict


class Stub:
    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    def next_reply(self, seen: Seen) -> Reply:
        with self.lock:
            self.seen.append(seen)
            return self.script.pop(0) if self.script else Reply()


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest's output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            reply = stub.next_reply(Seen(time.monotonic(), self.headers.get("authorization", ""), body))
            time.sleep(reply.hang_s)
            if reply.status == 200:
                payload = {"id": "x", "object": "chat.completion", "created": 0, "model": "stub-model",
                           "system_fingerprint": "fp_stub",
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": reply.message}}],
                           "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}}
            else:
                payload = {"error": {"message": reply.message, "type": "stub", "code": reply.status}}
            data = json.dumps(payload).encode()
            try:
                self.send_response(reply.status)
                for k, v in {"content-type": "application/json", **reply.headers}.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client went away (a killed run)
                pass

    return Handler


@contextmanager
def serve(script: list[Reply], port: int = 0) -> Iterator[tuple[str, Stub]]:
    """(base_url, stub) of a server on a loopback port (0: a free one), stopped on exit."""
    stub = Stub(script)
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", stub
    finally:
        server.shutdown()
        server.server_close()
