"""Customers, tenant instances and subscriptions over the REST API, against real PostgreSQL:
code uniqueness per customer, pagination and filters, plan changes, trials, suspension,
cancellation, overrides, events in the outbox, jobs queued, and validation everywhere."""
import json
import os
import shutil
import tempfile
import time

from fixtures import customer, entitlements, instance, settled
from harness import BUILD, ProductsTestCase, main


class Tenancy(ProductsTestCase):

    # ---------------------------------------------------------------- customers

    def test_customer_create_get_update_delete(self):
        h = self.host()
        c = customer(h, legal_name="Veterinaria Sur SAS", contact={"name": "Ana", "email": "ana@sur.test"})
        self.assertEqual(c["legal_name"], "Veterinaria Sur SAS")
        self.assertEqual(c["contact"], {"name": "Ana", "email": "ana@sur.test", "phone": None})
        self.assertEqual(c["status"], "active")
        self.assertEqual(h.get(f"/api/v1/customers/{c['id']}").json(), c)
        r = h.request("PATCH", f"/api/v1/customers/{c['id']}", body={"legal_name": "Veterinaria Sur", "contact": {"phone": "+57 1 555"}})
        self.assertEqual(r.status, 200, r)
        u = r.json()
        self.assertEqual(u["legal_name"], "Veterinaria Sur")
        self.assertEqual(u["contact"], {"name": "Ana", "email": "ana@sur.test", "phone": "+57 1 555"})
        self.assertEqual(h.request("DELETE", f"/api/v1/customers/{c['id']}").status, 204)
        self.assertProblem(h.get(f"/api/v1/customers/{c['id']}"), 404, "customer-not-found")
        events = self.stack.psql(
            f"SELECT string_agg(type, ',' ORDER BY seq) FROM ft_outbox WHERE aggregate_id = '{c['id']}'", h.dbname)
        self.assertEqual(events, "dev.farutech.customer.created.v1,dev.farutech.customer.updated.v1,"
                                 "dev.farutech.customer.deleted.v1")

    def test_tax_id_is_unique_per_country(self):
        h = self.host()
        c = customer(h, country="CO")
        p = self.assertProblem(h.post("/api/v1/customers", body={"legal_name": "X", "tax_id": c["tax_id"], "country": "CO"}),
                               409, "tax-id-taken")
        self.assertEqual(p["errors"][0]["pointer"], "#/tax_id")
        self.assertEqual(h.post("/api/v1/customers", body={"legal_name": "X", "tax_id": c["tax_id"], "country": "MX"}).status, 201)

    def test_customer_list_paginates_with_a_cursor_and_filters(self):
        h = self.host()
        tag = "Paginate" + str(time.monotonic_ns())
        ids = [customer(h, legal_name=f"{tag} {i}", country="PE")["id"] for i in range(5)]
        seen, cursor = [], None
        while True:
            q = f"/api/v1/customers?q={tag}&limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = h.get(q).json()
            self.assertLessEqual(len(page["items"]), 2)
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, ids)
        self.assertEqual(len(h.get(f"/api/v1/customers?q={tag}&country=PE&status=active").json()["items"]), 5)
        self.assertEqual(h.get(f"/api/v1/customers?q={tag}&country=AR").json()["items"], [])
        self.assertProblem(h.get("/api/v1/customers?limit=0"), 400, "invalid-parameter")
        self.assertProblem(h.get("/api/v1/customers?limit=abc"), 400, "invalid-parameter")
        self.assertProblem(h.get("/api/v1/customers?cursor=garbage"), 400, "invalid-parameter")
        self.assertProblem(h.get("/api/v1/customers?status=gone"), 400, "invalid-parameter")

    def test_customer_with_live_instances_cannot_be_deleted(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        p = self.assertProblem(h.request("DELETE", f"/api/v1/customers/{c['id']}"), 409, "customer-has-instances")
        self.assertEqual(p["live_instances"], 1)
        self.assertIn(i["code"], p["detail"])
        self.assertEqual(h.get(f"/api/v1/customers/{c['id']}").status, 200)

    # ---------------------------------------------------------------- instances

    def test_instance_creates_subscription_and_provisioning_job(self):
        h = self.host()
        c = customer(h)
        r = h.post(f"/api/v1/customers/{c['id']}/instances",
                   body={"code": "norte", "product": "vet", "plan": "professional", "tier": "enterprise",
                         "environment": "staging", "settings": {"admin_email": "vet@norte.test", "clinic_name": "Norte"}})
        self.assertEqual(r.status, 202, r)
        i = r.json()
        self.assertEqual(r.headers["location"], f"/api/v1/instances/{i['id']}")
        self.assertEqual((i["code"], i["product"], i["tier"], i["environment"], i["status"]),
                         ("norte", "vet", "enterprise", "staging", "pending"))
        self.assertEqual(i["subscription"]["plan"], {"code": "professional", "version": 1})
        self.assertEqual(i["subscription"]["status"], "active")
        self.assertEqual(i["settings"]["currency"], "USD")  # the schema's default, filled in
        self.assertEqual(i["latest_job"]["kind"], "provision")
        self.assertEqual(i["latest_job"]["status"], "queued")
        steps = self.stack.psql(f"SELECT string_agg(name, ',' ORDER BY position) FROM ft_job_steps WHERE job_id = "
                                f"'{i['latest_job']['id']}'", h.dbname)
        self.assertIn("create_schema", steps)
        ev = json.loads(self.stack.psql(
            f"SELECT event FROM ft_outbox WHERE type = 'dev.farutech.instance.provisioning_requested.v1' "
            f"AND aggregate_id = '{i['id']}'", h.dbname))
        self.assertEqual(ev["specversion"], "1.0")
        self.assertEqual(ev["tenantid"], i["id"])
        self.assertEqual(ev["data"]["job_id"], i["latest_job"]["id"])
        self.assertTrue(ev["correlationid"])
        self.assertEqual(h.get(f"/api/v1/instances/{i['id']}").json()["id"], i["id"])

    def test_instance_code_is_unique_per_customer_only(self):
        h = self.host()
        a, b = customer(h), customer(h)
        instance(h, a["id"], code="main")
        r = h.post(f"/api/v1/customers/{a['id']}/instances", body={"code": "main", "product": "erp", "plan": "essentials",
                                                                   "settings": {"admin_email": "x@y.test"}})
        p = self.assertProblem(r, 409, "instance-code-taken")
        self.assertEqual(p["errors"][0]["pointer"], "#/code")
        instance(h, b["id"], code="main")  # another customer: fine
        n = self.stack.psql(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{a['id']}'", h.dbname)
        self.assertEqual(n, "1")  # nothing half-written

    def test_instance_validation_names_the_field_and_writes_nothing(self):
        h = self.host()
        c = customer(h)
        url = f"/api/v1/customers/{c['id']}/instances"
        base = {"code": "ok", "product": "vet", "plan": "essentials", "settings": {"admin_email": "a@b.test"}}
        cases = [
            ({**base, "code": "Bad Code"}, 400, "invalid-body", "#/code"),
            ({**base, "tier": "gold"}, 400, "invalid-body", "#/tier"),
            ({**base, "extra": 1}, 400, "invalid-body", "#/extra"),
            ({**base, "code": 7}, 400, "invalid-body", "#/code"),
            ({k: v for k, v in base.items() if k != "plan"}, 400, "invalid-body", "#/plan"),
            ({**base, "product": "nope"}, 422, "unknown-product", "#/product"),
            ({**base, "plan": "platinum"}, 422, "unknown-plan", "#/plan"),
            ({**base, "settings": {}}, 422, "invalid-settings", "#/settings/admin_email"),
            ({**base, "settings": {"admin_email": "not-an-email"}}, 422, "invalid-settings", "#/settings/admin_email"),
            ({**base, "settings": {"admin_email": "a@b.test", "currency": "XYZ"}}, 422, "invalid-settings", "#/settings/currency"),
            ({**base, "settings": {"admin_email": "a@b.test", "surprise": 1}}, 422, "invalid-settings", "#/settings/surprise"),
            ({**base, "trial": True}, 422, "no-trial", "#/trial"),
        ]
        for body, status, slug, pointer in cases:
            with self.subTest(body=body):
                p = self.assertProblem(h.post(url, body=body), status, slug)
                self.assertIn(pointer, [e["pointer"] for e in p["errors"]], p)
        self.assertProblem(h.post("/api/v1/customers/not-a-uuid/instances", body=base), 400, "invalid-parameter")
        self.assertProblem(h.post("/api/v1/customers/00000000-0000-4000-8000-000000000000/instances", body=base), 404,
                           "customer-not-found")
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{c['id']}'", h.dbname), "0")

    def test_instances_list_by_customer_and_filters(self):
        h = self.host()
        c = customer(h)
        v = instance(h, c["id"], product="vet")
        e = instance(h, c["id"], product="erp", plan="essentials")
        items = h.get(f"/api/v1/customers/{c['id']}/instances").json()["items"]
        self.assertEqual([i["id"] for i in items], [v["id"], e["id"]])
        items = h.get(f"/api/v1/instances?customer_id={c['id']}&product=erp").json()["items"]
        self.assertEqual([i["id"] for i in items], [e["id"]])
        self.assertProblem(h.get("/api/v1/instances?status=sleeping"), 400, "invalid-parameter")

    def test_removing_an_instance_queues_deprovisioning_once(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        settled(h, i["id"])  # removal waits for provisioning to end (409 instance-busy meanwhile)
        r = h.request("DELETE", f"/api/v1/instances/{i['id']}")
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["status"], "deprovisioning")
        job = r.json()["latest_job"]
        self.assertEqual(job["kind"], "deprovision")
        r2 = h.request("DELETE", f"/api/v1/instances/{i['id']}")
        self.assertEqual(r2.json()["latest_job"]["id"], job["id"])  # asked twice, one job

    # ---------------------------------------------------------------- subscriptions

    def test_upgrade_applies_now_and_downgrade_waits_for_the_period_end(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"], plan="professional")
        s = h.post(f"/api/v1/instances/{i['id']}/subscription/plan", body={"plan": "enterprise"}).json()
        self.assertEqual(s["plan"]["code"], "enterprise")
        self.assertIsNone(s["pending_change"])
        s = h.post(f"/api/v1/instances/{i['id']}/subscription/plan", body={"plan": "essentials"}).json()
        self.assertEqual(s["plan"]["code"], "enterprise")
        self.assertEqual(s["pending_change"]["plan"], "essentials")
        self.assertEqual(s["pending_change"]["effective_at"], s["current_period_end"])
        s = h.post(f"/api/v1/instances/{i['id']}/subscription/plan", body={"plan": "essentials", "when": "now"}).json()
        self.assertEqual(s["plan"]["code"], "essentials")
        self.assertProblem(h.post(f"/api/v1/instances/{i['id']}/subscription/plan", body={"plan": "gold"}), 422, "unknown-plan")
        kinds = self.stack.psql(f"SELECT string_agg(kind, ',' ORDER BY created_at) FROM ft_jobs WHERE instance_id = '{i['id']}'",
                                h.dbname)
        self.assertEqual(kinds, "provision,features_changed,features_changed")

    def test_suspend_resume_and_cancel(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        base = f"/api/v1/instances/{i['id']}/subscription"
        self.assertEqual(h.post(base + "/suspend").json()["status"], "suspended")
        self.assertEqual(h.post(base + "/suspend").json()["status"], "suspended")  # idempotent
        self.assertEqual(h.post(base + "/resume").json()["status"], "active")
        s = h.post(base + "/cancel", body={"at_period_end": True}).json()
        self.assertTrue(s["cancel_at_period_end"])
        self.assertEqual(s["status"], "active")
        self.assertEqual(h.post(base + "/cancel").json()["status"], "canceled")
        self.assertProblem(h.post(base + "/resume"), 409, "subscription-state")
        self.assertProblem(h.post(base + "/plan", body={"plan": "enterprise"}), 409, "subscription-state")

    def test_trial_with_an_end_date(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"], trial=True)
        self.assertEqual(i["subscription"]["status"], "trialing")
        self.assertTrue(i["subscription"]["trial_ends_at"])
        r = h.post(f"/api/v1/instances/{i['id']}/subscription/trial", body={"ends_at": "2099-01-01T00:00:00Z"})
        self.assertEqual(r.json()["trial_ends_at"], "2099-01-01T00:00:00+00:00")
        self.assertProblem(h.post(f"/api/v1/instances/{i['id']}/subscription/trial", body={"ends_at": "2001-01-01T00:00:00Z"}),
                           422, "invalid-trial")
        self.assertProblem(h.post(f"/api/v1/instances/{i['id']}/subscription/trial", body={"ends_at": "tomorrow"}), 400,
                           "invalid-body")

    def test_overrides_are_validated_listed_and_searchable_across_customers(self):
        h = self.host()
        a, b = customer(h), customer(h)
        ia, ib = instance(h, a["id"]), instance(h, b["id"])
        url = f"/api/v1/instances/{ia['id']}/overrides"
        r = h.request("PUT", url + "/telemedicine", body={"enabled": False, "reason": "contract clause 7"})
        self.assertEqual(r.status, 200, r)
        o = r.json()["overrides"][0]
        me = h.get("/api/v1/auth/me").json()["subject"]  # who set it is the credential's subject
        self.assertTrue(me.startswith("key:"), me)
        self.assertEqual((o["feature"], o["enabled"], o["reason"], o["set_by"]), ("telemedicine", False, "contract clause 7", me))
        h.request("PUT", f"/api/v1/instances/{ib['id']}/overrides/telemedicine", body={"enabled": True})
        self.assertProblem(h.request("PUT", url + "/teleportation", body={"enabled": True}), 422, "unknown-feature")
        self.assertProblem(h.request("PUT", url + "/telemedicine", body={"enabled": True, "limit": 5}), 422, "limit-on-flag")
        self.assertProblem(h.request("PUT", url + "/max_users", body={"enabled": True, "limit": -1}), 400, "invalid-body")
        self.assertProblem(h.request("PUT", url + "/max_users", body={"limit": 3}), 400, "invalid-body")
        who = h.get("/api/v1/products/vet/features/telemedicine/overrides").json()["overrides"]
        mine = {w["instance"]["id"]: w["override"]["enabled"] for w in who}
        self.assertEqual(mine.get(ia["id"]), False)
        self.assertEqual(mine.get(ib["id"]), True)
        self.assertEqual(h.request("DELETE", url + "/telemedicine").status, 200)
        self.assertProblem(h.request("DELETE", url + "/telemedicine"), 404, "override-not-found")
        self.assertEqual(h.get(url).json()["overrides"], [])

    def test_a_retired_feature_cannot_be_overridden_and_leaves_entitlements(self):
        d = tempfile.mkdtemp(prefix="plugins-", dir=self.stack.dir)
        shutil.copy(os.path.join(BUILD, "tests", "plugins", "ok", "fixture.so"), os.path.join(d, "fixture.so"))
        h = self.host(env={"FT_PLUGIN_DIR": d})
        c = customer(h)
        r = h.post(f"/api/v1/customers/{c['id']}/instances", body={"code": "fx", "product": "fixture", "plan": "small"})
        self.assertEqual(r.status, 202, r)
        i = r.json()
        self.assertEqual(h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/beta", body={"enabled": True}).status, 200)
        self.assertTrue(entitlements(h, i["id"])["features"]["beta"]["enabled"])
        shutil.copy(os.path.join(BUILD, "tests", "plugins", "drop_beta", "fixture.so"), os.path.join(d, ".new"))
        os.rename(os.path.join(d, ".new"), os.path.join(d, "fixture.so"))
        self.assertEqual(h.post("/api/v1/plugins/fixture/reload").status, 200)
        p = self.assertProblem(h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/beta", body={"enabled": False}), 422,
                               "unknown-feature")
        self.assertIn("beta", p["detail"])
        self.assertNotIn("beta", entitlements(h, i["id"])["features"])
        # the override row stays (history), the feature row is retired, not deleted
        self.assertEqual(self.stack.psql(
            "SELECT retired_at IS NOT NULL FROM ft_features WHERE product_code = 'fixture' AND code = 'beta'", h.dbname), "t")


if __name__ == "__main__":
    main()
