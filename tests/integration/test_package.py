"""The Debian packages as an operator gets them: built by packaging/deb.sh (a release build; or
taken from FT_DEB_DIR), lintian without errors, the config file declared a conffile, and unpacked
with dpkg-deb into a scratch root, never installed on this machine: the layout, the unpacked
binary's defaults (the installed paths), the example config naming every setting the binary
knows, and the unpacked host serving the four products against the test PostgreSQL and
nats-server."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

from harness import BUILD, ROOT, StackTestCase, console_files, main, run, wait_until

PACKAGES = ("farutech-host", "farutech-products", "farutech-plugin-dev")
PRODUCTS = ("vet", "erp", "crm", "pos")
CONFFILE = "/etc/farutech/farutech.conf"


def settings_of(dump):
    """KEY -> value of `farutech-host config` output (comment lines left out)."""
    return dict(line.split("=", 1) for line in dump.splitlines() if line and not line.startswith("#"))


class Package(StackTestCase):

    @classmethod
    def setUpClass(cls):
        cls.debs_dir = os.environ.get("FT_DEB_DIR")
        if not cls.debs_dir:
            cls.debs_dir = os.path.join(BUILD, "deb")
            t0 = time.monotonic()
            run(os.path.join(ROOT, "packaging", "deb.sh"), cls.debs_dir, timeout=1800)
            print(f"\npackaging/deb.sh took {time.monotonic() - t0:.0f} s", file=sys.stderr)
        cls.debs = {}
        for name in PACKAGES:
            [path] = glob.glob(os.path.join(cls.debs_dir, f"{name}_*.deb"))
            cls.debs[name] = path
        for path in sorted(glob.glob(os.path.join(cls.debs_dir, "*.deb"))):
            print(f"{os.path.getsize(path) / 1024:8.1f} KiB  {os.path.basename(path)}", file=sys.stderr)
        cls.root = tempfile.mkdtemp(prefix="farutech-root-")  # outside the build tree, as an installed system is
        for path in cls.debs.values():
            run("dpkg-deb", "-x", path, cls.root)
        cls.bin = os.path.join(cls.root, "usr", "bin", "farutech-host")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.root, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def cli(self, *args, **env):
        """The unpacked farutech-host with no FT_* settings but those given."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
        e.update(env)
        return run(self.bin, *args, env=e)

    # ---------------------------------------------------------------- the packages themselves

    def test_lintian_reports_no_errors(self):
        report = os.path.join(self.debs_dir, "lintian.txt")
        if os.path.exists(report):
            with open(report) as f:
                text = f.read()
        else:
            p = subprocess.run(["lintian", *self.debs.values()], capture_output=True, text=True, timeout=600)
            text = p.stdout + p.stderr
        errors = [line for line in text.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], text)
        print(f"\nlintian: {sum(line.startswith('W:') for line in text.splitlines())} warnings", file=sys.stderr)

    def test_the_config_file_is_a_conffile_and_the_host_package_makes_its_user(self):
        control = tempfile.mkdtemp(prefix="control-", dir=self.stack.dir)
        run("dpkg-deb", "-e", self.debs["farutech-host"], control)
        with open(os.path.join(control, "conffiles")) as f:
            self.assertIn(CONFFILE, f.read().split())
        with open(os.path.join(control, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system --group --quiet --home /var/lib/farutech", postinst)
        # the units, when the tree has them: farutech.target enabled, and restarted after an upgrade
        if os.path.exists(os.path.join(ROOT, "packaging", "systemd", "farutech@.service")):
            files = run("dpkg-deb", "-c", self.debs["farutech-host"])
            for unit in ("farutech@.service", "farutech.target"):
                self.assertIn(f"./lib/systemd/system/{unit}", files)
            self.assertIn("deb-systemd-invoke $_dh_action 'farutech.target'", postinst)
        fields = run("dpkg-deb", "-f", self.debs["farutech-host"], "Depends")
        self.assertIn("adduser", fields)
        for name in ("farutech-products", "farutech-plugin-dev"):
            other = tempfile.mkdtemp(prefix="control-", dir=self.stack.dir)
            run("dpkg-deb", "-e", self.debs[name], other)
            self.assertFalse(os.path.exists(os.path.join(other, "conffiles")), name)

    def test_the_packages_hold_the_installed_layout(self):
        expected = {
            "farutech-host": ["usr/bin/farutech-host", "etc/farutech/farutech.conf", "usr/share/farutech/migrations",
                              "usr/share/farutech/events", "usr/share/man/man1/farutech-host.1.gz", "usr/bin/farutech",
                              "usr/share/bash-completion/completions/farutech", "usr/share/man/man1/farutech.1.gz",
                              "usr/share/farutech/prometheus/alerts.yml", "usr/share/farutech/grafana/farutech.json",
                              "usr/share/farutech/docs/redoc.standalone.js", "usr/share/farutech/console/index.html",
                              "usr/share/farutech/console/js/app.js"],
            "farutech-products": [f"usr/lib/farutech/products/{p}.so" for p in PRODUCTS],
            "farutech-plugin-dev": ["usr/include/farutech/plugin.h", "usr/bin/farutech-plugin-lint",
                                    "usr/lib/cmake/FarutechPlugin/FarutechPluginConfig.cmake",
                                    "usr/lib/cmake/FarutechPlugin/FarutechPluginConfigVersion.cmake",
                                    "usr/lib/cmake/FarutechPlugin/FarutechPlugin.cmake", "usr/lib/cmake/FarutechPlugin/ftp.map",
                                    "usr/share/pkgconfig/farutech-plugin.pc", "usr/share/farutech/plugin-template/CMakeLists.txt",
                                    "usr/share/farutech/plugin-template/template.c",
                                    "usr/share/man/man1/farutech-plugin-lint.1.gz"],
        }
        for name, paths in expected.items():
            files = run("dpkg-deb", "-c", self.debs[name])
            for p in paths:
                with self.subTest(package=name, path=p):
                    self.assertIn(f"./{p}", files)
        self.assertEqual(sorted(os.listdir(self.path("usr/share/farutech/migrations"))),
                         sorted(f for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql")))
        self.assertEqual(sorted(os.listdir(self.path("usr/share/farutech/events"))),
                         sorted(f for f in os.listdir(os.path.join(ROOT, "docs", "events")) if f.endswith(".schema.json")))
        self.assertEqual(sorted(os.listdir(self.path("usr/lib/farutech/products"))), sorted(f"{p}.so" for p in PRODUCTS))
        console = self.path("usr/share/farutech/console")
        self.assertEqual(sorted(os.path.relpath(os.path.join(t, f), console) for t, _, fs in os.walk(console) for f in fs),
                         console_files())
        out = run(self.path("usr/bin/farutech-plugin-lint"), *glob.glob(self.path("usr/lib/farutech/products/*.so")))
        self.assertEqual(out.count(": ok"), 4, out)

    # ---------------------------------------------------------------- the unpacked binary

    def test_the_unpacked_binary_defaults_to_the_installed_paths(self):
        out = self.cli("config", "--all")
        s = settings_of(out)
        self.assertEqual(s["FT_PLUGIN_DIR"], "/usr/lib/farutech/products")
        self.assertEqual(s["FT_MIGRATIONS_DIR"], "/usr/share/farutech/migrations")
        self.assertNotIn(BUILD, out)
        self.assertNotIn(ROOT, out)
        self.assertNotIn("local stack", out)
        self.assertIn(CONFFILE, self.cli("--help"))

    def test_the_example_config_names_every_setting_with_its_default(self):
        conf = self.path(CONFFILE.lstrip("/"))
        with open(conf) as f:
            text = f.read()
        known = settings_of(self.cli("config", "--all"))
        named = {line.lstrip("#").split("=", 1)[0] for line in text.splitlines() if line.lstrip("#").startswith("FT_")}
        self.assertEqual(sorted(set(known) - named), [], "settings the example config does not name")
        self.assertEqual(sorted(named - set(known)), [], "names in the example config the binary does not know")
        # as shipped (every line a comment) it loads; every line taken in gives the defaults again
        self.assertEqual(settings_of(self.cli("--config", conf, "config", "--all")), known)
        uncommented = os.path.join(self.stack.dir, "uncommented.conf")
        with open(uncommented, "w") as f:
            f.write("\n".join(line[1:] if line.startswith("#FT_") else line for line in text.splitlines()) + "\n")
        self.assertEqual(settings_of(self.cli("--config", uncommented, "config", "--all")), known)

    def test_the_unpacked_host_loads_the_products_applies_migrations_and_gets_ready(self):
        conf = os.path.join(self.stack.dir, "scratch-root.conf")
        with open(conf, "w") as f:
            f.write(f"# the scratch root's copies, since the defaults point at /usr\n"
                    f"FT_PLUGIN_DIR={self.path('usr/lib/farutech/products')}\n"
                    f"FT_MIGRATIONS_DIR={self.path('usr/share/farutech/migrations')}\n"
                    f"FT_DOCS_DIR={self.path('usr/share/farutech/docs')}\n"
                    f"FT_CONSOLE_DIR={self.path('usr/share/farutech/console')}\n")
        # FT_CONFIG too, so the harness's own create-api-key call reads the same file
        h = self.host(start=False, binary=self.bin, env={"FT_CONFIG": conf})
        h.start(args=("--config", conf, "serve"))
        wait_until(lambda: h.get("/ready").status == 200, 60, what="/ready 200")
        plugins = {p["product"]: p for p in h.get("/api/v1/plugins").json()["plugins"]}
        self.assertEqual(sorted(plugins), sorted(PRODUCTS))
        for code in PRODUCTS:
            self.assertEqual(plugins[code]["state"], "active", plugins[code])
        applied = self.stack.psql("SELECT count(*) FROM ft_schema_migrations", h.dbname)
        self.assertEqual(int(applied), len(os.listdir(self.path("usr/share/farutech/migrations"))))
        self.assertEqual(h.get("/api/v1/products/vet").status, 200)
        # the API reference, its renderer from the package
        self.assertEqual(h.get("/api/v1/docs", auth=None).status, 200)
        self.assertEqual(h.get("/api/v1/docs/redoc.standalone.js", auth=None).status, 200)
        # the operator console, from the package
        self.assertEqual(h.get("/console/index.html", auth=None).status, 200)
        # the operator CLI beside it talks to it
        out = run(self.path("usr/bin/farutech"), "--server", f"http://127.0.0.1:{h.port}", "plugins", "list",
                  env={**os.environ, "FARUTECH_API_KEY": h.admin_key})
        self.assertIn("vet", out)


if __name__ == "__main__":
    main()
