"""Entitlement resolution over REST against real PostgreSQL: plan features, overrides that beat
the plan both ways, limits, expiry, dependencies, suspension and trials, ETag/304, and a second
host process seeing a change within a second."""
import datetime
import time

from fixtures import customer, entitlements, instance
from harness import ProductsTestCase, main, wait_until


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Entitlements(ProductsTestCase):

    def setUp(self):
        super().setUp()
        self.h = self.host()
        self.c = customer(self.h)

    def put(self, i, feature, **body):
        r = self.h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/{feature}", body=body)
        self.assertEqual(r.status, 200, r)

    def test_plan_features_are_on_and_the_rest_off(self):
        i = instance(self.h, self.c["id"], plan="essentials")
        e = entitlements(self.h, i["id"])
        self.assertEqual((e["product"], e["plan"]["code"], e["instance_id"]), ("vet", "essentials", i["id"]))
        f = e["features"]
        self.assertTrue(f["appointments"]["enabled"])
        self.assertEqual(f["appointments"]["source"], "plan")
        self.assertEqual(f["max_users"], {**f["max_users"], "enabled": True, "value": 5, "kind": "limit"})
        self.assertFalse(f["telemedicine"]["enabled"])
        self.assertEqual(f["telemedicine"]["value"], False)
        self.assertIn("not in plan essentials", f["telemedicine"]["reason"])

    def test_override_beats_the_plan_both_ways_and_sets_limits(self):
        i = instance(self.h, self.c["id"], plan="essentials")
        self.put(i, "appointments", enabled=False, reason="billing dispute")
        self.put(i, "telemedicine", enabled=True)
        self.put(i, "max_users", enabled=True, limit=40)
        self.put(i, "max_branches", enabled=True)  # on without a value: keeps the plan's
        f = entitlements(self.h, i["id"])["features"]
        self.assertFalse(f["appointments"]["enabled"])
        self.assertEqual(f["appointments"]["source"], "override")
        self.assertIn("billing dispute", f["appointments"]["reason"])
        # telemedicine requires appointments, which the override switched off
        self.assertFalse(f["telemedicine"]["enabled"])
        self.assertIn("requires appointments", f["telemedicine"]["reason"])
        self.assertEqual(f["max_users"]["value"], 40)
        self.assertEqual(f["max_branches"]["value"], 1)
        self.h.request("DELETE", f"/api/v1/instances/{i['id']}/overrides/appointments")
        f = entitlements(self.h, i["id"])["features"]
        self.assertTrue(f["appointments"]["enabled"])
        self.assertTrue(f["telemedicine"]["enabled"])  # on by override now that its requirement is on
        self.assertEqual(f["telemedicine"]["source"], "override")

    def test_a_limit_switched_on_outside_the_plan_gets_its_default(self):
        i = instance(self.h, self.c["id"], plan="essentials")
        self.put(i, "online_booking", enabled=True)
        self.put(i, "sms_reminders", enabled=True)
        self.put(i, "sms_monthly_quota", enabled=True)
        f = entitlements(self.h, i["id"])["features"]
        self.assertTrue(f["sms_reminders"]["enabled"])
        self.assertEqual(f["sms_monthly_quota"]["value"], 500)  # the feature's default

    def test_dependencies_switch_off_whole_chains(self):
        i = instance(self.h, self.c["id"], plan="professional")
        self.assertTrue(entitlements(self.h, i["id"])["features"]["sms_monthly_quota"]["enabled"])
        self.put(i, "online_booking", enabled=False)
        f = entitlements(self.h, i["id"])["features"]
        self.assertFalse(f["sms_reminders"]["enabled"])
        self.assertIn("requires online_booking", f["sms_reminders"]["reason"])
        self.assertFalse(f["sms_monthly_quota"]["enabled"])
        self.assertEqual(f["sms_monthly_quota"]["value"], 0)
        self.assertIn("requires sms_reminders", f["sms_monthly_quota"]["reason"])

    def test_an_expired_override_is_ignored(self):
        i = instance(self.h, self.c["id"], plan="essentials")
        now = datetime.datetime.now(datetime.timezone.utc)
        self.put(i, "telemedicine", enabled=True, expires_at=iso(now + datetime.timedelta(seconds=5)))
        self.put(i, "lab_integrations", enabled=True, expires_at=iso(now - datetime.timedelta(seconds=5)))
        e = entitlements(self.h, i["id"])
        self.assertTrue(e["features"]["telemedicine"]["enabled"])
        self.assertIn("expires_at", e["features"]["telemedicine"])
        self.assertIsNotNone(e["valid_until"])
        self.assertFalse(e["features"]["lab_integrations"]["enabled"])
        # past the expiry the cached record is stale and re-resolved
        wait_until(lambda: not entitlements(self.h, i["id"])["features"]["telemedicine"]["enabled"], 60, interval=0.25,
                   what="the override to expire")

    def test_suspension_and_an_ended_trial_switch_everything_off(self):
        i = instance(self.h, self.c["id"])
        self.h.post(f"/api/v1/instances/{i['id']}/subscription/suspend")
        f = entitlements(self.h, i["id"])["features"]
        self.assertFalse(any(v["enabled"] for v in f.values()))
        self.assertIn("suspended", f["appointments"]["reason"])
        self.h.post(f"/api/v1/instances/{i['id']}/subscription/resume")
        self.assertTrue(entitlements(self.h, i["id"])["features"]["appointments"]["enabled"])
        j = instance(self.h, self.c["id"], trial=True)
        self.assertTrue(entitlements(self.h, j["id"])["features"]["appointments"]["enabled"])
        self.stack.psql(f"UPDATE ft_subscriptions SET trial_ends_at = now() - interval '1 second' WHERE instance_id = '{j['id']}'",
                        self.h.dbname)
        f = wait_until(lambda: (lambda e: e if not e["features"]["appointments"]["enabled"] else None)(entitlements(self.h, j["id"])),
                       30, what="trial end")["features"]
        self.assertIn("trial has ended", f["appointments"]["reason"])

    def test_etag_and_if_none_match(self):
        i = instance(self.h, self.c["id"])
        r = self.h.get(f"/api/v1/instances/{i['id']}/entitlements")
        etag = r.headers["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{16}"$')
        r2 = self.h.get(f"/api/v1/instances/{i['id']}/entitlements", headers={"If-None-Match": etag})
        self.assertEqual(r2.status, 304)
        self.assertEqual(r2.body, b"")
        self.assertEqual(r2.headers["etag"], etag)
        self.put(i, "telemedicine", enabled=False)
        r3 = self.h.get(f"/api/v1/instances/{i['id']}/entitlements", headers={"If-None-Match": etag})
        self.assertEqual(r3.status, 200)
        self.assertNotEqual(r3.headers["etag"], etag)
        self.assertGreater(r3.json()["version"], r.json()["version"])

    def test_unknown_and_malformed_instance_ids(self):
        self.assertProblem(self.h.get("/api/v1/instances/00000000-0000-4000-8000-000000000001/entitlements"), 404,
                           "instance-not-found")
        self.assertProblem(self.h.get("/api/v1/instances/nope/entitlements"), 400, "invalid-parameter")

    def test_a_second_host_sees_a_change_within_one_second(self):
        other = self.host(dbname=self.h.dbname)
        i = instance(self.h, self.c["id"], plan="professional")
        url = f"/api/v1/instances/{i['id']}/entitlements"
        self.assertTrue(other.get(url).json()["features"]["telemedicine"]["enabled"])  # now cached on the other host
        for enabled in (False, True, False):
            self.put(i, "telemedicine", enabled=enabled)
            t0 = time.monotonic()
            wait_until(lambda: other.get(url).json()["features"]["telemedicine"]["enabled"] == enabled, 1.0, interval=0.01,
                       what="the other host to see the change")
            self.assertLess(time.monotonic() - t0, 1.0)
        # and a change written straight to the database (another tool) reaches both through NOTIFY
        self.stack.psql(f"UPDATE ft_subscriptions SET status = 'suspended' WHERE instance_id = '{i['id']}'", self.h.dbname)
        wait_until(lambda: not other.get(url).json()["features"]["appointments"]["enabled"], 1.0, interval=0.01,
                   what="the direct change to arrive")

    def test_cache_is_warmed_at_start(self):
        i = instance(self.h, self.c["id"])
        h2 = self.host(dbname=self.h.dbname)
        wait_until(lambda: "entitlements: " in "".join(l.get("msg", "") for l in h2.log_lines()), 60, what="warm-up")
        metrics = h2.get("/metrics").body.decode()
        line = [l for l in metrics.splitlines() if l.startswith("ft_entitlements_cached ")][0]
        self.assertGreaterEqual(int(line.split()[1]), 1)
        self.assertEqual(entitlements(h2, i["id"])["instance_id"], i["id"])


if __name__ == "__main__":
    main()
