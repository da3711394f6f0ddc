"""The operator CLI `farutech` end to end against a real host: sign-in and its token file, the
command groups, --json, exit codes, automatic refresh of an expired access token, --help on
every command, and the bash completion script."""
import json
import os
import pty
import re
import secrets
import stat
import subprocess
import tempfile
import uuid

import contract
from fixtures import customer
from harness import BUILD, HOST_BIN, OPENAPI_CHECK, SANITIZER_MARKERS, free_port, main, wait_until
from test_pipeline import PipelineCase

CLI = os.path.join(BUILD, "cli", "farutech")
ACCESS_TTL_S = 10  # the shortest access-token lifetime the host accepts


class Cli:
    """Runs the CLI with a config dir of its own, against a host (FARUTECH_URL) or none."""

    def __init__(self, test, host=None, api_key=None):
        self.test = test
        self.config = tempfile.mkdtemp(prefix="cli-", dir=test.stack.dir)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FARUTECH_")}
        self.env.update({"XDG_CONFIG_HOME": self.config, "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1",
                         "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
        if host is not None:
            port = host.port
            if OPENAPI_CHECK and host.openapi_check:
                # what the CLI receives goes through the contract check on its way
                proxy = contract.Proxy(HOST_BIN, host.port)
                test.addCleanup(lambda: test.assertEqual(proxy.mismatches, [], "responses the OpenAPI document does not describe"))
                test.addCleanup(proxy.close)
                port = proxy.port
            self.env["FARUTECH_URL"] = f"http://127.0.0.1:{port}"
        if api_key is not None:
            self.env["FARUTECH_API_KEY"] = api_key

    @property
    def credentials(self):
        return os.path.join(self.config, "farutech", "credentials.json")

    def run(self, *args, stdin=None, expect=0, env=None):
        """Runs farutech args; checks the exit code (expect) and that no sanitizer spoke; returns (stdout, stderr)."""
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([CLI, *args], env=e, input=stdin, capture_output=True, text=True, timeout=300)
        for marker in SANITIZER_MARKERS:
            self.test.assertNotIn(marker, p.stderr, p.stderr[-4000:])
        if expect is not None:
            self.test.assertEqual(p.returncode, expect, f"farutech {' '.join(args)}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        return p.stdout, p.stderr

    def json(self, *args, expect=0):
        out, _ = self.run("--json", *args, expect=expect)
        return json.loads(out)


class CliCase(PipelineCase):
    """Hosts with the products, the faulty test product and fast retries (as the pipeline tests')."""

    def admin(self, h):
        """A platform admin made with create-admin; returns (email, password)."""
        email, password = f"ops-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(18)
        code, _, err = h.cli("create-admin", "--email", email, env={"FT_ADMIN_PASSWORD": password})
        self.assertEqual(code, 0, err)
        return email, password

    def signed_in(self, h):
        cli = Cli(self, h)
        email, password = self.admin(h)
        out, _ = cli.run("login", "--email", email, stdin=password + "\n")
        self.assertIn(email, out)
        return cli

    def on_a_terminal(self, cli, *args):
        """Runs farutech with its standard output on a pseudo-terminal; returns what it wrote there."""
        leader, follower = pty.openpty()
        p = subprocess.Popen([CLI, *args], env=cli.env, stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not data:
                break
            chunks.append(data)
        os.close(leader)
        err = p.stderr.read().decode(errors="replace")
        p.stderr.close()
        self.assertEqual(p.wait(timeout=120), 0, err)
        return b"".join(chunks).decode(errors="replace")

    def tokens(self, cli):
        with open(cli.credentials) as f:
            return json.load(f)


class Commands(CliCase):

    def test_help_answers_for_every_command_and_usage_errors_exit_2(self):
        cli = Cli(self)
        out, _ = cli.run("--help")
        for code in ("0  ok", "2  usage", "3  not signed in", "4  not found", "5  conflict", "6  server", "7  a job"):
            self.assertIn(code, out)
        groups = re.findall(r"^  ([a-z]+) {2,}", out.split("Commands:")[1].split("Global options:")[0], re.M)
        self.assertEqual(set(groups), {"login", "logout", "customers", "instances", "jobs", "dlq", "plugins", "keys", "audit",
                                       "completion"})
        seen = 0
        for g in groups:
            out, _ = cli.run(g, "--help")
            self.assertIn(f"usage: farutech {g}", out)
            if "Subcommands:" not in out:
                seen += 1
                continue
            for sub in re.findall(r"^  ([a-z]+) {2,}", out.split("Subcommands:")[1], re.M):
                sout, _ = cli.run(g, sub, "--help")
                self.assertIn(f"usage: farutech {g} {sub}", sout)
                self.assertIn("--json", sout)
                seen += 1
        self.assertGreaterEqual(seen, 24)
        cli.run("bogus", expect=2)
        cli.run("instances", expect=2)
        cli.run("instances", "frobnicate", expect=2)
        cli.run("instances", "show", expect=2)
        cli.run("customers", "list", "--nope", expect=2)
        cli.run("customers", "list", "--limit", expect=2)
        _, err = cli.run("customers", "create", "--name", "x", expect=2)
        self.assertIn("--tax-id", err)

    def test_completion_bash_is_a_valid_script_offering_every_command(self):
        out, _ = Cli(self).run("completion", "bash")
        self.assertIn("complete -o default -F _farutech farutech", out)
        self.assertIn("watch", out)
        self.assertIn("--canary", out)
        p = subprocess.run(["bash", "-n"], input=out, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        probe = out + "\nCOMP_WORDS=(farutech instances s); COMP_CWORD=2; _farutech; echo \"${COMPREPLY[*]}\"\n"
        p = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.split(), ["show", "suspend"], p.stderr)

    def test_sign_in_keeps_a_0600_token_file_and_the_command_groups_work_end_to_end(self):
        h = self.host()
        cli = self.signed_in(h)
        mode = stat.S_IMODE(os.stat(cli.credentials).st_mode)
        self.assertEqual(mode, 0o600, oct(mode))
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(cli.credentials)).st_mode), 0o700)
        self.assertNotIn("FARUTECH_API_KEY", cli.env)

        # customers
        c = cli.json("customers", "create", "--name", "Clinica Norte", "--tax-id", secrets.token_hex(5), "--country", "CO",
                     "--email", "ops@norte.test")
        out, _ = cli.run("customers", "list")
        self.assertIn(c["id"], out)
        self.assertIn("Clinica Norte", out)
        self.assertEqual(out.splitlines()[0].split()[:2], ["ID", "NAME"])
        self.assertIn(c["id"], [x["id"] for x in cli.json("customers", "list", "--all")["items"]])
        self.assertEqual(cli.json("customers", "show", c["id"])["legal_name"], "Clinica Norte")
        out, _ = cli.run("customers", "show", c["id"])
        self.assertRegex(out, r"legal_name +Clinica Norte")

        # instances, and watching the provisioning job to its end
        i = cli.json("instances", "create", "--customer", c["id"], "--code", "norte", "--product", "vet", "--plan",
                     "professional", "--setting", "admin_email=vet@norte.test")
        job_id = i["latest_job"]["id"]
        out, err = cli.run("jobs", "watch", job_id)
        streams = h.get(f"/api/v1/jobs/{job_id}", headers={"Accept": "text/event-stream"}).headers.get(
            "content-type", "").startswith("text/event-stream")
        self.assertTrue(streams)
        self.assertNotIn("error:", err)
        job = h.get(f"/api/v1/jobs/{job_id}").json()
        self.assertEqual(job["status"], "succeeded")
        self.assertGreater(len(job["steps"]), 1)
        for s in job["steps"]:
            self.assertIn(f"step {s['name']}: succeeded", out)
        self.assertIn("job succeeded", out)
        self.assertEqual(cli.json("jobs", "show", job_id)["status"], "succeeded")
        n = len(job["steps"])
        self.assertIn(f"[{'#' * 30}] {n}/{n}", self.on_a_terminal(cli, "jobs", "watch", job_id))
        out, _ = cli.run("jobs", "show", job_id)
        self.assertRegex(out, r"status +succeeded")
        for s in job["steps"]:
            self.assertRegex(out, rf"\n{re.escape(s['name'])} +succeeded")
        self.assertEqual(cli.json("instances", "show", i["id"])["status"], "active")
        listed, _ = cli.run("jobs", "list", "--instance", i["id"], expect=None)
        self.assertIn(job_id, listed)
        self.assertIn(i["id"], [x["id"] for x in cli.json("instances", "list", "--customer", c["id"])["items"]])
        out, _ = cli.run("instances", "list", "--customer", c["id"])
        self.assertRegex(out, rf"{i['id']} +norte +vet +professional +standard +active ")

        cli.run("instances", "suspend", i["id"])
        self.assertEqual(h.get(f"/api/v1/instances/{i['id']}/subscription").json()["status"], "suspended")
        cli.run("instances", "resume", i["id"])
        self.assertEqual(h.get(f"/api/v1/instances/{i['id']}/subscription").json()["status"], "active")
        out, _ = cli.run("instances", "delete", i["id"])
        self.assertIn("deprovisioning", out)
        wait_until(lambda: h.get(f"/api/v1/instances/{i['id']}").json()["status"] == "deleted", 120,
                   what="the instance to be deleted")

        # API keys
        k = cli.json("keys", "create", "--name", "ci", "--role", "operator")
        self.assertTrue(k["key"].startswith("ftk_"))
        self.assertIn(k["id"], cli.run("keys", "list", "--all")[0])
        operator = Cli(self, h, api_key=k["key"])
        self.assertIn(c["id"], operator.run("customers", "list", "--all")[0])
        cli.run("keys", "revoke", k["id"])
        operator.run("customers", "list", expect=3)

        # the audit log
        rows = cli.json("audit", "list", "--action", "customer.create", "--all")["items"]
        self.assertIn(c["id"], [r["entity_id"] for r in rows])
        out, _ = cli.run("audit", "list", "--limit", "2")
        self.assertEqual(out.splitlines()[0].split()[:3], ["AT", "ACTOR", "ACTION"])

        # plugins
        out, _ = cli.run("plugins", "list")
        self.assertIn("vet", out)
        self.assertIn("vet", json.dumps(cli.json("plugins", "list")))
        out, err = cli.run("plugins", "list", "--hosts", expect=None)
        self.assertTrue("vet" in out or "does not report its hosts" in err, out + err)
        out, _ = cli.run("plugins", "reload", "vet")
        self.assertIn("vet", out)
        self.assertRegex(out, r"\b(unchanged|reloaded|loaded)\b")
        answer = cli.json("plugins", "reload", "vet", "--force")
        self.assertTrue("results" in answer or "hosts" in answer, answer)

        # sign out: the session ends and the file goes
        cli.run("logout")
        self.assertFalse(os.path.exists(cli.credentials))
        _, err = cli.run("customers", "list", expect=3)
        self.assertIn("not signed in", err)

    def test_exit_codes_say_what_happened(self):
        h = self.host()
        cli = Cli(self, h, api_key=h.admin_key)
        missing = str(uuid.uuid4())
        _, err = cli.run("customers", "show", missing, expect=4)
        self.assertIn("error: ", err)
        cli.run("instances", "show", missing, expect=4)
        cli.run("jobs", "show", missing, expect=4)
        cli.run("dlq", "show", missing, expect=4)
        _, err = cli.run("customers", "create", "--name", "X", "--tax-id", "1", "--country", "colombia", expect=5)
        self.assertRegex(err, r"error: .+")
        self.assertIn("/country", err)
        problem = cli.json("customers", "create", "--name", "X", "--tax-id", "1", "--country", "colombia", expect=5)
        self.assertEqual(problem["status"], 400)
        self.assertTrue(problem["errors"])
        c = customer(h)
        i = cli.json("instances", "create", "--customer", c["id"], "--code", "twin", "--product", "vet", "--plan", "professional",
                     "--setting", "admin_email=a@b.test")
        _, err = cli.run("instances", "create", "--customer", c["id"], "--code", "twin", "--product", "vet", "--plan",
                         "professional", "--setting", "admin_email=a@b.test", expect=5)
        self.assertIn("error: ", err)
        cli.run("jobs", "watch", i["latest_job"]["id"])

        # no credentials, a refused credential, and a server that is not there
        _, err = Cli(self, h).run("customers", "list", expect=3)
        self.assertIn("not signed in", err)
        Cli(self, h, api_key="ftk_nothing_here").run("customers", "list", expect=3)
        _, err = cli.run("--server", f"http://127.0.0.1:{free_port()}", "customers", "list", expect=6)
        self.assertIn("127.0.0.1", err)
        wrong = Cli(self, h)
        email, _ = self.admin(h)
        wrong.run("login", "--email", email, stdin="not the password\n", expect=3)
        self.assertFalse(os.path.exists(wrong.credentials))

    def test_a_failed_job_is_watched_to_exit_7_and_its_dead_letter_is_shown_replayed_and_discarded(self):
        h = self.host()
        cli = Cli(self, h, api_key=h.admin_key)
        c = customer(h)
        fault = os.path.join(self.stack.dir, "fault-" + secrets.token_hex(4))
        open(fault, "w").close()
        i = cli.json("instances", "create", "--customer", c["id"], "--code", "flaky", "--product", "faulty", "--plan", "basic",
                     "--setting", "admin_email=a@b.test", "--setting", f"fail_while_exists={fault}")
        job_id = i["latest_job"]["id"]
        out, err = cli.run("jobs", "watch", job_id, expect=7)
        self.assertIn("job failed", out)
        # each step change is a line, a run between two failures included
        self.assertGreaterEqual(out.count("step flaky: running"), 2, out)
        self.assertGreaterEqual(out.count("step flaky: failed"), 2, out)
        self.assertIn(f"error: job {job_id} failed: ", err)
        [entry] = [d for d in cli.json("dlq", "list", "--all")["items"] if d["job_id"] == job_id]
        out, _ = cli.run("dlq", "list")
        self.assertIn(entry["id"], out)
        self.assertEqual(cli.json("dlq", "show", entry["id"])["state"], "open")
        os.unlink(fault)
        cli.run("dlq", "replay", entry["id"])
        cli.run("jobs", "watch", job_id)
        self.assertEqual(cli.json("instances", "show", i["id"])["status"], "active")
        self.assertEqual(cli.json("dlq", "show", entry["id"])["state"], "replayed")
        self.assertNotIn(entry["id"], cli.run("dlq", "list")[0])

        fault2 = fault + "-again"
        open(fault2, "w").close()
        j = cli.json("instances", "create", "--customer", c["id"], "--code", "flaky2", "--product", "faulty", "--plan", "basic",
                     "--setting", "admin_email=a@b.test", "--setting", f"fail_while_exists={fault2}")
        cli.run("jobs", "watch", j["latest_job"]["id"], expect=7)
        [entry2] = [d for d in cli.json("dlq", "list")["items"] if d["job_id"] == j["latest_job"]["id"]]
        cli.run("dlq", "discard", entry2["id"])
        self.assertEqual(cli.json("dlq", "show", entry2["id"])["state"], "discarded")
        cli.run("dlq", "replay", entry2["id"], expect=5)

    def test_an_expired_access_token_is_refreshed_without_signing_in_again(self):
        h = self.host(env={"FT_ACCESS_TOKEN_TTL_S": str(ACCESS_TTL_S)})
        cli = self.signed_in(h)
        first = self.tokens(cli)
        wait_until(lambda: h.get("/api/v1/customers", auth=first["access_token"]).status == 401, ACCESS_TTL_S + 30,
                   interval=0.5, what="the access token to expire")
        self.assertTrue(h.get("/api/v1/customers", auth=first["access_token"]).json()["type"].endswith("/token-expired"))

        # the saved expiry unknown: the server's token-expired answer makes the CLI refresh and retry
        with open(cli.credentials, "w") as f:
            json.dump({**first, "access_expires_at": 0}, f)
        os.chmod(cli.credentials, 0o600)
        cli.run("customers", "list")
        second = self.tokens(cli)
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertEqual(stat.S_IMODE(os.stat(cli.credentials).st_mode), 0o600)

        # the saved expiry passed: the CLI refreshes before asking
        wait_until(lambda: h.get("/api/v1/customers", auth=second["access_token"]).status == 401, ACCESS_TTL_S + 30,
                   interval=0.5, what="the second access token to expire")
        self.assertIn("items", cli.json("audit", "list", "--limit", "1"))
        third = self.tokens(cli)
        self.assertNotEqual(third["refresh_token"], second["refresh_token"])
        self.assertEqual(h.get("/api/v1/customers", auth=third["access_token"]).status, 200)

        # a refresh token used before is refused: the session ends and says so
        with open(cli.credentials, "w") as f:
            json.dump({**first, "access_expires_at": 1}, f)
        _, err = cli.run("customers", "list", expect=3)
        self.assertIn("farutech login", err)


if __name__ == "__main__":
    main()
