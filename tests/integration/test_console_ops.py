"""The operator console's operations pages in Debian's chromium against real hosts: the job list
with filters and a job followed live to 100%; a job failed with the faulty test product found in
the DLQ, inspected, replayed (and the job run again) and another discarded, then both found in
the audit search; the plugins and hosts page on a fleet of two hosts (per-host generations, a
fleet reload with per-host results, a failing rollout whose skew is highlighted, the reload in
the audit search) and what a product manager may not do; the catalog down to a feature's
overrides. The scripts are tests/browser/{jobs,dlq,plugins,catalog}.mjs; screenshots go where
integration.console puts its own (build/test/console/)."""
import os
import shutil

import test_console as core
from harness import BUILD, FAULTY, PRODUCTS_DIR, StackTestCase, main, plugin_dir, wait_until

FIXTURES = os.path.join(BUILD, "tests", "plugins")


class ConsoleOps(StackTestCase):

    admin = core.Console.admin
    browse = core.Console.browse

    def ops_host(self, plugins=None, **env):
        e = {"FT_CONSOLE_DIR": core.CONSOLE, "FT_PLUGIN_DIR": plugins or plugin_dir(self.stack.dir, FAULTY)}
        e.update(env)
        return self.host(env=e)

    def signed(self, h, script, **env):
        email, password = self.admin(h)
        return self.browse(script, h, FT_EMAIL=email, FT_PASSWORD=password, **env)

    def fault_file(self):
        return os.path.join(self.stack.dir, "fault-" + os.urandom(4).hex())

    def test_browser_jobs_list_filters_and_a_job_followed_live_to_the_end(self):
        # retries seconds apart: time to watch the failed attempt before the fault is removed
        h = self.ops_host(FT_JOB_BACKOFF_MS="3000", FT_JOB_BACKOFF_MAX_MS="30000")
        self.signed(h, "jobs.mjs", FT_FAULT=self.fault_file())

    def test_browser_dlq_inspect_replay_discard_and_the_audit_search(self):
        h = self.ops_host(FT_JOB_BACKOFF_MS="100", FT_JOB_BACKOFF_MAX_MS="400", FT_JOB_ACK_WAIT_MS="2000")
        self.signed(h, "dlq.mjs", FT_FAULT=self.fault_file())

    def test_browser_plugins_and_hosts_fleet_reload_skew_and_a_role_without_reload(self):
        dirs = []
        for _ in range(2):
            d = os.path.join(self.stack.dir, "plugins-" + os.urandom(4).hex())
            os.mkdir(d)
            shutil.copy(os.path.join(FIXTURES, "ok", "fixture.so"), os.path.join(d, "fixture.so"))
            dirs.append(d)
        fast = {"FT_HOST_HEARTBEAT_MS": "300", "FT_ROLES": "api"}
        a = self.ops_host(dirs[0], **fast)
        # b refuses the fixture's version 5: a rollout of it fails there and leaves the fleet skewed
        self.host(env={"FT_PLUGIN_DIR": dirs[1], "FIXTURE_REFUSE": "1", **fast}, dbname=a.dbname)
        wait_until(lambda: len(a.get("/api/v1/hosts").json()["hosts"]) == 2, 30, what="two live hosts")
        self.signed(a, "plugins.mjs", FT_PLUGIN_DIR_A=dirs[0],
                    FT_FIXTURE_REFUSED=os.path.join(FIXTURES, "host_refuses", "fixture.so"))

    def test_browser_catalog_products_modules_features_plans_and_overrides(self):
        h = self.ops_host(PRODUCTS_DIR)
        self.signed(h, "catalog.mjs")


if __name__ == "__main__":
    main()
