"""Runs tests/pg/test_products (the products' lifecycle steps through the plugin runtime)
against a real PostgreSQL started for it."""
import os
import subprocess
import unittest

from harness import BUILD, Stack, main


class Products(unittest.TestCase):

    def test_product_lifecycles_against_postgresql(self):
        stack = Stack("products").start()
        try:
            env = dict(os.environ, FT_TEST_DATABASE_URL=stack.database_url, FT_TEST_PRODUCTS_DIR=os.path.join(BUILD, "products"),
                       ASAN_OPTIONS="detect_leaks=1:halt_on_error=1", UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
            out = subprocess.run([os.path.join(BUILD, "tests", "test_products")], env=env, capture_output=True, text=True,
                                 timeout=600)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("4 of 4 passed", out.stdout)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
