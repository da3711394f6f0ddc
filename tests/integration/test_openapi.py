"""The API as a contract: the OpenAPI 3.1 document a host serves at /api/v1/openapi.json (public,
with an ETag), the pinned linter finding no error in it, the reference page at /api/v1/docs with
its renderer from FT_DOCS_DIR, and the response check every other test runs through failing on
what the document does not describe."""
import http.client
import http.server
import json
import os
import subprocess
import tempfile
import threading

import contract
from harness import HOST_BIN, ROOT, StackTestCase, main

TOOLS = os.path.join(ROOT, "docs", "openapi")
REDOCLY = os.path.join(TOOLS, "node_modules", ".bin", "redocly")


class OpenAPI(StackTestCase):

    def test_the_document_is_public_cacheable_and_the_one_the_binary_prints(self):
        h = self.host()
        r = h.get("/api/v1/openapi.json", auth=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "application/json")
        doc = r.json()
        self.assertEqual(doc["openapi"], "3.1.0")
        printed = json.loads(subprocess.run([HOST_BIN, "openapi"], capture_output=True, check=True, timeout=60).stdout)
        self.assertEqual(doc, printed)
        etag = r.headers["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{32}"$')
        again = h.get("/api/v1/openapi.json", auth=None, headers={"If-None-Match": etag})
        self.assertEqual(again.status, 304, again)
        self.assertEqual(again.body, b"")
        other = h.get("/api/v1/openapi.json", auth=None, headers={"If-None-Match": '"0000"'})
        self.assertEqual(other.status, 200)
        print(f"openapi.json: {len(r.body)} bytes, {len(doc['paths'])} paths, "
              f"{sum(len(v) for v in doc['paths'].values())} operations")

    def test_every_route_is_documented_with_security_and_problem_responses(self):
        doc = self.host().get("/api/v1/openapi.json", auth=None).json()
        schemes = doc["components"]["securitySchemes"]
        self.assertEqual(schemes["bearerJwt"]["bearerFormat"], "JWT")
        self.assertEqual(schemes["apiKey"]["name"], "X-API-Key")
        self.assertIn("childAppKey", schemes)
        customers = doc["paths"]["/api/v1/customers"]
        self.assertEqual(customers["get"]["x-permission"], "customers:read")
        self.assertIn({"$ref": "#/components/parameters/Cursor"}, customers["get"]["parameters"])
        self.assertIn({"$ref": "#/components/parameters/IdempotencyKey"}, customers["post"]["parameters"])
        self.assertIn("legal_name", customers["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"])
        entitlements = doc["paths"]["/api/v1/instances/{id}/entitlements"]["get"]
        self.assertIn({"childAppKey": []}, entitlements["security"])
        for path, item in doc["paths"].items():
            for method, op in item.items():
                self.assertTrue(op["summary"] and op["tags"], (method, path))
                for status, resp in op["responses"].items():
                    # OFREP's evaluation errors are that protocol's own JSON
                    if int(status) >= 400 and "OfrepError" not in json.dumps(resp):
                        self.assertIn("application/problem+json", resp.get("content", {}), (method, path, status))

    def test_every_response_object_is_a_typed_model(self):
        """What a client generator needs: every object a response can carry names its properties
        and which are required, and refuses others, unless the schema says why it is open (a
        plugin's free-form output, a problem's extension members) or is a map."""
        doc = self.host().get("/api/v1/openapi.json", auth=None).json()
        loose = []

        def walk(s, where):
            if isinstance(s, list):
                for i, v in enumerate(s):
                    walk(v, f"{where}[{i}]")
                return
            if not isinstance(s, dict):
                return
            types = s.get("type") if isinstance(s.get("type"), list) else [s.get("type")]
            if "object" in types:
                said_open = "open" in s.get("description", "")
                if s.get("properties"):
                    if "required" not in s:
                        loose.append(f"{where}: no required")
                    if s.get("additionalProperties", True) is not False and not said_open:
                        loose.append(f"{where}: other properties allowed and not said why")
                elif not isinstance(s.get("additionalProperties"), dict) and not said_open:
                    loose.append(f"{where}: no properties")
            for k, v in s.items():
                if k != "example":
                    walk(v, f"{where}/{k}")

        for name, schema in doc["components"]["schemas"].items():
            walk(schema, f"#/components/schemas/{name}")
        for path, item in doc["paths"].items():
            for method, op in item.items():
                for status, resp in op["responses"].items():
                    for media, c in resp.get("content", {}).items():
                        walk(c["schema"], f"{method.upper()} {path} {status} {media}")
        self.assertEqual(loose, [])
        self.assertNotIn("Object", doc["components"]["schemas"])

    def test_every_operation_but_the_console_redirect_has_a_success(self):
        """In place of the linter's operation-2xx-response (off in redocly.yaml for GET /console)."""
        doc = self.host().get("/api/v1/openapi.json", auth=None).json()
        without = [f"{m.upper()} {p}" for p, item in doc["paths"].items() for m, op in item.items()
                   if not any(s.startswith("2") for s in op["responses"])]
        self.assertEqual(without, ["GET /console"])

    def test_the_pinned_linter_finds_no_error_and_no_warning(self):
        self.assertTrue(os.access(REDOCLY, os.X_OK), f"{REDOCLY} missing: run packaging/install-deps.sh")
        # the Node.js install-deps provides where the system's is too old comes first, as with npm exec
        env = dict(os.environ, PATH=os.path.join(TOOLS, "node_modules", ".bin") + os.pathsep + os.environ.get("PATH", ""),
                   REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=60, env=env, check=True).stdout.strip()
        with open(os.path.join(TOOLS, "node_modules", "@redocly", "cli", "package.json")) as f:
            engines = json.load(f)["engines"]["node"]
        major, minor = (int(x) for x in node.lstrip("v").split(".")[:2])
        self.assertTrue((major, minor) >= (22, 12) or (major == 20 and minor >= 19),
                        f"node {node} does not satisfy @redocly/cli's engines {engines}")
        body = self.host().get("/api/v1/openapi.json", auth=None).body
        with tempfile.NamedTemporaryFile(suffix=".json", dir=self.stack.dir) as f:
            f.write(body)
            f.flush()
            # redocly.yaml in TOOLS: the recommended rules, and why one of them is off
            p = subprocess.run([REDOCLY, "lint", "--format=summary", f.name], capture_output=True, text=True, timeout=300,
                               cwd=TOOLS, env=env)
        out = p.stdout + p.stderr
        print(f"redocly lint with node {node}")
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("Your API description is valid", out)
        self.assertNotRegex(out, r"(?m)^(error|warning) ")
        self.assertNotRegex(out, r"You have \d+ warnings?", out)

    def test_the_reference_page_and_its_renderer_come_from_the_docs_directory(self):
        h = self.host()
        r = h.get("/api/v1/docs", auth=None)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("text/html"))
        self.assertIn(b'spec-url="/api/v1/openapi.json"', r.body)
        self.assertIn(b'src="/api/v1/docs/redoc.standalone.js"', r.body)
        js = h.get("/api/v1/docs/redoc.standalone.js", auth=None)
        self.assertEqual(js.status, 200)
        self.assertTrue(js.headers["content-type"].startswith("text/javascript"))
        with open(os.path.join(TOOLS, "node_modules", "redoc", "bundles", "redoc.standalone.js"), "rb") as f:
            self.assertEqual(js.body, f.read())

        # a host whose FT_DOCS_DIR holds no renderer still serves the document, and says why the page is missing
        empty = tempfile.mkdtemp(dir=self.stack.dir)
        h2 = self.host(env={"FT_DOCS_DIR": empty})
        p = self.assertProblem(h2.get("/api/v1/docs", auth=None), 503, "docs-not-installed")
        self.assertIn(empty, p["detail"])
        self.assertProblem(h2.get("/api/v1/docs/redoc.standalone.js", auth=None), 404)
        self.assertEqual(h2.get("/api/v1/openapi.json", auth=None).status, 200)

    def test_a_response_the_document_does_not_describe_fails(self):
        h = self.host()
        contract.document(HOST_BIN)
        customer = {"id": "5f1c8a52-3c44-4e55-9a3f-0d5b7a1c2e3f", "legal_name": "Acme", "tax_id": "X1", "country": "CO",
                    "contact": {"name": None, "email": None, "phone": None}, "status": "active",
                    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        ok = json.dumps(customer).encode()
        json_ct = {"content-type": "application/json"}
        contract.check(HOST_BIN, "GET", f"/api/v1/customers/{customer['id']}", 200, json_ct, ok)
        cases = [
            (418, json_ct, ok, "status 418 is not among"),  # a status the operation does not list
            (200, {"content-type": "text/plain"}, ok, "content type"),  # another media type
            (200, json_ct, json.dumps(dict(customer, status="gone")).encode(), "does not match"),  # a body off its schema
            (200, json_ct, json.dumps({k: v for k, v in customer.items() if k != "id"}).encode(), "does not match"),
        ]
        for status, headers, body, why in cases:
            with self.assertRaises(AssertionError) as ctx:
                contract.check(HOST_BIN, "GET", f"/api/v1/customers/{customer['id']}", status, headers, body)
            self.assertIn(why, str(ctx.exception))
        with self.assertRaises(AssertionError):
            contract.check(HOST_BIN, "GET", "/api/v1/nonesuch", 200, json_ct, b"{}")
        # a client the harness does not drive goes through a checking proxy: it gets the answer all
        # the same, and the proxy keeps what the document does not describe
        class Teapot(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(418)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        upstream = http.server.HTTPServer(("127.0.0.1", 0), Teapot)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        proxy = contract.Proxy(HOST_BIN, upstream.server_address[1])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
            conn.request("GET", "/api/v1/customers")
            self.assertEqual(conn.getresponse().status, 418)
            conn.close()
        finally:
            proxy.close()
            upstream.shutdown()
            upstream.server_close()
        self.assertEqual(len(proxy.mismatches), 1, proxy.mismatches)
        self.assertIn("status 418 is not among", proxy.mismatches[0])
        # and the real thing goes through the same check
        before = contract.counts["validated"]
        self.assertEqual(h.get("/api/v1/customers").status, 200)
        self.assertEqual(contract.counts["validated"], before + 1)


if __name__ == "__main__":
    main()
