"""Foundation: operational endpoints, error shapes, request ids and logs, readiness against a
real nats-server, graceful drain on SIGTERM, configuration errors."""
import os
import re
import signal
import socket
import time

import contract
from fixtures import customer
from harness import HOST_BIN, LISTENING, OPENAPI_CHECK, StackTestCase, in_thread, main, wait_until


class Foundation(StackTestCase):

    def test_health_is_alive_json(self):
        h = self.host()
        r = h.get("/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"status": "ok"})

    def test_ready_reports_each_dependency(self):
        h = self.host()
        r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(h.get("/ready")), 60, what="ready")
        body = r.json()
        self.assertEqual(body["status"], "ready")
        self.assertEqual(body["checks"], {"database": "ok", "migrations": "ok", "nats": "ok", "jetstream": "ok"})

    def test_metrics_count_requests_by_route_and_status_with_latency_histogram(self):
        h = self.host()
        for _ in range(3):
            h.get("/health")
        h.get("/does-not-exist")

        def counted():  # a request is counted once its response is sent, which may be just after the client has it
            r = h.get("/metrics")
            text = r.body.decode()
            m = re.search(r'^ft_http_requests_total\{method="GET",route="/health",status="200"\} (\d+)$', text, re.M)
            return r if m and int(m.group(1)) >= 3 and 'route="unmatched",status="404"' in text else None
        r = wait_until(counted, 30, what="the requests to be counted")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"))
        text = r.body.decode()
        self.assertRegex(text, r'(?m)^ft_http_requests_total\{method="",route="unmatched",status="404"\} 1$')
        self.assertRegex(text, r'(?m)^ft_http_request_duration_seconds_bucket\{method="GET",route="/health",status="200",le="\+Inf"\} \d+$')
        self.assertRegex(text, r'(?m)^ft_http_request_duration_seconds_sum\{method="GET",route="/health",status="200"\} [0-9.]+$')
        self.assertRegex(text, r'(?m)^ft_build_info\{version="[^"]+",commit="[^"]+"\} 1$')
        self.assertRegex(text, r'(?m)^ft_uptime_seconds [0-9.]+$')
        # every sample line parses as name{labels} value
        for line in text.splitlines():
            if line and not line.startswith("#"):
                self.assertRegex(line, r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eEInf]+$')

    def test_unknown_route_is_404_problem(self):
        h = self.host()
        p = self.assertProblem(h.get("/api/v1/nothing-here"), 404, "not-found")
        self.assertEqual(p["instance"], "/api/v1/nothing-here")
        self.assertIn("/api/v1/nothing-here", p["detail"])

    def test_wrong_method_is_405_problem_with_allow(self):
        h = self.host()
        r = h.request("DELETE", "/health")
        p = self.assertProblem(r, 405, "method-not-allowed")
        self.assertEqual(r.headers["allow"], "GET, HEAD")
        self.assertIn("DELETE", p["detail"])

    def test_options_lists_allowed_methods(self):
        h = self.host()
        r = h.request("OPTIONS", "/ready")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["allow"], "GET, HEAD")

    def test_head_answers_headers_without_body(self):
        h = self.host()
        r = h.request("HEAD", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers["content-length"], "15")

    def test_body_over_limit_is_413_problem(self):
        h = self.host(env={"FT_DEV_ROUTES": "true", "FT_MAX_BODY_BYTES": "4KiB"})
        r = h.post("/api/v1/_dev/echo", body=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"})
        p = self.assertProblem(r, 413, "body-too-large")
        self.assertIn("4096", p["detail"])
        self.assertTrue(r.headers.get("x-request-id"))
        # a body under the limit still goes through
        r = h.post("/api/v1/_dev/echo", body={"small": True})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"echo": {"small": True}})

    def test_chunked_body_over_limit_is_413_problem(self):
        h = self.host(env={"FT_DEV_ROUTES": "true", "FT_MAX_BODY_BYTES": "1KiB"})
        s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        chunk = b"x" * 2048
        s.sendall(b"POST /api/v1/_dev/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n")
        data = b""
        while True:
            part = s.recv(65536)
            if not part:
                break
            data += part
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        if OPENAPI_CHECK:
            contract.check_raw(HOST_BIN, "POST", "/api/v1/_dev/echo", head, body)
        self.assertIn(b" 413 ", head.split(b"\r\n")[0])
        self.assertIn(b"content-type: application/problem+json", head.lower())
        self.assertIn(b'"status":413', body)

    def test_malformed_json_is_400_problem_with_position(self):
        h = self.host(env={"FT_DEV_ROUTES": "true"})
        r = h.post("/api/v1/_dev/echo", body=b'{"a": 1,,}', headers={"Content-Type": "application/json"})
        p = self.assertProblem(r, 400, "malformed-json")
        self.assertEqual(p["line"], 1)
        self.assertGreater(p["column"], 0)

    def test_json_body_must_be_an_object_with_json_content_type(self):
        h = self.host(env={"FT_DEV_ROUTES": "true"})
        self.assertProblem(h.post("/api/v1/_dev/echo", body=b"[1,2]", headers={"Content-Type": "application/json"}), 400,
                           "invalid-body")
        self.assertProblem(h.post("/api/v1/_dev/echo", body=b'{"a":1}', headers={"Content-Type": "text/plain"}), 415,
                           "unsupported-media-type")
        self.assertProblem(h.post("/api/v1/_dev/echo", body=b"", headers={"Content-Type": "application/json"}), 400,
                           "missing-body")
        self.assertProblem(h.post("/api/v1/_dev/echo", body=b'{"a":1,"a":2}', headers={"Content-Type": "application/json"}),
                           400, "malformed-json")

    def test_dev_routes_are_off_by_default(self):
        h = self.host()
        self.assertProblem(h.get("/api/v1/_dev/sleep?ms=1"), 404)

    def test_request_id_is_echoed_when_valid_and_generated_otherwise(self):
        h = self.host()
        r = h.get("/health", headers={"X-Request-Id": "abc-123_XYZ.9"})
        self.assertEqual(r.headers["x-request-id"], "abc-123_XYZ.9")
        r = h.get("/health", headers={"X-Request-Id": "bad id with spaces\"quote"})
        gen = r.headers["x-request-id"]
        self.assertRegex(gen, r"^[0-9a-f]{32}$")
        r = h.get("/health", headers={"X-Request-Id": "x" * 129})
        self.assertRegex(r.headers["x-request-id"], r"^[0-9a-f]{32}$")
        r2 = h.get("/health")
        self.assertNotEqual(r2.headers["x-request-id"], gen)
        p = h.get("/missing", headers={"X-Request-Id": "trace-me-1"}).json()
        self.assertEqual(p["request_id"], "trace-me-1")

    def test_one_json_log_line_per_request(self):
        h = self.host()
        h.get("/health", headers={"X-Request-Id": "log-line-check"})
        line = wait_until(lambda: next((l for l in h.log_lines() if l.get("request_id") == "log-line-check"), None), 30,
                          what="access log line")
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["method"], "GET")
        self.assertEqual(line["route"], "/health")
        self.assertEqual(line["status"], 200)
        self.assertIsInstance(line["duration_ms"], float)
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_readiness_turns_503_when_nats_stops_and_200_after_restart(self):
        h = self.host()
        wait_until(lambda: h.get("/ready").status == 200, 60, what="ready")
        self.stack.stop_nats()
        try:
            r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(h.get("/ready")), 60, what="503")
            p = self.assertProblem(r, 503, "not-ready")
            self.assertIn("nats", p["detail"])
            self.assertNotEqual(p["checks"]["nats"], "ok")
            self.assertEqual(p["checks"]["database"], "ok")
            self.assertEqual(r.headers.get("retry-after"), "1")
            self.assertEqual(h.get("/health").status, 200)  # alive while not ready
        finally:
            self.stack.start_nats()
        r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(h.get("/ready")), 60, what="ready again")
        self.assertEqual(r.json()["checks"]["nats"], "ok")
        self.assertEqual(r.json()["checks"]["jetstream"], "ok")

    def test_nats_url_list_connects_to_the_server_that_answers(self):
        # a cluster's members as FT_NATS_URL lists them: two addresses nothing listens on around
        # the one server there is
        dead = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            dead.append(f"nats://127.0.0.1:{s.getsockname()[1]}")
            s.close()
        h = self.host(env={"FT_NATS_URL": ",".join([dead[0], self.stack.nats_url, dead[1]])})
        r = wait_until(lambda: (lambda x: x if x.status == 200 else None)(h.get("/ready")), 60, what="ready")
        self.assertEqual(r.json()["checks"]["nats"], "ok")
        self.assertEqual(r.json()["checks"]["jetstream"], "ok")

    def test_an_api_host_stays_ready_and_takes_writes_while_nats_is_down_and_a_relay_does_not(self):
        db = self.stack.create_database()
        api = self.host(dbname=db, env={"FT_ROLES": "api"})
        relay = self.host(dbname=db, env={"FT_ROLES": "relay"})
        wait_until(lambda: api.get("/ready").status == 200 and relay.get("/ready").status == 200, 60, what="both ready")
        self.stack.stop_nats()
        try:
            r = wait_until(lambda: (lambda x: x if x.json()["checks"]["nats"] != "ok" else None)(api.get("/ready")), 60,
                           what="the api host to see NATS gone")
            self.assertEqual(r.status, 200, r)  # it only writes the outbox: a load balancer keeps it
            self.assertEqual(r.json()["status"], "ready")
            c = customer(api)  # 201: written with its event to the outbox, which waits for NATS
            unpublished = ("SELECT count(*) FROM ft_outbox JOIN ft_outbox_pending USING (seq)"
                           f" WHERE aggregate_id = '{c['id']}'")
            self.assertEqual(self.stack.psql(unpublished, db), "1")
            p = self.assertProblem(wait_until(lambda: (lambda x: x if x.status == 503 else None)(relay.get("/ready")), 60,
                                              what="the relay to be not ready"), 503, "not-ready")
            self.assertIn("nats", p["detail"])
        finally:
            self.stack.start_nats()
        wait_until(lambda: relay.get("/ready").status == 200, 60, what="the relay ready again")
        wait_until(lambda: self.stack.psql(unpublished, db) == "0", 60, what="the customer's event published")

    def test_sigterm_lets_a_slow_request_finish_then_exits_0(self):
        h = self.host(env={"FT_DEV_ROUTES": "true"})
        h.admin_key  # made now, not inside the request's thread
        started = time.monotonic()
        join = in_thread(lambda: (h.get("/api/v1/_dev/sleep?ms=3000"), time.monotonic()))
        # the request is in flight once its pg_sleep runs in the database
        wait_until(lambda: self.stack.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                           " AND query LIKE 'SELECT pg_sleep%' AND pid <> pg_backend_pid()", h.dbname) == "1",
                   60, what="the slow request's pg_sleep")
        h.proc.send_signal(signal.SIGTERM)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", h.port), timeout=5).close()
            except ConnectionRefusedError:
                return time.monotonic()
            return None
        # no new connections are accepted while draining
        refused_at = wait_until(refused, 30, interval=0.02, what="the listener to close")
        with self.assertRaises(OSError):
            h.get("/health", timeout=5)
        r, answered_at = join()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"slept_ms": 3000})
        self.assertLess(refused_at, answered_at)  # the drain began while the request was in flight
        self.assertGreaterEqual(time.monotonic() - started, 3.0)
        self.assertEqual(h.wait_exit(60), 0)
        h.assert_clean()
        self.assertTrue(any(l.get("msg") == "stopped" for l in h.log_lines()))

    def test_sigterm_exits_promptly_when_idle(self):
        h = self.host()
        t = time.monotonic()
        self.assertEqual(h.terminate(), 0)
        self.assertLess(time.monotonic() - t, 5)

    def test_invalid_configuration_names_each_bad_value(self):
        h = self.host(start=False, env={"FT_THREADS": "lots", "FT_HTTP_LISTEN": "localhost", "FT_ROLES": "api,web"})
        h.start(wait=False)
        self.assertEqual(h.wait_exit(30), 2)
        out = h.output()
        self.assertIn("FT_THREADS=lots (from environment)", out)
        self.assertIn("FT_HTTP_LISTEN=localhost (from environment)", out)
        self.assertIn("FT_ROLES=api,web (from environment)", out)

    def test_config_file_is_read_and_environment_wins(self):
        path = os.path.join(self.stack.dir, "host.env")
        with open(path, "w") as f:
            f.write("FT_MAX_BODY_BYTES=2KiB\nFT_DEV_ROUTES=true\nFT_THREADS=1\n")
        h = self.host(env={"FT_CONFIG": path, "FT_THREADS": "2"})
        r = h.post("/api/v1/_dev/echo", body=b"{" + b" " * 3000 + b"}", headers={"Content-Type": "application/json"})
        self.assertProblem(r, 413)
        self.assertTrue(any("with 2 threads" in l.get("msg", "") for l in h.log_lines()))

    def refused(self, port, env=None):
        """A host started on 127.0.0.1:port that must refuse: exits 2 without having listened;
        returns its output."""
        h = self.host(start=False, env={"FT_HTTP_LISTEN": f"127.0.0.1:{port}", **(env or {})})
        h.start(wait=False)
        self.assertEqual(h.wait_exit(60), 2, h.output())
        out = h.output()
        self.assertIn(f"refusing to start: 127.0.0.1:{port} is already in use by ", out)
        self.assertIn("each host needs an address of its own", out)
        self.assertFalse(any(LISTENING.match(l.get("msg", "")) for l in h.log_lines()), out)
        return out

    def test_address_held_without_reuseport_refuses_to_start(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            out = self.refused(s.getsockname()[1])
            self.assertIn(f"in use by pid {os.getpid()} (", out)

    def test_address_held_by_a_reuseport_socket_refuses_to_start(self):
        # SO_REUSEPORT, same user: the kernel would let the host bind beside this socket
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            s.bind(("127.0.0.1", 0))
            s.listen()
            out = self.refused(s.getsockname()[1], env={"FT_THREADS": "4"})
            self.assertIn(f"in use by pid {os.getpid()} (", out)

    def test_second_host_on_a_running_hosts_port_exits_2_and_the_first_serves_everything(self):
        first = self.host()
        port = first.port
        out = self.refused(port)
        self.assertIn(f"in use by pid {first.proc.pid} (farutech-host)", out)
        # every new connection still reaches the first host: none was taken by the second
        ids = [f"portguard-{i}" for i in range(200)]
        for rid in ids:
            self.assertEqual(first.get("/health", headers={"X-Request-Id": rid}).status, 200)

        def all_logged():
            seen = {l.get("request_id") for l in first.log_lines() if l.get("msg") == "request"}
            return set(ids) <= seen
        wait_until(all_logged, 30, what="the first host to log all 200 requests")
        self.assertEqual(first.terminate(), 0)

    def test_several_loop_threads_share_a_port_picked_by_the_kernel(self):
        h = self.host(threads=4)
        self.assertTrue(any(re.match(r"listening on http://127\.0\.0\.1:\d+ with 4 threads", l.get("msg", ""))
                            for l in h.log_lines()))
        for _ in range(20):
            self.assertEqual(h.get("/health").status, 200)
        self.assertEqual(h.terminate(), 0)

    def test_address_that_cannot_be_bound_keeps_its_error(self):
        h = self.host(start=False, env={"FT_HTTP_LISTEN": "192.0.2.1:8080"})  # TEST-NET-1: on no interface here
        h.start(wait=False)
        self.assertEqual(h.wait_exit(30), 1)
        self.assertIn("cannot listen on 192.0.2.1:8080: Cannot assign requested address", h.output())

if __name__ == "__main__":
    main()
