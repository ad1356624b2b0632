#!/usr/bin/env python3
"""A counting HTTP proxy on loopback, in front of a moto server, for benches/peers.sh.

Every request is forwarded to moto as it came and its answer sent back; each one is counted by
AWS service (from the SigV4 credential scope of the Authorization header) and operation (the
`X-Amz-Target` header of the JSON protocols, or the `Action` field of the query protocol's form).
`--latency-ms N` holds every forwarded request N ms before it is sent, to model the round trip to
a real AWS endpoint; requests are served on threads of their own, so concurrent calls overlap
their latency as they would on a network.

Control paths, answered by the proxy itself (never counted, never delayed):
  GET  /__proxy/counts   {"total": N, "errors": N, "by_operation": {"ecs:StopTask": 1, ...},
                         "calls": [[ms since reset, ms to answer, "ecs:StopTask", 200], ...]}
  POST /__proxy/reset    zero the counts

    python3 proxy.py --upstream http://127.0.0.1:5000 --port 0 --port-file FILE [--latency-ms 50]

`--aws-like` gives AWS's answer where moto differs in a way a teardown depends on: DeleteStack of a
stack one of whose resources was already deleted (the workshop's cleanup deletes the repository
before the stack). AWS accepts it and counts the resource as deleted; moto deletes the rest, drops
the stack and answers with that resource's error. The same rule as the tests'
(tests/it/support/aws_like.rs, `DeleteStackAsAws`). scripts/demo uses it.

`--enis-in-use-seconds N` holds network interfaces as AWS holds a deleted Lambda function's (for
20 to 45 minutes): for N seconds from the first DeleteNetworkInterface, every one is refused with
InvalidNetworkInterface.InUse, unsent to moto (the tests' `InterfacesInUse` rule, by time). The demo
uses it so that a wait, and its countdown, shows.

Only loopback: it listens on 127.0.0.1 and refuses an upstream that is not 127.0.0.1/localhost.
"""

import argparse
import http.client
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
# Error codes of a stack's resources that moto answers DeleteStack with when teardown deleted that
# resource first (tests/it/support/faults.rs, ALREADY_GONE_CODES).
ALREADY_GONE = (
    b"RepositoryNotFoundException",
    b"ResourceNotFoundException",
    b"ClusterNotFoundException",
    b"NoSuchEntity",
    b"DBInstanceNotFound",
    b"DBSubnetGroupNotFoundFault",
    b"InvalidGroup.NotFound",
    b"InvalidSubnetID.NotFound",
    b"InvalidVpcID.NotFound",
)
DELETE_STACK_OK = (
    b'<DeleteStackResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/">'
    b"<ResponseMetadata><RequestId>aws-like-delete-stack</RequestId></ResponseMetadata>"
    b"</DeleteStackResponse>"
)
ENI_IN_USE = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
    b"<Code>InvalidNetworkInterface.InUse</Code>"
    b"<Message>Interface is in use by a Lambda function that is being deleted</Message>"
    b"</Error></Errors><RequestID>aws-like-eni-in-use</RequestID></Response>"
)
SCOPE = re.compile(r"Credential=[^/]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request")


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.since = time.monotonic()
            self.total = 0
            self.errors = 0
            self.by_operation = {}
            self.calls = []

    def add(self, operation, status, started, finished):
        with self.lock:
            self.total += 1
            self.errors += 1 if status >= 400 else 0
            self.by_operation[operation] = self.by_operation.get(operation, 0) + 1
            self.calls.append(
                [
                    round((started - self.since) * 1000, 1),
                    round((finished - started) * 1000, 1),
                    operation,
                    status,
                ]
            )

    def snapshot(self):
        with self.lock:
            return {
                "total": self.total,
                "errors": self.errors,
                "by_operation": dict(sorted(self.by_operation.items())),
                # [ms since the reset when the request arrived, ms until answered, op, status]
                "calls": sorted(self.calls),
            }


def operation_of(headers, body, path):
    """`service:Operation` of one AWS request, as far as the request says."""
    match = SCOPE.search(headers.get("Authorization", ""))
    service = match.group(1) if match else "?"
    target = headers.get("X-Amz-Target")
    if target:
        # e.g. AmazonEC2ContainerServiceV20141113.StopTask, secretsmanager.DeleteSecret
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    fields = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    if "form-urlencoded" in headers.get("Content-Type", "") and body:
        fields.update(urllib.parse.parse_qs(body.decode("utf-8", "replace")))
    if "Action" in fields:
        return f"{service}:{fields['Action'][0]}"
    # A REST protocol (Lambda, ...): the method and path are all there is.
    return f"{service}:{headers.get('X-Amz-Target') or ''}{path.split('?', 1)[0]}"


def make_handler(upstream, latency, counts, aws_like=False, enis_in_use=0.0):
    host, port = upstream
    local = threading.local()
    # When the first DeleteNetworkInterface came (the interfaces are held from then on).
    held_since = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer, sent at once: headers and body in separate small writes meet the
        # client's delayed ACK (Nagle), which holds every answer on a kept-alive connection ~40 ms.
        disable_nagle_algorithm = True
        wbufsize = 1 << 20

        def log_message(self, *args):
            pass

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def answer(self, status, body, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def forward(self, body):
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            for attempt in range(2):
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection(host, port, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    return response, response.read()
                except (http.client.HTTPException, ConnectionError, OSError):
                    conn.close()
                    local.conn = None
                    if attempt == 1:
                        raise

        def handle_any(self):
            body = self.read_body()
            if self.path.startswith("/__proxy/"):
                if self.path == "/__proxy/counts":
                    return self.answer(200, json.dumps(counts.snapshot()).encode())
                if self.path == "/__proxy/reset" and self.command == "POST":
                    counts.reset()
                    return self.answer(200, b"{}")
                return self.answer(404, b'{"error":"unknown control path"}')
            counted = not self.path.startswith("/moto-api/")
            started = time.monotonic()
            if counted and latency > 0:
                time.sleep(latency)
            if counted and enis_in_use > 0:
                op = operation_of(self.headers, body, self.path)
                if op.endswith(":DeleteNetworkInterface"):
                    if not held_since:
                        held_since.append(started)
                    if started - held_since[0] < enis_in_use:
                        counts.add(op, 400, started, time.monotonic())
                        return self.answer(400, ENI_IN_USE, "text/xml")
            try:
                response, payload = self.forward(body)
            except Exception as e:  # moto gone: say so to the client, count it as an error
                if counted:
                    op = operation_of(self.headers, body, self.path)
                    counts.add(op, 502, started, time.monotonic())
                return self.answer(502, json.dumps({"proxy_error": str(e)}).encode())
            op = operation_of(self.headers, body, self.path)
            if counted:
                counts.add(op, response.status, started, time.monotonic())
            if (
                aws_like
                and op.endswith(":DeleteStack")
                and response.status >= 400
                and any(code in payload for code in ALREADY_GONE)
            ):
                return self.answer(200, DELETE_STACK_OK, "text/xml")
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any

    return Handler


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="moto's endpoint, http://127.0.0.1:PORT")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    parser.add_argument("--port-file", help="write the port listened on to this file")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every call")
    parser.add_argument("--aws-like", action="store_true", help="AWS's answer to DeleteStack (above)")
    parser.add_argument(
        "--enis-in-use-seconds", type=float, default=0.0,
        help="refuse DeleteNetworkInterface as in use for this long after the first one (above)",
    )
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.hostname not in ("127.0.0.1", "localhost"):
        sys.exit(f"refusing: the upstream must be on loopback, not {args.upstream}")
    handler = make_handler(
        (upstream.hostname, upstream.port or 80),
        args.latency_ms / 1000.0,
        Counts(),
        args.aws_like,
        args.enis_in_use_seconds,
    )
    server = Server(("127.0.0.1", args.port), handler)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
