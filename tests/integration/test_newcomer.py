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


if __name__ == "__main__":
    main()
