"""A Slack-shaped webhook receiver on 127.0.0.1 that records posts and answers as told."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


class SlackReceiver:
    """Records every POST body; answers from a script, then ``200 ok``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.answers: deque[Answer] = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver.lock:
                    answer = receiver.answers.popleft() if receiver.answers else Answer()
                    if 200 <= answer.status < 300:
                        receiver.posts.append(body)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                payload = answer.body.encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/x"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def script(self, *answers: Answer) -> None:
        with self.lock:
            self.answers.extend(answers)

    def __enter__(self) -> SlackReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
