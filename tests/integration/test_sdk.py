"""The plugin SDK outside this tree, as a product team uses it: `cmake --install` of this build
into a scratch prefix (checked to be exactly the documented layout, with the installed binary's
defaults there and not in the build tree), then the template copied out of the tree and renamed,
built against that prefix with find_package (and once with pkg-config), linted with the installed
farutech-plugin-lint, dropped into a running host's plugin directory, reloaded through the API,
and an instance of the new product provisioned. Prints the time from the copy to the
provisioned instance."""
import os
import re
import shutil
import sys
import tempfile
import time

from fixtures import customer, instance
from harness import BUILD, ROOT, StackTestCase, console_files, main, run, wait_until


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        return re.search(rf"^{name}:\w+=(.*)$", f.read(), re.M).group(1)


def files_under(top):
    return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top) for f in fs)


class Sdk(StackTestCase):

    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="farutech-prefix-")  # outside the build tree
        run("cmake", "--install", BUILD, "--prefix", cls.prefix)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def test_cmake_install_lays_out_exactly_the_documented_tree(self):
        migrations = sorted(f for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql"))
        events = sorted(f for f in os.listdir(os.path.join(ROOT, "docs", "events")) if f.endswith(".schema.json"))
        expected = sorted(
            ["bin/farutech-host", "bin/farutech-plugin-lint", "etc/farutech/farutech.conf", "include/farutech/plugin.h",
             "lib/cmake/FarutechPlugin/FarutechPlugin.cmake", "lib/cmake/FarutechPlugin/FarutechPluginConfig.cmake",
             "lib/cmake/FarutechPlugin/FarutechPluginConfigVersion.cmake", "lib/cmake/FarutechPlugin/ftp.map",
             "share/pkgconfig/farutech-plugin.pc", "share/farutech/plugin-template/CMakeLists.txt",
             "share/farutech/plugin-template/template.c", "share/farutech/docs/redoc.standalone.js",
             "bin/farutech", "share/bash-completion/completions/farutech",
             "share/farutech/prometheus/alerts.yml", "share/farutech/grafana/farutech.json"]
            + [f"lib/farutech/products/{p}.so" for p in ("vet", "erp", "crm", "pos")]
            + [f"share/farutech/migrations/{m}" for m in migrations] + [f"share/farutech/events/{e}" for e in events]
            + [f"share/farutech/console/{c}" for c in console_files()])
        self.assertEqual(files_under(self.prefix), expected)

        # the installed binary's defaults: the configured prefix's paths, never the build tree
        env = {k: v for k, v in os.environ.items() if not k.startswith("FT_")}
        out = run(os.path.join(self.prefix, "bin", "farutech-host"), "config", env=env)
        prefix = cache_value("CMAKE_INSTALL_PREFIX")
        self.assertIn(f"FT_PLUGIN_DIR={prefix}/lib/farutech/products\n", out)
        self.assertIn(f"FT_MIGRATIONS_DIR={prefix}/share/farutech/migrations\n", out)
        self.assertIn(f"FT_DOCS_DIR={prefix}/share/farutech/docs\n", out)
        self.assertIn(f"FT_CONSOLE_DIR={prefix}/share/farutech/console\n", out)
        self.assertNotIn(BUILD, out)
        self.assertNotIn("local stack", out)

    def test_pkg_config_gives_what_a_plugin_build_needs(self):
        work = tempfile.mkdtemp(prefix="pc-", dir=self.stack.dir)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "share", "pkgconfig"))
        flags = run("pkg-config", "--cflags", "--libs", "farutech-plugin", env=env).split()
        flags += run("pkg-config", "--variable=plugin_cflags", "farutech-plugin", env=env).split()
        so = os.path.join(work, "template.so")
        run("cc", "-std=c11", "-fPIC", "-shared", "-Wall", "-Werror", "-o", so,
            os.path.join(self.prefix, "share", "farutech", "plugin-template", "template.c"), *flags)
        self.assertIn(": ok", run(os.path.join(self.prefix, "bin", "farutech-plugin-lint"), so))

    def test_the_template_becomes_a_provisioned_product_outside_the_tree(self):
        plugins = tempfile.mkdtemp(prefix="plugins-", dir=self.stack.dir)
        h = self.host(env={"FT_PLUGIN_DIR": plugins})
        self.assertEqual(h.get("/api/v1/products").json()["products"], [])
        work = tempfile.mkdtemp(prefix="team-")  # a product team's checkout, far from this tree

        t0 = time.monotonic()
        src = os.path.join(work, "notes")
        shutil.copytree(os.path.join(self.prefix, "share", "farutech", "plugin-template"), src)
        for name in ("CMakeLists.txt", "template.c"):
            path = os.path.join(src, name)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace("template", "notes").replace("Template", "Notes"))
        os.rename(os.path.join(src, "template.c"), os.path.join(src, "notes.c"))
        run("cmake", "-S", src, "-B", os.path.join(src, "build"), f"-DCMAKE_PREFIX_PATH={self.prefix}")
        run("cmake", "--build", os.path.join(src, "build"))
        so = os.path.join(src, "build", "notes.so")
        self.assertIn("notes.so: ok", run(os.path.join(self.prefix, "bin", "farutech-plugin-lint"), so))
        shutil.copy(so, os.path.join(plugins, ".notes.so.new"))
        os.rename(os.path.join(plugins, ".notes.so.new"), os.path.join(plugins, "notes.so"))
        r = h.post("/api/v1/plugins/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(h.get("/api/v1/products/notes").json()["name"], "Notes")
        c = customer(h)
        i = instance(h, c["id"], product="notes", plan="free")
        wait_until(lambda: h.get(f"/api/v1/instances/{i['id']}").json()["status"] == "active", 120, what="notes provisioned")
        elapsed = time.monotonic() - t0

        print(f"\ntemplate copied to an instance of it provisioned: {elapsed:.1f} s", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
