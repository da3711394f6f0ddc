"""The operator console: its files served at /console/ with their security headers (and a 503 naming
FT_CONSOLE_DIR without them), and the console itself driven in Debian's chromium by the scripts
under tests/browser/ (playwright-core) against a real host. Each scenario saves screenshots of
its pages at 1280x800 and 390x844 in build/test/console/; a failing one also saves the page's
console log. The API reference page is rendered there too, with no CSP violation."""
import os
import secrets
import subprocess
import tempfile

from harness import BUILD, CONSOLE_DIR as CONSOLE, ROOT, ProductsTestCase, main

BROWSER = os.path.join(ROOT, "tests", "browser")
SHOTS = os.path.join(BUILD, "console")
CHROMIUM = os.environ.get("FT_CHROMIUM", "/usr/bin/chromium")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class Console(ProductsTestCase):

    def console_host(self, **env):
        e = {"FT_CONSOLE_DIR": CONSOLE}
        e.update(env)
        return self.host(env=e)

    def admin(self, h):
        """A platform admin user made with create-admin; returns (email, password)."""
        email = f"admin-{secrets.token_hex(4)}@example.com"
        password = "console " + secrets.token_hex(8)
        code, _, err = h.cli("create-admin", "--email", email, env={"FT_ADMIN_PASSWORD": password})
        self.assertEqual(code, 0, err)
        return email, password

    def browse(self, script, h, **env):
        """Runs tests/browser/<script> against host h; fails with its output when it fails."""
        self.assertTrue(os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: run packaging/install-deps.sh")
        self.assertTrue(os.path.isdir(os.path.join(BROWSER, "node_modules", "playwright-core")),
                        "playwright-core missing: run packaging/install-deps.sh")
        e = dict(os.environ, FT_URL=f"http://127.0.0.1:{h.port}", FT_SHOTS=SHOTS, FT_ADMIN_KEY=h.admin_key,
                 FT_CHROMIUM=CHROMIUM)
        e.update(env)
        p = subprocess.run(["node", os.path.join(BROWSER, script)], env=e, capture_output=True, text=True, timeout=600,
                           cwd=BROWSER)
        print(p.stdout, end="")
        if p.returncode != 0:
            self.fail(f"{script} failed ({p.returncode}); screenshots and the page's console log are in {SHOTS}\n"
                      f"{p.stdout[-4000:]}{p.stderr[-6000:]}")
        return p.stdout

    # ---- serving

    def test_the_console_is_served_with_a_strict_policy_and_an_etag(self):
        h = self.console_host()
        r = h.get("/console/index.html", auth=None)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(r.headers["content-security-policy"], CSP)
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        self.assertEqual(r.headers["referrer-policy"], "no-referrer")
        self.assertEqual(r.headers["cache-control"], "no-cache")
        with open(os.path.join(CONSOLE, "index.html"), "rb") as f:
            self.assertEqual(r.body, f.read())
        again = h.get("/console/index.html", auth=None, headers={"If-None-Match": r.headers["etag"]})
        self.assertEqual(again.status, 304, again)
        js = h.get("/console/js/pages/signin.js", auth=None)
        self.assertEqual(js.status, 200, js)
        self.assertEqual(js.headers["content-type"], "text/javascript; charset=utf-8")
        self.assertEqual(js.headers["content-security-policy"], CSP)
        self.assertEqual(h.get("/console/console.css", auth=None).headers["content-type"], "text/css; charset=utf-8")
        root = h.get("/console", auth=None)
        self.assertEqual(root.status, 308, root)
        self.assertEqual(root.headers["location"], "/console/")
        missing = h.get("/console/js/nothing.js", auth=None)
        self.assertProblem(missing, 404, "not-found")
        self.assertEqual(missing.headers["content-security-policy"], CSP)
        # what the allow list leaves out is not served, even when it is in the directory
        self.assertProblem(h.get("/console/js/pages/../../../README.md", auth=None), 404)
        # no endpoint of its own: the console's paths are files, every other method is refused
        self.assertProblem(h.post("/console/index.html", {}, auth=None), 405, "method-not-allowed")

    def test_a_host_without_the_console_directory_serves_the_api_and_says_why(self):
        empty = tempfile.mkdtemp(dir=self.stack.dir)
        h = self.console_host(FT_CONSOLE_DIR=os.path.join(empty, "nothing"))
        self.assertEqual(h.get("/api/v1/customers").status, 200)
        p = self.assertProblem(h.get("/console/index.html", auth=None), 503, "console-not-installed")
        self.assertIn("FT_CONSOLE_DIR", p["detail"])
        self.assertTrue(any("console not served" in str(line.get("msg")) for line in h.log_lines()))

    def test_the_api_reference_page_has_its_own_policy(self):
        h = self.host()
        r = h.get("/api/v1/docs", auth=None)
        self.assertEqual(r.status, 200, r)
        csp = r.headers["content-security-policy"]
        self.assertIn("frame-ancestors 'none'", csp)
        self.assertIn("script-src 'self';", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")

    def test_who_am_i_lists_the_permissions_the_roles_grant(self):
        """What the console shows or hides follows GET /api/v1/auth/me's permissions."""
        h = self.console_host()
        admin = h.get("/api/v1/auth/me").json()
        self.assertIn("customers:delete", admin["permissions"])
        self.assertEqual(len(admin["permissions"]), len(set(admin["permissions"])))
        viewer = h.make_key("product-manager", name="pm")
        perms = h.get("/api/v1/auth/me", auth=viewer).json()["permissions"]
        self.assertIn("overrides:write", perms)
        self.assertIn("self:read", perms)
        for p in ("customers:create", "instances:delete", "subscriptions:manage", "dlq:write", "plugins:reload"):
            self.assertNotIn(p, perms)

    # ---- in the browser

    def test_browser_sign_in_lockout_refresh_sign_out_and_an_ended_session(self):
        # access tokens of 10 s: the console refreshes them 5 s in (its floor), before they expire
        h = self.console_host(FT_LOGIN_MAX_FAILURES="3", FT_ACCESS_TOKEN_TTL_S="10")
        email, password = self.admin(h)
        self.browse("signin.mjs", h, FT_EMAIL=email, FT_PASSWORD=password, FT_LOGIN_MAX_FAILURES="3",
                    FT_ACCESS_TOKEN_TTL_S="10")

    def test_browser_customer_instance_to_active_override_and_the_subscription_actions(self):
        h = self.console_host()
        email, password = self.admin(h)
        out = self.browse("tenancy.mjs", h, FT_EMAIL=email, FT_PASSWORD=password)
        self.assertIn('provision click -> "active" on screen', out)

    def test_browser_a_read_only_user_sees_no_write_controls_and_a_forced_403(self):
        self.browse("readonly.mjs", self.console_host())

    def test_browser_the_api_reference_renders_with_no_policy_violation(self):
        self.browse("docs.mjs", self.host())


if __name__ == "__main__":
    main()
