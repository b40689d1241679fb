"""A small stand-in for the Anthropic Messages API, so the real Claude CLI can
run in tests without any model service.

It listens on the default Docker bridge's gateway address (an address of this
machine that session containers can reach) on a free port, records every
request for the test to assert on, and answers:

  HEAD /, GET /                       200, empty
  POST /v1/messages[?...]             a Messages reply, streamed (SSE) when the
                                      request asks for stream, else JSON. A turn
                                      of the conversation (a request offering
                                      the Bash tool) gets `reply` ("reply-<n>",
                                      n counting those turns from 1), or a
                                      tool_use of Bash when its last user
                                      message holds the tool marker (below);
                                      any other (titles, quota checks) gets the
                                      short `side_reply`
  POST /v1/messages/count_tokens      {"input_tokens": N}
  anything else                       404 with an API-style error, recorded

The tool marker: a prompt containing  [[bash: COMMAND]]  gets a tool_use of
Bash with input {"command": "COMMAND"} (stop_reason tool_use), when the
request offers a tool named Bash. The request that carries the tool_result
back gets a plain text reply."""
import http.server
import json
import os
import re
import subprocess
import threading
import time
import urllib.parse

TOOL_MARKER = re.compile(r"\[\[bash: (.+?)\]\]")
MAX_BODY = 32 * 1024 * 1024
DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def bridge_gateway():
    """IPv4 address of the default Docker bridge on this machine: the
    network's gateway when the engine reports one, else the address of its
    bridge interface (Docker 20.10 often leaves Gateway out)."""
    r = subprocess.run([DOCKER, "network", "inspect", "bridge"], capture_output=True,
                       text=True, check=True)
    [net] = json.loads(r.stdout)
    for cfg in (net.get("IPAM") or {}).get("Config") or []:
        if cfg.get("Gateway") and ":" not in cfg["Gateway"]:
            return cfg["Gateway"]
    ifname = (net.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    r = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", ifname], capture_output=True,
                       text=True, check=True)
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", r.stdout)
    if not m:
        raise RuntimeError(f"no IPv4 address on the Docker bridge {ifname}")
    return m.group(1)


class Request:
    """One recorded request."""

    def __init__(self, method, path, headers, body):
        parsed = urllib.parse.urlsplit(path)
        self.method = method
        self.path = parsed.path
        self.query = urllib.parse.parse_qs(parsed.query)
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None
        self.time = time.monotonic()
        self.seq = None  # its place among the requests recorded, from 0

    @property
    def model(self):
        return (self.json or {}).get("model") if isinstance(self.json, dict) else None

    @property
    def messages(self):
        return (self.json or {}).get("messages") or [] if isinstance(self.json, dict) else []

    @property
    def tool_names(self):
        tools = (self.json or {}).get("tools") or [] if isinstance(self.json, dict) else []
        return [t.get("name") for t in tools if isinstance(t, dict)]

    def is_messages(self):
        return self.method == "POST" and self.path == "/v1/messages"

    def is_conversation(self):
        """A turn of the main conversation: a Messages call offering tools
        (side requests such as titles or quota checks offer none)."""
        return self.is_messages() and "Bash" in self.tool_names

    def text(self):
        """Every text of every message, joined: what the test looks for."""
        return "\n".join(texts_of(m) for m in self.messages)

    def __repr__(self):
        return f"<{self.method} {self.path} model={self.model} messages={len(self.messages)}>"


def texts_of(message):
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            out.append(str(block.get("text", "")))
    return "\n".join(out)


class ModelStandin:
    """Usage:
        with ModelStandin() as api:
            env ANTHROPIC_BASE_URL=api.url ...
            api.wait_for(lambda r: r.is_conversation())
    reply: a str with an optional {n} (the count of conversation replies so
    far, from 1), or a callable(Request) -> str; side_reply: the text of every
    other Messages reply; latency: seconds before a Messages reply starts
    (none by default: the tests are the harder for it)."""

    def __init__(self, host=None, reply="reply-{n}", side_reply="ok", latency=0.0):
        self.host = host or bridge_gateway()
        self.reply = reply
        self.side_reply = side_reply
        self.latency = latency
        self.requests = []
        self.replies = 0
        self.tool_ids = 0
        self._cond = threading.Condition()
        self._server = None
        self._thread = None

    # ---- lifecycle ----

    def start(self):
        standin = self

        class Handler(_Handler):
            owner = standin

        self._server = http.server.ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    # ---- what the test asserts on ----

    def snapshot(self):
        with self._cond:
            return list(self.requests)

    def conversation(self):
        return [r for r in self.snapshot() if r.is_conversation()]

    def wait_for(self, predicate, timeout=60):
        """The first recorded request matching predicate, waiting up to
        timeout s for it; raises AssertionError with what was seen."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.requests:
                    if predicate(r):
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching request within {timeout}s; saw {self.requests}")
                self._cond.wait(left)

    # ---- called by the handler ----

    def record(self, req):
        with self._cond:
            req.seq = len(self.requests)
            self.requests.append(req)
            self._cond.notify_all()

    def next_reply(self, req):
        if not req.is_conversation():
            return self.side_reply
        with self._cond:
            self.replies += 1
            n = self.replies
        if callable(self.reply):
            return str(self.reply(req))
        return self.reply.replace("{n}", str(n))

    def next_tool_id(self):
        with self._cond:
            self.tool_ids += 1
            return f"toolu_standin{self.tool_ids:06d}"


def wanted_command(req):
    """The command of a tool marker in the newest user turn, or None. Claude
    2.1 may put "system" messages (its reminders) after it: they are skipped;
    a turn carrying a tool_result holds no marker text, so it gets text."""
    if "Bash" not in req.tool_names:
        return None
    turns = [m for m in req.messages if isinstance(m, dict) and m.get("role") != "system"]
    if not turns or turns[-1].get("role") != "user":
        return None
    m = TOOL_MARKER.search(texts_of(turns[-1]))
    return m.group(1) if m else None


def estimate_tokens(req):
    return max(1, len(req.raw) // 4)


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def reply_blocks(owner, req):
    """(content blocks, stop_reason) of the reply to a Messages request."""
    command = wanted_command(req)
    if command is not None:
        block = {"type": "tool_use", "id": owner.next_tool_id(), "name": "Bash",
                 "input": {"command": command, "description": "stand-in tool call"}}
        return [block], "tool_use"
    return [{"type": "text", "text": owner.next_reply(req)}], "end_turn"


def message_stream(msg_id, model, blocks, stop_reason, input_tokens):
    out = [sse("message_start", {
        "type": "message_start",
        "message": {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                    "content": [], "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                              "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0}}})]
    out_tokens = 0
    for i, block in enumerate(blocks):
        if block["type"] == "text":
            out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta",
                                                             "text": block["text"]}}))
            out_tokens += max(1, len(block["text"]) // 4)
        else:
            start = dict(block, input={})
            out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": start}))
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(
                                                                 block["input"])}}))
            out_tokens += 10
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                     "usage": {"output_tokens": out_tokens}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner = None  # set by the subclass ModelStandin.start makes

    def log_message(self, *args):
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _send(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("request-id", "req_standin")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode())

    def do_HEAD(self):
        self.owner.record(Request("HEAD", self.path, self.headers, b""))
        self._send(200, b"", "text/plain")

    def do_GET(self):
        req = Request("GET", self.path, self.headers, b"")
        self.owner.record(req)
        if req.path == "/":
            self._send(200, b"", "text/plain")
        else:
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": "stand-in: not found"}})

    def do_POST(self):
        try:
            body = self._body()
        except ValueError:
            self._send(400)
            return
        req = Request("POST", self.path, self.headers, body)
        self.owner.record(req)
        if req.path == "/v1/messages/count_tokens":
            self._json(200, {"input_tokens": estimate_tokens(req)})
        elif req.path == "/v1/messages" and isinstance(req.json, dict):
            self._messages(req)
        else:
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": "stand-in: not found"}})

    def _messages(self, req):
        if self.owner.latency:
            time.sleep(self.owner.latency)
        blocks, stop_reason = reply_blocks(self.owner, req)
        model = req.model or "standin-model"
        msg_id = f"msg_standin{len(self.owner.requests):06d}"
        tokens = estimate_tokens(req)
        if req.json.get("stream"):
            self._send(200, message_stream(msg_id, model, blocks, stop_reason, tokens),
                       "text/event-stream")
            return
        out_tokens = sum(max(1, len(b.get("text", "")) // 4) for b in blocks)
        self._json(200, {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                         "content": blocks, "stop_reason": stop_reason, "stop_sequence": None,
                         "usage": {"input_tokens": tokens, "output_tokens": out_tokens}})
