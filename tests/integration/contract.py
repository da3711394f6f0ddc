"""The API's document as a contract the integration suite holds the host to: every response a
test receives is checked against the OpenAPI document the host serves (status listed for the
operation, media type, body against the schema). A response the document does not describe
fails the test that received it.

The document is the one `farutech-host openapi` prints, the same the host serves at
/api/v1/openapi.json; body schemas are checked with python3-jsonschema (JSON Schema 2020-12,
OpenAPI 3.1's dialect).
"""
import atexit
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading

import jsonschema

_doc = None
_operations = []  # (method, compiled path regex, operation)
counts = {"validated": 0}


def document(binary):
    """The OpenAPI document of the host binary (built once per test process)."""
    global _doc
    if _doc is None:
        # with the development routes, which the tests' hosts serve
        out = subprocess.run([binary, "openapi"], capture_output=True, check=True, timeout=60,
                             env=dict(os.environ, FT_LOG_LEVEL="error", FT_DEV_ROUTES="1")).stdout
        _doc = json.loads(out)
        for path, item in _doc["paths"].items():
            rx = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$")
            for method, op in item.items():
                _operations.append((method.upper(), rx, op, path))
    return _doc


def _schema_errors(schema, value):
    # the operation's schema, with the document's components beside it so #/components/... resolves
    root = dict(schema)
    root["components"] = _doc["components"]
    validator = jsonschema.Draft202012Validator(root)
    return sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))


def check(binary, method, path, status, headers, body):
    """Raises AssertionError naming what the document does not describe about this response. With
    FT_OPENAPI_CHECK=log:FILE it appends that to FILE instead, so one run lists every mismatch."""
    log = os.environ.get("FT_OPENAPI_CHECK", "")
    if not log.startswith("log:"):
        return _check(binary, method, path, status, headers, body)
    try:
        _check(binary, method, path, status, headers, body)
    except AssertionError as e:
        with open(log[4:], "a") as f:
            f.write(str(e).replace("\n", " ") + "\n")


def _check(binary, method, path, status, headers, body):
    document(binary)
    path = path.split("?", 1)[0]
    where = f"{method} {path} -> {status}"
    head = method == "HEAD"
    method = "GET" if head else method
    ops = [(m, op, p) for m, rx, op, p in _operations if rx.match(path)]
    media = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if _router_answer(method, ops, status, media, body, headers):
        counts["validated"] += 1
        return
    if not ops or not any(m == method for m, _, _ in ops):
        raise AssertionError(f"{where}: not an operation of the OpenAPI document, and not the router's own answer")
    op, template = next((op, p) for m, op, p in ops if m == method)
    resp = op["responses"].get(str(status))
    if resp is None:
        raise AssertionError(f"{where}: status {status} is not among {template}'s documented responses "
                             f"{sorted(op['responses'])}; body: {body[:300]!r}")
    content = resp.get("content")
    if not content:
        if body:
            raise AssertionError(f"{where}: the document says no body, the host sent {body[:200]!r}")
    elif not head or body:
        if media not in content:
            raise AssertionError(f"{where}: content type {media!r}, the document lists {sorted(content)}")
        if media.endswith("json"):
            _check_body(where, content[media]["schema"], body)
    counts["validated"] += 1


def check_raw(binary, method, path, head, body):
    """check() for a response read off a raw socket (a test that writes HTTP by hand): head is the
    status line and the header lines, as bytes, body the (de-chunked) body."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
    check(binary, method, path, int(lines[0].split()[1]), headers, body)


def check_value(binary, schema_name, value, where):
    """Raises AssertionError if value does not match the document's component schema_name: for
    what a response carries inside another format (the JSON of a server-sent event)."""
    document(binary)
    if schema_name not in _doc["components"]["schemas"]:
        raise AssertionError(f"{where}: the document has no schema {schema_name}")
    errors = _schema_errors({"$ref": f"#/components/schemas/{schema_name}"}, value)
    if errors:
        e = errors[0]
        at = "/" + "/".join(str(p) for p in e.absolute_path)
        raise AssertionError(f"{where}: {schema_name} does not match the document at {at}: {e.message}")
    counts["validated"] += 1


class Proxy:
    """A loopback HTTP proxy in front of a host that checks every response passing through it,
    for a client the harness does not drive (the CLI). An event stream passes through as it
    comes, its status and media type checked. What the document does not describe is kept in
    mismatches (the client still gets the host's answer), for the test to assert on."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade", "proxy-connection"}

    def __init__(self, binary, port):
        self.mismatches = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                n = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in Proxy.HOP}
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    r = conn.getresponse()
                except (OSError, http.client.HTTPException):
                    self.close_connection = True  # as the host's own failure would look
                    conn.close()
                    return
                got = {k.lower(): v for k, v in r.getheaders()}
                self.send_response_only(r.status, r.reason)
                for k, v in r.getheaders():
                    if k.lower() not in Proxy.HOP:
                        self.send_header(k, v)
                if got.get("content-type", "").startswith("text/event-stream"):
                    proxy.check(self.command, self.path, r.status, got, b"")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        while data := r.read1(65536):
                            self.wfile.write(data)
                            self.wfile.flush()
                    except (OSError, http.client.HTTPException):
                        pass
                else:
                    data = r.read()
                    proxy.check(self.command, self.path, r.status, got, data)
                    if r.status not in (204, 304):
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data if self.command != "HEAD" else b"")
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = forward

        self.binary = binary
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def check(self, method, path, status, headers, body):
        try:
            check(self.binary, method, path, status, headers, body)
        except AssertionError as e:
            self.mismatches.append(str(e))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _router_answer(method, ops, status, media, body, headers):
    """The router's answers for any path, which the document's description states once: 404 for
    a path it does not serve (also a development route on a host without them), 405 for a method
    a path does not accept, and 204 with Allow to OPTIONS on a path it serves."""
    if method == "OPTIONS":
        return bool(ops) and status == 204 and not body and "allow" in headers
    if status not in (404, 405) or media != "application/problem+json":
        return False
    slug = json.loads(body).get("type", "").rsplit("/", 1)[-1]
    if status == 404 and slug == "not-found":
        return True
    return status == 405 and slug == "method-not-allowed" and bool(ops) and "allow" in headers


def _check_body(where, schema, body):
    try:
        value = json.loads(body)
    except ValueError as e:
        raise AssertionError(f"{where}: body is not JSON ({e}): {body[:200]!r}") from None
    errors = _schema_errors(schema, value)
    if errors:
        e = errors[0]
        at = "/" + "/".join(str(p) for p in e.absolute_path)
        raise AssertionError(f"{where}: body does not match the document at {at}: {e.message}; body: {body[:400]!r}")


@atexit.register
def _report():
    """Prints the count, and adds it to openapi-validated.txt in the build directory (one line per
    test module: name and count), where a whole run's total can be summed."""
    if not counts["validated"]:
        return
    print(f"openapi: {counts['validated']} responses validated against the document", file=sys.stderr)
    build = os.environ.get("FT_BUILD_DIR")
    if build and os.path.isdir(build):
        module = os.path.splitext(os.path.basename(sys.argv[0]))[0]
        with open(os.path.join(build, "openapi-validated.txt"), "a") as f:
            f.write(f"{module} {counts['validated']}\n")
