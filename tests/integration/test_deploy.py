"""Deployment: the systemd units pass systemd-analyze verify, the host tells systemd it is ready
only once /ready answers 200 (and that it is stopping when SIGTERM starts the drain), a relay or
worker process serves its probes, and the container, compose and Kubernetes recipes name only
settings, roles, probes, ports and objects that exist."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest
from urllib.parse import urlsplit

import yaml

from harness import HOST_BIN, PRODUCTS_DIR, ROOT, StackTestCase, main, wait_until

UNITS = os.path.join(ROOT, "packaging", "systemd")
CONTAINER = os.path.join(ROOT, "packaging", "container")
KUBERNETES = os.path.join(ROOT, "packaging", "kubernetes")
ROLES = {"api", "worker", "relay"}


def host_settings():
    """The host's own settings and defaults, from `farutech-host config` with nothing set."""
    out = subprocess.run([HOST_BIN, "config"], env={}, capture_output=True, text=True, timeout=60, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def listen_port(value):
    return int(value.rsplit(":", 1)[1])


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

    def test_stop_timeout_outlasts_the_drain(self):
        with open(os.path.join(UNITS, "farutech@.service")) as f:
            unit = f.read()
        stop = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))
        self.assertGreater(stop * 1000, int(host_settings()["FT_SHUTDOWN_TIMEOUT_MS"]))
        self.assertIn("\nType=notify\n", unit)
        self.assertIn("\nEnvironment=FT_ROLES=%i\n", unit)
        # relay and worker listen for their probes on ports of their own, never the API's
        ports = {listen_port(host_settings()["FT_HTTP_LISTEN"])}
        for role in ("worker", "relay"):
            with open(os.path.join(UNITS, f"farutech@{role}.service.d", "listen.conf")) as f:
                port = listen_port(re.search(r"FT_HTTP_LISTEN=(\S+)", f.read()).group(1))
            self.assertNotIn(port, ports)
            ports.add(port)

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


class Recipes(unittest.TestCase):
    """The container, compose and Kubernetes files, read as data and checked against the host."""

    @classmethod
    def setUpClass(cls):
        cls.settings = host_settings()
        cls.objects = []
        for path in sorted(glob.glob(os.path.join(KUBERNETES, "*.yaml"))):
            if os.path.basename(path) in ("kustomization.yaml", "nats-values.yaml"):
                continue
            with open(path) as f:
                for doc in yaml.safe_load_all(f):
                    if doc:
                        cls.objects.append((os.path.basename(path), doc))
        with open(os.path.join(KUBERNETES, "kustomization.yaml")) as f:
            cls.kustomization = yaml.safe_load(f)
        with open(os.path.join(KUBERNETES, "nats-values.yaml")) as f:
            cls.nats_values = yaml.safe_load(f)
        with open(os.path.join(CONTAINER, "compose.yaml")) as f:
            cls.compose = yaml.safe_load(f)
        with open(os.path.join(CONTAINER, "Containerfile")) as f:
            cls.containerfile = f.read()

    def kind(self, kind):
        return [o for _, o in self.objects if o["kind"] == kind]

    def named(self, kind, name):
        found = [o for o in self.kind(kind) if o["metadata"]["name"] == name]
        self.assertEqual(len(found), 1, f"{kind} {name}")
        return found[0]

    def assertSettings(self, names, where):
        unknown = sorted(n for n in names if n.startswith("FT_") and n not in self.settings)
        self.assertEqual(unknown, [], f"{where}: settings the host does not have")

    def assertNatsUrl(self, url, hosts):
        servers = url.split(",")
        self.assertEqual(len(servers), 3, url)
        self.assertEqual(sorted(urlsplit(s).hostname for s in servers), sorted(hosts))
        self.assertTrue(all(urlsplit(s).port == 4222 for s in servers), url)

    # -- Kubernetes ---------------------------------------------------------------------------

    def test_kustomization_lists_every_manifest(self):
        files = {os.path.basename(p) for p in glob.glob(os.path.join(KUBERNETES, "*.yaml"))}
        self.assertEqual(set(self.kustomization["resources"]), files - {"kustomization.yaml", "nats-values.yaml"})
        self.assertTrue(all(o["metadata"].get("namespace", "farutech") == "farutech" for _, o in self.objects))
        self.assertEqual(self.kustomization["namespace"], "farutech")
        self.named("Namespace", "farutech")

    def test_deployments_run_each_role_with_known_settings(self):
        config = self.named("ConfigMap", "farutech-config")["data"]
        secret = self.named("Secret", "farutech-secrets")["stringData"]
        self.assertSettings(config, "ConfigMap")
        self.assertSettings(secret, "Secret")
        self.assertTrue(all(isinstance(v, str) for v in config.values()), config)
        images = set()
        replicas = {}
        for d in self.kind("Deployment"):
            spec = d["spec"]["template"]["spec"]
            (c,) = spec["containers"]
            env = {e["name"]: e for e in c.get("env", [])}
            self.assertSettings(env, d["metadata"]["name"])
            role = env["FT_ROLES"]["value"]
            self.assertIn(role, ROLES)
            self.assertEqual(d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"], role)
            replicas[role] = d["spec"]["replicas"]
            images.add(c["image"])
            for ref in c["envFrom"]:
                if "configMapRef" in ref:
                    self.named("ConfigMap", ref["configMapRef"]["name"])
                else:
                    self.named("Secret", ref["secretRef"]["name"])
            # the database URL is the one CloudNativePG generates for the cluster's owner
            db = env["FT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            (cluster,) = self.kind("Cluster")
            self.assertEqual(db, {"name": cluster["metadata"]["name"] + "-app", "key": "uri"})
            # probes: liveness /health, readiness /ready, on the port FT_HTTP_LISTEN names
            port = listen_port(env.get("FT_HTTP_LISTEN", {}).get("value") or config["FT_HTTP_LISTEN"])
            self.assertTrue(config["FT_HTTP_LISTEN"].startswith("0.0.0.0:"))
            named_ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            for probe, path in (("startupProbe", "/health"), ("livenessProbe", "/health"), ("readinessProbe", "/ready")):
                get = c[probe]["httpGet"]
                self.assertEqual(get["path"], path, probe)
                self.assertEqual(named_ports.get(get["port"], get["port"]), port, probe)
            # drained before it is killed
            shutdown = int(config.get("FT_SHUTDOWN_TIMEOUT_MS", self.settings["FT_SHUTDOWN_TIMEOUT_MS"]))
            self.assertGreater(spec["terminationGracePeriodSeconds"] * 1000, shutdown)
            # locked down: non-root, read-only root, no privilege, default seccomp
            pod = spec["securityContext"]
            self.assertTrue(pod["runAsNonRoot"])
            self.assertEqual(pod["runAsUser"], 10001)
            self.assertEqual(pod["seccompProfile"]["type"], "RuntimeDefault")
            sc = c["securityContext"]
            self.assertEqual((sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["capabilities"]["drop"]),
                             (True, False, ["ALL"]))
            self.assertIn("/tmp", [m["mountPath"] for m in c["volumeMounts"]])  # plugins are copied there
            for kind in ("requests", "limits"):
                self.assertTrue({"cpu", "memory"} <= set(c["resources"][kind]), kind)
            # FT_THREADS fits the CPU limit (the default counts the node's CPUs)
            self.assertLessEqual(int(config["FT_THREADS"]), float(c["resources"]["limits"]["cpu"]))
        self.assertEqual(replicas, {"api": 2, "worker": 1, "relay": 1})
        self.assertEqual(len(images), 1, images)
        (image,) = images
        self.assertEqual([i["name"] for i in self.kustomization["images"]], [image.rsplit(":", 1)[0]])

    def pods_selected(self, selector):
        return [d for d in self.kind("Deployment")
                if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]

    def test_service_and_budget_select_api_pods(self):
        svc = self.named("Service", "farutech-api")
        (api,) = self.pods_selected(svc["spec"]["selector"])
        self.assertEqual(api["metadata"]["name"], "farutech-api")
        names = {p["name"] for p in api["spec"]["template"]["spec"]["containers"][0]["ports"]}
        self.assertTrue(all(p["targetPort"] in names for p in svc["spec"]["ports"]))
        for pdb in self.kind("PodDisruptionBudget"):
            selected = self.pods_selected(pdb["spec"]["selector"]["matchLabels"])
            self.assertEqual(len(selected), 1, pdb["metadata"]["name"])
            # a budget that leaves no pod to evict would block every node drain
            self.assertLess(pdb["spec"]["minAvailable"], selected[0]["spec"]["replicas"])

    def test_cloudnativepg_cluster_has_three_instances_and_an_owner_that_may_create_databases(self):
        (cluster,) = self.kind("Cluster")
        self.assertEqual(cluster["apiVersion"], "postgresql.cnpg.io/v1")
        self.assertEqual(cluster["spec"]["instances"], 3)
        initdb = cluster["spec"]["bootstrap"]["initdb"]
        self.assertEqual((initdb["database"], initdb["owner"]), ("farutech", "farutech"))
        self.assertIn("ALTER ROLE farutech CREATEDB CREATEROLE", initdb["postInitSQL"])

    def test_nats_chart_values_make_a_three_node_jetstream_cluster_the_hosts_list(self):
        cfg = self.nats_values["config"]
        self.assertEqual((cfg["cluster"]["enabled"], cfg["cluster"]["replicas"]), (True, 3))
        self.assertTrue(cfg["jetstream"]["enabled"])
        self.assertTrue(cfg["jetstream"]["fileStore"]["enabled"] and cfg["jetstream"]["fileStore"]["pvc"]["enabled"])
        config = self.named("ConfigMap", "farutech-config")["data"]
        self.assertEqual(int(config["FT_NATS_REPLICAS"]), cfg["cluster"]["replicas"])
        self.assertNatsUrl(config["FT_NATS_URL"], [f"nats-{i}.nats-headless.farutech.svc.cluster.local" for i in range(3)])

    # -- container and compose ----------------------------------------------------------------

    def test_containerfile_listens_probes_and_runs_as_the_kubernetes_user(self):
        env = dict(re.findall(r"(FT_[A-Z_]+)=(\S+)", self.containerfile))
        self.assertSettings(env, "Containerfile")
        port = listen_port(env["FT_HTTP_LISTEN"])
        self.assertTrue(env["FT_HTTP_LISTEN"].startswith("0.0.0.0:"))
        self.assertRegex(self.containerfile, rf"(?m)^EXPOSE {port}$")
        self.assertRegex(self.containerfile, rf"(?m)CMD curl .*http://127\.0\.0\.1:{port}/ready")
        self.assertRegex(self.containerfile, r"(?m)^USER 10001:10001$")
        self.assertRegex(self.containerfile, r"(?m)^FROM debian:bookworm")
        self.assertIn("./*.deb", self.containerfile)

    def test_compose_services_wait_for_healthy_dependencies_and_use_known_settings(self):
        services = self.compose["services"]
        nats = sorted(n for n, s in services.items() if s["image"].startswith("nats:"))
        self.assertEqual(len(nats), 3)
        for n in nats:
            cmd = services[n]["command"]
            self.assertIn("--jetstream", cmd)
            routes = cmd[cmd.index("--routes") + 1].split(",")
            self.assertEqual(sorted(urlsplit(r).hostname for r in routes), nats)
            self.assertEqual(cmd[cmd.index("--name") + 1], n)  # JetStream wants unique server names
        hosts = {n: s for n, s in services.items() if s["image"].startswith("farutech-host")}
        roles = {}
        for name, svc in hosts.items():
            env = svc["environment"]
            self.assertSettings(env, name)
            self.assertIn(env["FT_ROLES"], ROLES)
            roles[env["FT_ROLES"]] = svc.get("deploy", {}).get("replicas", 1)
            self.assertNatsUrl(env["FT_NATS_URL"], nats)
            self.assertEqual(int(env["FT_NATS_REPLICAS"]), len(nats))
            self.assertEqual(urlsplit(env["FT_DATABASE_URL"]).hostname, "postgres")
            port = listen_port(env["FT_HTTP_LISTEN"])
            self.assertIn(f"http://127.0.0.1:{port}/ready", svc["healthcheck"]["test"])
            for dep, cond in svc["depends_on"].items():
                self.assertEqual(cond, {"condition": "service_healthy"}, dep)
                self.assertIn("healthcheck", services[dep], dep)
            self.assertEqual(set(svc["depends_on"]), {"postgres", *nats})
            grace = re.fullmatch(r"(\d+)s", svc["stop_grace_period"]).group(1)
            self.assertGreater(int(grace) * 1000, int(self.settings["FT_SHUTDOWN_TIMEOUT_MS"]))
        self.assertEqual(roles, {"api": 2, "worker": 1, "relay": 1})
        self.assertEqual(len({s["image"] for s in hosts.values()}), 1)


if __name__ == "__main__":
    main()
