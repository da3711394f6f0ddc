"""Entitlement resolution over REST against real PostgreSQL: plan features, overrides that beat
the plan both ways, limits, expiry, dependencies, suspension and trials, ETag/304, a second
host process seeing a change within a second, every answer agreeing with its ETag and with OFREP
across the four products, a bounded cache that evicts and still answers, and cold reads served by
the entitlement readers while the request pool is busy."""
import calendar
import datetime
import hashlib
import json
import time

from fixtures import customer, entitlements, instance, settled
from harness import ProductsTestCase, in_thread, main, wait_until


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def etag_of(doc):
    """The ETag the REST document should carry: SHA-256 over the instance line and one line per
    feature in code order (each cut at 255 bytes), its first 8 bytes in hex, quoted."""
    sources = {"none": 0, "plan": 1, "override": 2}
    text = (f"{doc['instance_id']}|{doc['product']}|{doc['plan']['code']}|{doc['plan']['version']}|"
            f"{doc['subscription_status']}|{doc['instance_status']}\n").encode()
    for code in sorted(doc["features"]):
        f = doc["features"][code]
        value = int(f["enabled"]) if f["kind"] == "flag" else f["value"]
        expires = 0
        if "expires_at" in f:
            t = datetime.datetime.strptime(f["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
            expires = calendar.timegm(t.timetuple()) * 1000000 + t.microsecond
        line = f"{code}={int(f['enabled'])}:{value}:{sources[f['source']]}:{expires}:{f['reason']}\n".encode()
        text += line[:255]
    return '"' + hashlib.sha256(text).hexdigest()[:16] + '"'


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
        settled(self.h, i["id"])  # provisioning's end changes the instance's status, and so the ETag
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

    def test_every_answer_agrees_with_its_etag_and_with_ofrep_across_the_four_products(self):
        """Each record is written from its plan's shared base and its own differences: the document
        must still be compact JSON in its fixed member order, carry the ETag of what it says, and
        say what OFREP says, for plan-only, overridden, suspended and trialing instances."""
        tomorrow = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
        cases = []
        for product in ("vet", "erp", "crm", "pos"):
            plain = instance(self.h, self.c["id"], product=product)
            over = instance(self.h, self.c["id"], product=product)
            features = entitlements(self.h, over["id"])["features"]
            on = sorted(k for k, v in features.items() if v["enabled"])
            off = sorted(k for k, v in features.items() if not v["enabled"])
            limits = sorted(k for k, v in features.items() if v["kind"] == "limit" and v["enabled"])
            self.put(over, on[0], enabled=False, reason='a "quoted" reason: ñ, \\ and a\ttab')
            if off:
                self.put(over, off[-1], enabled=True, expires_at=iso(tomorrow))
            self.put(over, limits[-1], enabled=True, limit=7)
            suspended = instance(self.h, self.c["id"], product=product)
            self.h.post(f"/api/v1/instances/{suspended['id']}/subscription/suspend")
            trialing = instance(self.h, self.c["id"], product=product, trial=True)
            cases += [plain, over, suspended, trialing]
        members = ["instance_id", "customer_id", "product", "plan", "subscription_status", "instance_status", "version",
                   "resolved_at", "valid_until", "features"]

        def quiet(i):
            # the end of provisioning changes the record: compare REST and OFREP once it has ended
            items = self.h.get(f"/api/v1/instances/{i['id']}/jobs").json()["items"]
            return all(j["status"] in ("succeeded", "failed") for j in items)
        for i in cases:
            wait_until(lambda: quiet(i), 120, what=f"instance {i['id']}'s jobs to end")
            r = self.h.get(f"/api/v1/instances/{i['id']}/entitlements")
            self.assertEqual(r.status, 200, r)
            body = r.body.decode()
            doc = json.loads(body)
            self.assertEqual(body, json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
            self.assertEqual(list(doc), members)
            self.assertEqual(list(doc["features"]), sorted(doc["features"]))
            self.assertEqual(r.headers["etag"], etag_of(doc), doc)
            bulk = self.h.post("/ofrep/v1/evaluate/flags", body={"context": {"targetingKey": i["id"]}})
            self.assertEqual(bulk.status, 200, bulk)
            self.assertEqual(bulk.headers["etag"], r.headers["etag"])
            flags = bulk.json()["flags"]
            self.assertEqual([f["key"] for f in flags], list(doc["features"]))
            for f in flags:
                mine = doc["features"][f["key"]]
                self.assertEqual((f["value"], f["variant"], f["metadata"]["source"], f["metadata"]["entitlementsVersion"]),
                                 (mine["value"], "on" if mine["enabled"] else "off", mine["source"], doc["version"]), f)
            one = self.h.post(f"/ofrep/v1/evaluate/flags/{flags[0]['key']}", body={"context": {"targetingKey": i["id"]}})
            self.assertEqual(one.json(), flags[0])

    def test_a_bounded_cache_evicts_cold_records_and_still_answers_every_instance(self):
        """With FT_ENTITLEMENT_CACHE_MAX below the instances there are, the warm-up stops at the
        bound, reads beyond it evict, the count stays bounded, and every instance is answered."""
        mine = instance(self.h, self.c["id"])
        self.stack.psql(f"""
            INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, settings, status)
            SELECT '{self.c['id']}', 'bound-' || g, 'vet', 'standard', 'production', '{{}}', 'active'
            FROM generate_series(1, 1500) g;
            INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status)
            SELECT customer_id, id, 'vet', 'essentials', 1, 'active' FROM ft_instances WHERE code LIKE 'bound-%'""", self.h.dbname)
        ids = self.stack.psql("SELECT id FROM ft_instances WHERE code LIKE 'bound-%' ORDER BY id DESC LIMIT 300",
                              self.h.dbname).split()
        small = self.host(dbname=self.h.dbname, env={"FT_ENTITLEMENT_CACHE_MAX": "1000"})
        wait_until(lambda: "entitlements: " in "".join(l.get("msg", "") for l in small.log_lines()), 60, what="warm-up")

        def metric(name):
            return self.metric(small, name)
        self.assertLessEqual(metric("ft_entitlements_cached"), 1024)
        before = metric("ft_entitlements_evictions_total")
        for iid in ids + [mine["id"]]:
            e = entitlements(small, iid)
            self.assertEqual(e["instance_id"], iid)
        self.assertGreater(metric("ft_entitlements_evictions_total"), before)
        self.assertLessEqual(metric("ft_entitlements_cached"), 1024)
        self.assertEqual(entitlements(small, ids[0])["features"], entitlements(self.h, ids[0])["features"])

    def metric(self, h, name):
        line = [l for l in h.get("/metrics").body.decode().splitlines() if l.startswith(name + " ")][0]
        return float(line.split()[1])

    def test_a_cold_read_does_not_wait_behind_the_request_pool(self):
        """The request pool's only connection is held by a 20 s statement (the pool gives up on a
        wait after 10 s, so a read queued behind it would be answered 503): a cold read is answered
        200 while that statement still runs, by the entitlement readers (their counter moves), and
        with the readers switched off (FT_ENTITLEMENT_READERS=0) the counter stays still."""
        h = self.host(env={"FT_DB_POOL_SIZE": "1", "FT_DEV_ROUTES": "true"})
        # its listeners connected (each forgets the cache it guards when it connects), the warm-up
        # done: then the admin key is cached by the next request and the new instance stays cold
        listening = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'farutech-host-listen'"
        wait_until(lambda: self.stack.psql(listening, h.dbname) == "4", 60, what="the host's four listeners")
        wait_until(lambda: "entitlements: " in "".join(l.get("msg", "") for l in h.log_lines()), 60, what="warm-up")
        cold = instance(h, customer(h)["id"])  # created after the warm-up, never read: not in the cache
        self.assertEqual(self.metric(h, "ft_db_lane_connections"), 0)  # opened on the first cold read
        before = self.metric(h, "ft_db_lane_jobs_total")
        sleeping = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND query LIKE 'SELECT pg_sleep%' AND state = 'active' AND pid <> pg_backend_pid()")
        join = in_thread(lambda: h.get("/api/v1/_dev/sleep?ms=20000", timeout=60))
        wait_until(lambda: self.stack.psql(sleeping, h.dbname) == "1", 60, what="the pool's connection held by pg_sleep")
        self.assertEqual(self.metric(h, "ft_db_pool_connections_in_use"), 1)
        e = entitlements(h, cold["id"])
        self.assertEqual(e["instance_id"], cold["id"])
        self.assertEqual(self.stack.psql(sleeping, h.dbname), "1")  # answered while the pool was still held
        self.assertEqual(self.metric(h, "ft_db_lane_jobs_total"), before + 1)
        self.assertEqual(self.metric(h, "ft_db_lane_connections"), 1)
        self.assertEqual(join().status, 200)

        off = self.host(dbname=h.dbname, env={"FT_ENTITLEMENT_READERS": "0"})
        other = instance(off, customer(off)["id"])
        self.assertEqual(entitlements(off, other["id"])["instance_id"], other["id"])
        self.assertEqual(self.metric(off, "ft_db_lane_jobs_total"), 0)


if __name__ == "__main__":
    main()
