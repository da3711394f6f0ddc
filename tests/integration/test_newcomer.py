"""What a newcomer trips on first: an expired access token that says how to get a new one, a
deleted instance that reads the same by id as in the list, the command line finding the local
stack's settings when run from the checkout, and `config` without the switches for tests."""
import os
import re
import secrets
import subprocess

from fixtures import customer, instance
from harness import HOST_BIN, ProductsTestCase, main, wait_until

PASSWORD = "correct horse battery staple"


class Newcomer(ProductsTestCase):

    # ---------------------------------------------------------------- expired access tokens

    def test_an_expired_access_token_says_how_to_refresh(self):
        h = self.host(env={"FT_ACCESS_TOKEN_TTL_S": "10"})
        email = f"u-{secrets.token_hex(5)}@example.test"
        r = h.post("/api/v1/users", body={"email": email, "password": PASSWORD, "roles": ["operator"]})
        self.assertEqual(r.status, 201, r)
        r = h.post("/api/v1/auth/login", body={"email": email, "password": PASSWORD}, auth=None)
        self.assertEqual(r.status, 200, r)
        login = r.json()
        self.assertEqual(h.get("/api/v1/auth/me", auth=login["access_token"]).status, 200)

        r = wait_until(lambda: (lambda x: x if x.status == 401 else None)(h.get("/api/v1/auth/me", auth=login["access_token"])),
                       30, interval=0.5, what="the access token to expire")
        p = self.assertProblem(r, 401, "token-expired")
        self.assertIn("POST /api/v1/auth/refresh", p["detail"])
        self.assertIn("refresh token", p["detail"])
        self.assertEqual(r.headers["www-authenticate"],
                         'Bearer realm="farutech", error="invalid_token", error_description="the access token expired"')
        self.assertEqual(set(p), {"type", "title", "status", "detail", "instance", "request_id"})

        # doing what it says works
        r = h.post("/api/v1/auth/refresh", body={"refresh_token": login["refresh_token"]}, auth=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.get("/api/v1/auth/me", auth=r.json()["access_token"]).status, 200)

        # any other bad token keeps its answer
        bad = login["access_token"][:-4] + ("AAAA" if not login["access_token"].endswith("AAAA") else "BBBB")
        r = h.get("/api/v1/auth/me", auth=bad)
        self.assertProblem(r, 401, "unauthenticated")
        self.assertNotIn("expired", r.json()["detail"])

    # ---------------------------------------------------------------- deleted instances

    def test_a_deleted_instance_reads_as_deleted_by_id_as_in_the_list(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        iid = i["id"]
        wait_until(lambda: h.get(f"/api/v1/instances/{iid}").json()["status"] == "active", 60, what="provisioned")
        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{iid}").status, 202)

        def deleted_in_list():
            items = h.get(f"/api/v1/instances?customer_id={c['id']}&status=deleted").json()["items"]
            return [x for x in items if x["id"] == iid]
        listed = wait_until(deleted_in_list, 60, what="the instance listed as deleted")[0]

        r = h.get(f"/api/v1/instances/{iid}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "deleted")
        self.assertEqual(r.json()["id"], listed["id"])
        self.assertEqual(r.json()["code"], listed["code"])
        # the default list leaves deleted instances out, as documented
        self.assertEqual([x for x in h.get(f"/api/v1/instances?customer_id={c['id']}").json()["items"] if x["id"] == iid], [])
        # its history stays readable
        r = h.get(f"/api/v1/instances/{iid}/jobs")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(j["kind"] for j in r.json()["items"]), ["deprovision", "provision"])

        # what only a live instance has is gone, and says so
        gone = [
            ("GET", f"/api/v1/instances/{iid}/subscription", None),
            ("GET", f"/api/v1/instances/{iid}/entitlements", None),
            ("GET", f"/api/v1/instances/{iid}/overrides", None),
            ("PUT", f"/api/v1/instances/{iid}/overrides/telemedicine", {"enabled": True}),
            ("POST", f"/api/v1/instances/{iid}/subscription/suspend", None),
            ("GET", f"/api/v1/instances/{iid}/actions", None),
            ("DELETE", f"/api/v1/instances/{iid}", None),
        ]
        for method, path, body in gone:
            with self.subTest(f"{method} {path}"):
                r = h.request(method, path, body=body)
                p = self.assertProblem(r, 410, "instance-deleted")
                self.assertEqual(p["instance_id"], iid)
                self.assertTrue(p["deleted_at"], p)
                self.assertIn(f"GET /api/v1/instances/{iid}", p["detail"])
        # an id that never existed is still 404
        self.assertProblem(h.get("/api/v1/instances/00000000-0000-4000-8000-000000000000"), 404, "instance-not-found")
        self.assertProblem(h.get("/api/v1/instances/00000000-0000-4000-8000-000000000000/subscription"), 404,
                           "instance-not-found")

    # ---------------------------------------------------------------- the command line

    def run_cli(self, *args, **env):
        """farutech-host as a newcomer runs it from the checkout: no FT_* settings in the
        environment but the ones given (the local stack found through FT_VAR_DIR)."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
        e.update(env)
        p = subprocess.run([HOST_BIN, *args], env=e, capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr

    def test_commands_run_from_the_checkout_read_the_local_stack(self):
        stack_env = os.path.join(self.stack.dir, "stack.env")
        self.assertTrue(os.path.exists(stack_env))
        port = re.search(r"@127\.0\.0\.1:(\d+)/", self.stack.database_url).group(1)

        code, out, err = self.run_cli("config", FT_VAR_DIR=self.stack.dir)
        self.assertEqual(code, 0, err)
        self.assertIn(f"# settings not given otherwise come from the local stack: {stack_env}\n", out)
        self.assertIn(f"FT_DATABASE_URL=postgresql://farutech:***@127.0.0.1:{port}/farutech\n", out)
        self.assertNotIn(self.stack.database_url.split(":")[2].split("@")[0], out)  # the password stays masked

        # commands that need the database work with nothing else given
        code, out, err = self.run_cli("migrate", FT_VAR_DIR=self.stack.dir)
        self.assertEqual(code, 0, out + err)
        code, out, err = self.run_cli("create-api-key", "--name", "newcomer", "--role", "operator", FT_VAR_DIR=self.stack.dir)
        self.assertEqual(code, 0, out + err)
        self.assertTrue(out.strip().startswith("ftk_"), out)

        # the environment and a config file still win
        code, out, _ = self.run_cli("config", FT_VAR_DIR=self.stack.dir, FT_DATABASE_URL="postgresql://x@127.0.0.1:1/other")
        self.assertIn("FT_DATABASE_URL=postgresql://x@127.0.0.1:1/other\n", out)
        conf = os.path.join(self.stack.dir, "host.env")
        with open(conf, "w") as f:
            f.write("FT_THREADS=1\n")
        code, out, _ = self.run_cli("--config", conf, "config", FT_VAR_DIR=self.stack.dir)
        self.assertEqual(code, 0)
        self.assertNotIn("local stack", out)
        self.assertIn("FT_DATABASE_URL=postgresql://farutech@127.0.0.1:55432/farutech\n", out)

    def test_config_hides_the_switches_for_tests(self):
        code, out, err = self.run_cli("config")
        self.assertEqual(code, 0, err)
        self.assertIn("FT_HTTP_LISTEN=", out)
        self.assertNotIn("FT_DEV_ROUTES", out)
        self.assertNotIn("FT_RELAY_CRASH_AFTER_PUBLISH", out)
        code, out, _ = self.run_cli("config", "--all")
        self.assertEqual(code, 0)
        self.assertIn("FT_DEV_ROUTES=false\n", out)
        self.assertIn("FT_RELAY_CRASH_AFTER_PUBLISH=false\n", out)
        code, out, _ = self.run_cli("config", FT_DEV_ROUTES="true")
        self.assertIn("FT_DEV_ROUTES=true\n", out)  # a host running with one on says so
        self.assertNotIn("FT_RELAY_CRASH_AFTER_PUBLISH", out)


if __name__ == "__main__":
    main()
