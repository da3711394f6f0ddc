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
import urllib.error
import urllib.request

import contract

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("FT_BUILD_DIR", os.path.join(ROOT, "build", "test"))
HOST_BIN = os.path.join(BUILD, "host", "farutech-host")
STACK = os.path.join(ROOT, "packaging", "stack.sh")
PRODUCTS_DIR = os.path.join(BUILD, "products")
FAULTY = os.path.join(BUILD, "tests", "plugins", "faulty", "faulty.so")  # the test product whose steps fail on request
LISTENING = re.compile(r"listening on http://\S+:(\d+) ")
# every response Host.request receives is checked against the host's OpenAPI document
# (contract.py); FT_OPENAPI_CHECK=0 turns that off while a test is being written
OPENAPI_CHECK = os.environ.get("FT_OPENAPI_CHECK", "1") != "0"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


CONSOLE_DIR = os.path.join(ROOT, "console")


def console_files():
    """The operator console's files as installed under share/farutech/console (relative paths)."""
    out = []
    for top, _, files in os.walk(CONSOLE_DIR):
        out += [os.path.relpath(os.path.join(top, f), CONSOLE_DIR) for f in files if f.endswith((".html", ".css", ".js"))]
    return sorted(out)


def plugin_dir(parent, *extra):
    """A new directory under parent holding the first-party products and the plugin files extra."""
    d = tempfile.mkdtemp(prefix="plugins-", dir=parent)
    for f in os.listdir(PRODUCTS_DIR):
        if f.endswith(".so"):
            shutil.copy(os.path.join(PRODUCTS_DIR, f), d)
    for f in extra:
        shutil.copy(f, d)
    return d


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


class NatsCluster:
    """A JetStream cluster of nats-server processes on loopback, beside a Stack: each node with its
    own client, route and monitoring port, store directory and log, every client URL carrying the
    same credentials. Nodes are killed (SIGKILL) and restarted by index; the monitoring endpoints
    tell the meta leader, each stream's leader, and whether a node is current."""

    def __init__(self, parent_dir, size=3, name="ftc"):
        self.dir = tempfile.mkdtemp(prefix="nats-cluster-", dir=parent_dir)
        self.size, self.name = size, name
        self.user, self.password = "farutech", secrets.token_hex(12)
        self.procs = [None] * size
        self._pick_ports()

    def _pick_ports(self):
        self.client_ports = [free_port() for _ in range(self.size)]
        self.route_ports = [free_port() for _ in range(self.size)]
        self.monitor_ports = [free_port() for _ in range(self.size)]

    def node_name(self, i):
        return f"n{i + 1}"

    def index_of(self, name):
        return int(name[1:]) - 1

    def _write_config(self, i):
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
        path = os.path.join(self.dir, f"{self.node_name(i)}.conf")
        with open(path, "w") as f:
            f.write(f"""server_name: {self.node_name(i)}
listen: 127.0.0.1:{self.client_ports[i]}
http: 127.0.0.1:{self.monitor_ports[i]}
jetstream {{ store_dir: "{os.path.join(self.dir, self.node_name(i))}" }}
authorization {{ user: "{self.user}", password: "{self.password}" }}
cluster {{ name: {self.name}, listen: 127.0.0.1:{self.route_ports[i]}, routes: [{routes}] }}
""")
        return path

    def start_node(self, i):
        """Starts node i (again: same ports, same store) without waiting for it."""
        log = open(os.path.join(self.dir, f"{self.node_name(i)}.log"), "ab")
        try:
            self.procs[i] = subprocess.Popen(["nats-server", "-c", self._write_config(i)], stdout=log, stderr=log,
                                             start_new_session=True)
        finally:
            log.close()

    def start(self, timeout=60):
        """Starts every node and waits until each is healthy and a meta leader is elected; a port
        taken between choosing and binding is tried again on other ports."""
        for attempt in range(3):
            for i in range(self.size):
                self.start_node(i)
            try:
                wait_until(self._formed, timeout, interval=0.2, what="every nats-server node healthy and a meta leader elected")
                return self
            except AssertionError as e:
                if attempt == 2 or "already in use" not in self.logs():
                    raise AssertionError(f"{e}\n{self.describe()}") from None
                self.stop()
                self._pick_ports()

    def _formed(self):
        for i in range(self.size):
            if not self.alive(i):
                raise AssertionError(f"nats-server {self.node_name(i)} exited")
        return all(self.healthy(i) for i in range(self.size)) and self.meta_leader() is not None

    def stop(self):
        for i in range(self.size):
            self.kill(i)

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def kill(self, i):
        """SIGKILL: no goodbye to the cluster or the clients."""
        if self.alive(i):
            self.procs[i].kill()
        if self.procs[i] is not None:
            self.procs[i].wait(timeout=30)

    def restart(self, i, timeout=60):
        """Starts node i again and waits until it has rejoined and is current."""
        self.start_node(i)
        self.wait_current(i, timeout)

    def url(self, i):
        return f"nats://{self.user}:{self.password}@127.0.0.1:{self.client_ports[i]}"

    def urls(self, first=0):
        """Every node's URL, comma separated (FT_NATS_URL), starting with node first."""
        order = [(first + k) % self.size for k in range(self.size)]
        return ",".join(self.url(i) for i in order)

    def live_url(self):
        return self.url(next(i for i in range(self.size) if self.alive(i)))

    def monitor(self, i, path):
        """The decoded JSON of a monitoring endpoint of node i."""
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{self.monitor_ports[i]}{path}", timeout=2) as r:
            return json.loads(r.read())

    def healthy(self, i):
        """/healthz of node i: it answers only "ok" once its JetStream is current with the meta
        leader and with every stream and consumer it holds."""
        try:
            return self.alive(i) and self.monitor(i, "/healthz").get("status") == "ok"
        except (OSError, ValueError):
            return False

    def meta_leader(self):
        """The index of the JetStream meta leader as every live node sees it; None while they
        disagree or none is elected."""
        seen = set()
        for i in range(self.size):
            if self.alive(i):
                try:
                    seen.add(self.monitor(i, "/jsz").get("meta_cluster", {}).get("leader"))
                except (OSError, ValueError):
                    return None
        if len(seen) != 1 or not next(iter(seen)):
            return None
        i = self.index_of(seen.pop())
        return i if self.alive(i) else None

    def wait_meta_leader(self, timeout=60):
        """The index of the meta leader, once there is one."""
        def elected():
            i = self.meta_leader()
            return None if i is None else (i,)  # a tuple: node 0 is a leader too
        return wait_until(elected, timeout, interval=0.1, what="a JetStream meta leader")[0]

    def wait_current(self, i, timeout=60):
        wait_until(lambda: self.healthy(i) and self.meta_leader() is not None, timeout, interval=0.1,
                   what=f"nats node {self.node_name(i)} to be current")

    def stream_leaders(self):
        """{stream name: index of its leader}, from the meta leader's view."""
        leader = self.meta_leader()
        if leader is None:
            return {}
        jsz = self.monitor(leader, "/jsz?accounts=true&streams=true")
        out = {}
        for account in jsz.get("account_details") or []:
            for st in account.get("stream_detail") or []:
                name = (st.get("cluster") or {}).get("leader")
                if name:
                    out[st["name"]] = self.index_of(name)
        return out

    def step_down(self, stream):
        """Asks the stream's leader to step down: another replica takes over."""
        from jetstream import JetStream  # the test modules' JetStream client
        with JetStream(self.live_url()) as js:
            return js.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", {})

    def describe(self):
        """Each node's state and the end of its log: what a failed wait needs."""
        out = []
        for i in range(self.size):
            try:
                health = self.monitor(i, "/healthz")
            except urllib.error.HTTPError as e:
                health = e.read().decode(errors="replace")
            except OSError as e:
                health = repr(e)
            with open(os.path.join(self.dir, f"{self.node_name(i)}.log"), "rb") as f:
                tail = f.read().decode(errors="replace").splitlines()[-15:]
            out.append(f"{self.node_name(i)} alive={self.alive(i)} healthz={health}\n  " + "\n  ".join(tail))
        return "\n".join(out)

    def logs(self):
        text = ""
        for i in range(self.size):
            path = os.path.join(self.dir, f"{self.node_name(i)}.log")
            if os.path.exists(path):
                with open(path, "rb") as f:
                    text += f.read().decode(errors="replace")
        return text


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
        self.openapi_check = True  # a test of a host that serves another API (an older release) turns it off
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
            resp = Response(r.status, r.getheaders(), r.read())
            if OPENAPI_CHECK and self.openapi_check:
                contract.check(HOST_BIN, method, path, resp.status, resp.headers, resp.body)
            return resp
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
