"""Deployment: the systemd units pass systemd-analyze verify, the host tells systemd it is ready
only once /ready answers 200 (and that it is stopping when SIGTERM starts the drain), and a
relay or worker process serves its probes."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import HOST_BIN, PRODUCTS_DIR, ROOT, StackTestCase, main, wait_until

UNITS = os.path.join(ROOT, "packaging", "systemd")


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []  # every assignment received, in order ("READY=1", "STATUS=...")

    def drain(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return self.messages
            self.messages.extend(line for line in data.decode().split("\n") if line)

    def wait_for(self, message, timeout=60):
        return wait_until(lambda: message in self.drain(), timeout, what=f"{message} on the notify socket "
                          f"(got {self.messages[-5:]})")

    def close(self):
        self.sock.close()


class Units(unittest.TestCase):

    def test_units_pass_systemd_analyze_verify(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        # verify insists that ExecStart names an executable: point it at the built host, and
        # let the units load by name from a scratch directory ahead of the system's own
        with tempfile.TemporaryDirectory() as d:
            units = os.path.join(d, "units")
            shutil.copytree(UNITS, units)
            path = os.path.join(units, "farutech@.service")
            with open(path) as f:
                text = f.read()
            self.assertIn("ExecStart=/usr/bin/farutech-host ", text)
            with open(path, "w") as f:
                f.write(text.replace("ExecStart=/usr/bin/farutech-host ", f"ExecStart={HOST_BIN} "))
            env = dict(os.environ, SYSTEMD_UNIT_PATH=units + ":")
            names = ["farutech@api.service", "farutech@worker.service", "farutech@relay.service",
                     "farutech@all.service", "farutech.target"]
            out = subprocess.run(["systemd-analyze", "verify", "--man=no", "--generators=no", "--recursive-errors=no",
                                  *names], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual(out.stderr.strip(), "", out.stderr)
            # and the sandbox stays tight: systemd's own exposure score, 0 (best) to 10
            out = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager",
                                  "farutech@api.service"], env=env, capture_output=True, text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_instance_names_are_roles_the_host_accepts(self):
        for instance, roles in (("api", "api"), ("worker", "worker"), ("relay", "relay"), ("all", "api,relay,worker")):
            out = subprocess.run([HOST_BIN, "config"], env={"FT_ROLES": instance}, capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(f"FT_ROLES={roles}\n", out.stdout)

    def test_products_need_no_writable_executable_memory(self):
        """MemoryDenyWriteExecute=yes holds for dlopen only if no text relocation or executable
        stack asks the loader to make a mapping executable after the fact."""
        objs = [HOST_BIN] + [os.path.join(PRODUCTS_DIR, f) for f in sorted(os.listdir(PRODUCTS_DIR)) if f.endswith(".so")]
        self.assertGreater(len(objs), 1)
        for obj in objs:
            dyn = subprocess.run(["readelf", "-d", obj], capture_output=True, text=True, check=True).stdout
            self.assertNotIn("TEXTREL", dyn, obj)
            seg = subprocess.run(["readelf", "-lW", obj], capture_output=True, text=True, check=True).stdout
            stack = [line.split() for line in seg.splitlines() if "GNU_STACK" in line]
            self.assertEqual(len(stack), 1, obj)
            self.assertNotIn("E", stack[0][-2], f"{obj}: executable stack")


class Notify(StackTestCase):

    def setUp(self):
        super().setUp()
        self.notify = NotifySocket(tempfile.mkdtemp(prefix="n-", dir=self.stack.dir))
        self.nats_stopped = False

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.notify.close()
            if self.nats_stopped:
                self.stack.start_nats()

    def test_ready_is_sent_only_once_ready_answers_200_and_stopping_on_sigterm(self):
        self.stack.stop_nats()
        self.nats_stopped = True
        h = self.host(start=False, env={"NOTIFY_SOCKET": self.notify.path, "FT_PLUGIN_DIR": PRODUCTS_DIR})
        h.start(wait=True)
        # NATS is down: the host serves, /ready says so, and systemd hears why it waits
        r = h.get("/ready")
        self.assertEqual(r.status, 503, r)
        self.notify.wait_for("STATUS=waiting for nats, jetstream")
        self.assertNotIn("READY=1", self.notify.drain())

        self.stack.start_nats()
        self.nats_stopped = False
        self.notify.wait_for("READY=1")
        r = h.get("/ready")
        self.assertEqual(r.status, 200, r)
        self.assertIn("STATUS=ready", self.notify.messages)

        h.proc.send_signal(signal.SIGHUP)
        self.notify.wait_for("RELOADING=1")
        wait_until(lambda: self.notify.drain().count("READY=1") == 2, 60, what="READY=1 after the reload")

        self.assertEqual(h.terminate(), 0)
        self.assertIn("STOPPING=1", self.notify.drain())
        self.assertEqual(self.notify.messages.count("STOPPING=1"), 1)

    def test_ready_is_sent_at_once_when_everything_is_up(self):
        h = self.host(start=False, env={"NOTIFY_SOCKET": self.notify.path})
        h.start(wait=False)
        self.notify.wait_for("READY=1")
        self.assertEqual(h.get("/ready").status, 200)
        self.assertEqual(h.terminate(), 0)

    def test_worker_and_relay_serve_their_probes_only(self):
        for role in ("worker", "relay"):
            h = self.host(start=False, env={"FT_ROLES": role, "NOTIFY_SOCKET": self.notify.path})
            h.start()
            self.notify.wait_for("READY=1")
            self.assertEqual(h.get("/ready").status, 200)
            self.assertEqual(h.get("/health").status, 200)
            self.assertEqual(h.get("/metrics").status, 200)
            self.assertEqual(h.get("/api/v1/products", auth=None).status, 404)
            self.assertEqual(h.terminate(), 0)
            self.notify.messages.clear()


if __name__ == "__main__":
    main()
