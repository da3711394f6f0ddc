"""Shared harness for integration tests: a private PostgreSQL + nats-server stack started by
packaging/stack.sh on free loopback ports, and real farutech-host processes driven over HTTP.

Every test module gets its own stack (so tests that stop nats-server disturb nobody) and every
host gets its own database unless told otherwise, so tests can run in any order and in parallel.
"""
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FT_BUILD_DIR", os.path.join(ROOT, "build", "test"))
HOST_BIN = os.path.join(BUILD, "host", "farutech-host")
STACK = os.path.join(ROOT, "packaging", "stack.sh")
PRODUCTS_DIR = os.path.join(BUILD, "products")
LISTENING = re.compile(r"listening on http://\S+:(\d+) ")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - connection errors while things come up
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run(*args, timeout=300, **kw):
    """Runs a command to its end and returns its standard output; fails the caller, showing the
    command's output, if it exits non-zero."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {p.returncode}:\n{p.stdout[-4000:]}{p.stderr[-4000:]}")
    return p.stdout


class Stack:
    """A private PostgreSQL cluster and nats-server under a temporary directory."""

    def __init__(self, name):
        base = os.path.join(BUILD, "test-stacks")
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=base)
        os.chmod(self.dir, 0o755)
        self.admin_keys = {}  # database name -> a platform-admin API key
        self.env = dict(os.environ)
        self.env.update({"FT_VAR_DIR": self.dir, "FT_PG_FAST": "1"})
        self._pick_ports()
        self.urls = {}

    def _pick_ports(self):
        for name in ("FT_PG_PORT", "FT_NATS_PORT", "FT_NATS_MONITOR_PORT"):
            self.env[name] = str(free_port())

    def _run(self, *args):
        out = subprocess.run([STACK, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"stack.sh {' '.join(args)} failed ({out.returncode}):\n{out.stderr}")
        return out.stdout

    def start(self):
        # a free port is only free when chosen: another process may bind it before the server
        # does, so a start that finds its port taken is tried again on other ports
        for attempt in range(3):
            try:
                out = self._run("start")
                break
            except RuntimeError as e:
                if attempt == 2 or "already in use" not in str(e).lower():
                    raise
                try:
                    self._run("stop")
                except RuntimeError:
                    pass
                self._pick_ports()
        for line in out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.urls[k] = v
        return self

    def stop(self, keep=False):
        try:
            self._run("stop")
        finally:
            if not keep and os.environ.get("FT_KEEP_STACKS") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)

    def stop_nats(self):
        self._run("stop-nats")

    def start_nats(self):
        self._run("start-nats")

    @property
    def database_url(self):
        return self.urls["FT_DATABASE_URL"]

    @property
    def nats_url(self):
        return self.urls["FT_NATS_URL"]

    def url_for(self, dbname):
        base, _, _ = self.database_url.rpartition("/")
        return f"{base}/{dbname}"

    def psql(self, sql, dbname="farutech"):
        out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", self.url_for(dbname), "-c", sql],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr}")
        return out.stdout.strip()

    def create_database(self):
        name = "t_" + secrets.token_hex(6)
        self.psql(f"CREATE DATABASE {name}")
        return name


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Host:
    """One farutech-host process with its own database (unless dbname is given); binary: another
    farutech-host than the build tree's (an installed or unpacked one)."""

    def __init__(self, stack, env=None, dbname=None, migrations_dir=None, threads=2, binary=None):
        self.stack = stack
        self.binary = binary or HOST_BIN
        self.dbname = dbname or stack.create_database()
        self._port = None
        self.dir = tempfile.mkdtemp(prefix="host-", dir=stack.dir)
        self.env = dict(os.environ)
        self.env.update({
            # the host picks a free port itself and logs it: a port chosen here and bound later
            # could be taken in between by any process on the machine
            "FT_HTTP_LISTEN": "127.0.0.1:0",
            "FT_DATABASE_URL": stack.url_for(self.dbname),
            "FT_NATS_URL": stack.nats_url,
            "FT_THREADS": str(threads),
            "FT_READY_INTERVAL_MS": "200",
            "FT_LOG_LEVEL": "debug",
            # functional tests drive bursts from one address and one credential; the
            # security tests set limits of their own
            "FT_RATE_LIMIT_RPS": "0",
            "FT_RATE_LIMIT_IP_RPS": "0",
            "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        })
        if migrations_dir:
            self.env["FT_MIGRATIONS_DIR"] = migrations_dir
        self.env.update(env or {})
        self.proc = None
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")

    def start(self, wait=True, args=()):
        self._port = None
        self.stdout = open(self.stdout_path, "wb")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, *args], env=self.env, stdout=self.stdout, stderr=self.stderr)
        if wait:
            def up():
                if self.proc.poll() is not None:
                    raise AssertionError(f"host exited with {self.proc.returncode}:\n{self.output()}")
                return self.get("/health").status == 200
            wait_until(up, 60, what="host /health")
        return self

    @property
    def port(self):
        """The HTTP port, from the host's "listening on" line (waits for it)."""
        if self._port is None:
            def listening():
                for line in self.log_lines():
                    m = LISTENING.match(line.get("msg", ""))
                    if m:
                        return int(m.group(1))
                if self.proc is None or self.proc.poll() is not None:
                    raise AssertionError(f"host is not serving HTTP:\n{self.output() if self.proc else 'never started'}")
                return None
            self._port = wait_until(listening, 60, interval=0.05, what="the host to listen")
        return self._port

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stdout.close()
            self.stderr.close()

    def terminate(self, timeout=60):
        """SIGTERM and wait; returns the exit code. Fails the caller on sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        self.assert_clean()
        return code

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.wait_exit()

    def output(self):
        with open(self.stdout_path, "rb") as f:
            out = f.read().decode(errors="replace")
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode(errors="replace")
        return out + err

    def log_lines(self):
        lines = []
        with open(self.stdout_path, "rb") as f:
            for raw in f.read().decode(errors="replace").splitlines():
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    pass
        return lines

    def assert_clean(self):
        text = self.output()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                raise AssertionError(f"sanitizer report in host output:\n{text[-6000:]}")

    def cli(self, *args, stdin=None, env=None):
        """Runs farutech-host with args against this host's database; returns (code, stdout, stderr)."""
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([self.binary, *args], env=e, input=stdin, capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def make_key(self, *roles, name="tests", customer=None, instance=None):
        """A new API key made with the create-api-key command (roles default: platform-admin)."""
        args = ["create-api-key", "--name", name]
        for r in roles or ("platform-admin",):
            args += ["--role", r]
        if customer:
            args += ["--customer", customer]
        if instance:
            args += ["--instance", instance]
        code, out, err = self.cli(*args)
        if code != 0:
            raise AssertionError(f"create-api-key failed ({code}): {err}")
        return out.strip()

    @property
    def admin_key(self):
        """A platform-admin API key for this host's database, made on first use and shared by
        every host on that database."""
        keys = self.stack.admin_keys
        if self.dbname not in keys:
            keys[self.dbname] = self.make_key("platform-admin", name="test harness")
        return keys[self.dbname]

    def request(self, method, path, body=None, headers=None, timeout=30, auth="admin"):
        """auth: "admin" (the harness's platform-admin key, for /api and /ofrep paths), None (no
        credential), or a credential to send as a Bearer token."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if auth == "admin":
                if (path.startswith("/api/") or path.startswith("/ofrep/")) and "Authorization" not in hdrs and "X-API-Key" not in hdrs:
                    hdrs["Authorization"] = "Bearer " + self.admin_key
            elif auth is not None:
                hdrs["Authorization"] = "Bearer " + auth
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            try:
                conn.request(method, path, body=body, headers=hdrs)
            except ConnectionRefusedError as e:
                raise ConnectionRefusedError(e.errno, f"{e.strerror} on port {self.port}: {self.state()}") from e
            r = conn.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            conn.close()

    def state(self):
        """Whether the process still runs, and its last log lines: what a refused connection needs."""
        code = self.proc.poll() if self.proc else None
        last = " | ".join(str(line.get("msg")) for line in self.log_lines()[-5:])
        return f"host {'exited with ' + str(code) if code is not None else 'running'}; last log lines: {last}"

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)


class StackTestCase(unittest.TestCase):
    """A test case class whose module shares one stack; hosts started via self.host() are
    terminated (and checked for sanitizer reports) after each test."""

    stack = None

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(cls.__name__.lower()).start()

    @classmethod
    def tearDownClass(cls):
        if cls.stack:
            cls.stack.stop()

    def setUp(self):
        self._hosts = []

    def tearDown(self):
        for h in self._hosts:
            if h.proc and h.proc.poll() is None:
                h.terminate()
            else:
                h.assert_clean()

    def host(self, start=True, **kw):
        h = Host(self.stack, **kw)
        self._hosts.append(h)
        if start:
            h.start()
        return h

    def assertProblem(self, resp, status, type_suffix=None):
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.headers.get("content-type", "").startswith("application/problem+json"), resp.headers)
        p = resp.json()
        self.assertEqual(p["status"], status)
        self.assertTrue(p["title"])
        self.assertTrue(p["type"].startswith("https://"), p)
        if type_suffix:
            self.assertTrue(p["type"].endswith("/" + type_suffix), p["type"])
        self.assertIn("detail", p)
        return p


class ProductsTestCase(StackTestCase):
    """A StackTestCase whose hosts load the first-party products."""

    def host(self, start=True, **kw):
        env = {"FT_PLUGIN_DIR": PRODUCTS_DIR}
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)


def main():
    unittest.main(verbosity=2)


def in_thread(fn, *args):
    """Runs fn(*args) in a thread; returns a function that joins and returns its result."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def join(timeout=60):
        t.join(timeout)
        if "error" in box:
            raise box["error"]
        return box.get("value")
    return join


if __name__ == "__main__":
    sys.exit("harness.py is a library for the test modules")
