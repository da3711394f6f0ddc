"""The OpenFeature Remote Evaluation Protocol, every answer shape: 200 (flags and limits),
304, 400 (PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING), 404 FLAG_NOT_FOUND, bulk. A
child-app key decides alone which instance is evaluated; other credentials name it in
context.targetingKey, within their scope."""

from fixtures import child_key, customer, instance, ofrep, settled
from harness import ProductsTestCase, main, wait_until


class Ofrep(ProductsTestCase):

    def setUp(self):
        super().setUp()
        self.h = self.host()
        c = customer(self.h)
        self.i = instance(self.h, c["id"], plan="professional")
        self.key = child_key(self.h, self.i["id"])
        # the instance's status is part of its entitlements (and ETag): let provisioning settle first
        settled(self.h, self.i["id"])

    def post(self, path, body, headers=None, credential=None):
        return self.h.request("POST", path, body=body, headers=headers, auth=credential or self.key)

    def assertSuccess(self, r, key):
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        body = r.json()
        for member in ("key", "value", "reason", "variant"):
            self.assertIn(member, body)
        self.assertEqual(body["key"], key)
        self.assertIn(body["reason"], ("STATIC", "TARGETING_MATCH", "DISABLED"))
        self.assertIsInstance(body["variant"], str)
        for v in body.get("metadata", {}).values():
            self.assertIsInstance(v, (bool, str, int, float))
        return body

    def assertError(self, r, status, code, key="__no_key__"):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        body = r.json()
        self.assertEqual(body["errorCode"], code)
        self.assertIsInstance(body["errorDetails"], str)
        if key != "__no_key__":
            self.assertEqual(body["key"], key)
        return body

    def test_a_flag_evaluates_to_a_boolean(self):
        b = self.assertSuccess(ofrep(self.h, "telemedicine", self.key), "telemedicine")
        self.assertIs(b["value"], True)
        self.assertEqual((b["reason"], b["variant"]), ("TARGETING_MATCH", "on"))
        b = self.assertSuccess(ofrep(self.h, "lab_integrations", self.key), "lab_integrations")
        self.assertIs(b["value"], False)
        self.assertEqual((b["reason"], b["variant"]), ("DISABLED", "off"))

    def test_a_limit_evaluates_to_a_number(self):
        b = self.assertSuccess(ofrep(self.h, "max_users", self.key), "max_users")
        self.assertEqual(b["value"], 25)
        self.assertIsInstance(b["value"], int)

    def test_an_override_shows_in_the_evaluation(self):
        self.h.request("PUT", f"/api/v1/instances/{self.i['id']}/overrides/max_users", body={"enabled": True, "limit": 99})
        b = self.assertSuccess(ofrep(self.h, "max_users", self.key), "max_users")
        self.assertEqual(b["value"], 99)
        self.assertEqual(b["metadata"]["source"], "override")

    def test_empty_or_missing_context_is_accepted(self):
        for body in (b"", b"{}", b'{"context":{}}', b'{"context":null}'):
            with self.subTest(body=body):
                r = self.post("/ofrep/v1/evaluate/flags/telemedicine", body=body, headers={"Content-Type": "application/json"})
                self.assertIs(self.assertSuccess(r, "telemedicine")["value"], True)

    def test_only_the_key_decides_the_instance(self):
        # another instance whose plan turns telemedicine off: naming it in the context changes nothing
        other = instance(self.h, customer(self.h)["id"], plan="essentials")
        for tk in (other["id"], "not-a-uuid", "00000000-0000-4000-8000-000000000009"):
            with self.subTest(targetingKey=tk):
                b = self.assertSuccess(ofrep(self.h, "telemedicine", self.key, {"targetingKey": tk}), "telemedicine")
                self.assertIs(b["value"], True)
        # the other instance's own key sees its own plan
        b = self.assertSuccess(ofrep(self.h, "telemedicine", child_key(self.h, other["id"])), "telemedicine")
        self.assertIs(b["value"], False)

    def test_other_credentials_name_the_instance_in_the_targeting_key(self):
        staff = self.h.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": {"targetingKey": self.i["id"]}})
        self.assertIs(self.assertSuccess(staff, "telemedicine")["value"], True)
        for body in (b"", b"{}", b'{"context":{}}', b'{"context":null}'):
            with self.subTest(body=body):
                r = self.h.post("/ofrep/v1/evaluate/flags/telemedicine", body=body, headers={"Content-Type": "application/json"})
                self.assertError(r, 400, "TARGETING_KEY_MISSING", "telemedicine")
        for tk in ("not-a-uuid", 5):
            with self.subTest(targetingKey=tk):
                r = self.h.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": {"targetingKey": tk}})
                self.assertError(r, 400, "INVALID_CONTEXT", "telemedicine")
        b = self.assertError(self.h.post("/ofrep/v1/evaluate/flags", body={"context": {}}), 400, "TARGETING_KEY_MISSING")
        self.assertNotIn("key", b)
        # a customer's credential reaches its own instances only
        other = customer(self.h)
        theirs = self.h.make_key("customer-viewer", customer=other["id"])
        r = self.h.request("POST", "/ofrep/v1/evaluate/flags/telemedicine", body={"context": {"targetingKey": self.i["id"]}},
                           auth=theirs)
        self.assertError(r, 400, "INVALID_CONTEXT", "telemedicine")  # as for an instance that does not exist
        self.assertNotIn("TARGETING_MATCH", r.body.decode())
        self.assertProblem(self.h.request("POST", "/ofrep/v1/evaluate/flags", body={}, auth=None), 401, "unauthenticated")

    def test_parse_error(self):
        r = self.post("/ofrep/v1/evaluate/flags/telemedicine", body=b"{not json", headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "PARSE_ERROR", "telemedicine")
        r = self.post("/ofrep/v1/evaluate/flags/telemedicine", body=b"[]", headers={"Content-Type": "application/json"})
        self.assertError(r, 400, "PARSE_ERROR", "telemedicine")

    def test_invalid_context(self):
        for body in ({"context": "x"}, {"context": {"targetingKey": 5}}, {"context": []}):
            with self.subTest(body=body):
                self.assertError(self.post("/ofrep/v1/evaluate/flags/telemedicine", body=body), 400, "INVALID_CONTEXT",
                                 "telemedicine")

    def test_unknown_flag_is_404_flag_not_found(self):
        b = self.assertError(ofrep(self.h, "warp_drive", self.key), 404, "FLAG_NOT_FOUND", "warp_drive")
        self.assertIn("vet", b["errorDetails"])

    def test_single_flag_etag_and_304(self):
        r = ofrep(self.h, "telemedicine", self.key)
        etag = r.headers["etag"]
        r2 = ofrep(self.h, "telemedicine", self.key, headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)

    def test_bulk_evaluation_with_etag(self):
        r = self.post("/ofrep/v1/evaluate/flags", body={"context": {}})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["content-type"].startswith("application/json"))
        body = r.json()
        self.assertIn("metadata", body)
        flags = {f["key"]: f for f in body["flags"]}
        self.assertGreaterEqual(len(flags), 10)
        self.assertIs(flags["telemedicine"]["value"], True)
        self.assertEqual(flags["max_users"]["value"], 25)
        for f in flags.values():
            for member in ("key", "value", "reason", "variant"):
                self.assertIn(member, f)
        etag = r.headers["etag"]
        r2 = self.post("/ofrep/v1/evaluate/flags", body={"context": {}}, headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.h.request("PUT", f"/api/v1/instances/{self.i['id']}/overrides/telemedicine", body={"enabled": False})
        r3 = self.post("/ofrep/v1/evaluate/flags", body={"context": {}}, headers={"If-None-Match": etag})
        self.assertEqual(r3.status, 200)
        self.assertNotEqual(r3.headers["etag"], etag)

    def test_bulk_errors_have_no_key(self):
        r = self.post("/ofrep/v1/evaluate/flags", body={"context": "x"})
        b = self.assertError(r, 400, "INVALID_CONTEXT")
        self.assertNotIn("key", b)

    def test_database_down_is_503_with_retry_after(self):
        admin = self.h.admin_key
        other = instance(self.h, customer(self.h)["id"])  # never evaluated: not in this host's cache
        self.assertEqual(self.h.get("/api/v1/auth/me", auth=admin).status, 200)  # the admin key is cached
        self.stack._run("stop-pg")
        try:
            r = self.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": {"targetingKey": other["id"]}}, credential=admin)
            b = self.assertError(r, 503, "GENERAL", key="telemedicine")
            self.assertEqual(r.headers.get("retry-after"), "1")
            self.assertIn("retry", b["errorDetails"])
            r = self.post("/ofrep/v1/evaluate/flags", body={"context": {"targetingKey": other["id"]}}, credential=admin)
            self.assertError(r, 503, "GENERAL")
        finally:
            self.stack._run("start-pg")
        wait_until(lambda: self.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": {"targetingKey": other["id"]}},
                                     credential=admin).status == 200, 30, what="evaluations after PostgreSQL is back")

    def test_configuration(self):
        r = self.h.request("GET", "/ofrep/v1/configuration", auth=self.key)
        self.assertEqual(r.status, 200)
        self.assertIn("flagEvaluation", r.json()["capabilities"])

    def test_other_context_attributes_are_fine(self):
        b = self.assertSuccess(ofrep(self.h, "telemedicine", self.key, {"user": "u1", "plan": "x", "n": 3}), "telemedicine")
        self.assertIs(b["value"], True)


if __name__ == "__main__":
    main()
