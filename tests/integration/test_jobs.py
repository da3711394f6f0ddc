"""Jobs everywhere: GET /api/v1/jobs with its filters, cursor pages and scoping, and live progress
over Server-Sent Events (a job's steps, an instance's entitlements)."""
import os
import urllib.parse

from fixtures import customer
from harness import FAULTY, StackTestCase, main, plugin_dir, wait_until


class JobsCase(StackTestCase):
    """Hosts with the products and the faulty test product (its nap step makes a job slow)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plugins = plugin_dir(cls.stack.dir, FAULTY)

    def host(self, start=True, **kw):
        env = {"FT_PLUGIN_DIR": self.plugins, "FT_RELAY_POLL_MS": "1000"}
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)

    def create(self, h, c, product="faulty", plan="basic", settings=None):
        body = {"code": "j" + os.urandom(4).hex(), "product": product, "plan": plan,
                "settings": settings if settings is not None else {"admin_email": "a@b.test"}}
        r = h.post(f"/api/v1/customers/{c['id']}/instances", body=body)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def job(self, h, job_id):
        r = h.get(f"/api/v1/jobs/{job_id}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_job(self, h, job_id, statuses=("succeeded",)):
        return wait_until(lambda: (lambda j: j if j["status"] in statuses else None)(self.job(h, job_id)), 120,
                          interval=0.05, what=f"job {job_id} to be {' or '.join(statuses)}")

    def jobs(self, h, auth="admin", **query):
        r = h.get("/api/v1/jobs?" + urllib.parse.urlencode(query), auth=auth)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def ids(self, h, auth="admin", **query):
        return {j["id"] for j in self.jobs(h, auth=auth, limit=200, **query)["items"]}


class TestJobList(JobsCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # one database for the whole class: an API-only host queues, a worker host runs what is
        # queued while it lives, so the jobs end in different states
        cls.db = cls.stack.create_database()

    def test_filters_pages_and_scopes(self):
        h = self.host(dbname=self.db, env={"FT_ROLES": "api,relay"})
        c1, c2 = customer(h), customer(h)
        a = self.create(h, c1)                                         # faulty, customer 1
        b = self.create(h, c2, product="vet", plan="professional")     # vet, customer 2
        d = self.create(h, c2)                                         # faulty, customer 2
        w = self.host(dbname=self.db, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w.start(wait=False)
        for i in (a, b, d):
            self.wait_job(h, i["latest_job"]["id"])
        w.terminate()
        r = h.request("DELETE", f"/api/v1/instances/{a['id']}")
        self.assertEqual(r.status, 202, r)
        removal = self.job(h, r.json()["latest_job"]["id"])
        self.assertEqual((removal["kind"], removal["status"]), ("deprovision", "queued"))
        pa, pb, pd = (i["latest_job"]["id"] for i in (a, b, d))
        mine = {pa, pb, pd, removal["id"]}

        # the shape: the job as GET /api/v1/jobs/{id} has it, newest first, a null cursor at the end
        page = self.jobs(h, limit=200)
        self.assertIsNone(page["next_cursor"])
        listed = [j for j in page["items"] if j["id"] in mine]
        self.assertEqual([j["id"] for j in listed], [removal["id"], pd, pb, pa])
        self.assertEqual(listed[0], self.job(h, removal["id"]))
        # every filter, alone and together
        self.assertEqual(self.ids(h, status="queued") & mine, {removal["id"]})
        self.assertEqual(self.ids(h, status="succeeded") & mine, {pa, pb, pd})
        self.assertEqual(self.ids(h, kind="deprovision") & mine, {removal["id"]})
        self.assertEqual(self.ids(h, kind="provision") & mine, {pa, pb, pd})
        self.assertEqual(self.ids(h, product="vet") & mine, {pb})
        self.assertEqual(self.ids(h, instance_id=a["id"]), {pa, removal["id"]})
        self.assertEqual(self.ids(h, customer_id=c2["id"]), {pb, pd})
        self.assertEqual(self.ids(h, customer_id=c1["id"], kind="provision"), {pa})
        self.assertEqual(self.ids(h, customer_id=c2["id"], product="faulty", status="succeeded"), {pd})
        # created_after / created_before are exclusive bounds
        created = {j["id"]: j["created_at"] for j in listed}
        self.assertEqual(self.ids(h, created_after=created[pb]) & mine, {pd, removal["id"]})
        self.assertEqual(self.ids(h, created_before=created[pb]) & mine, {pa})
        self.assertEqual(self.ids(h, created_after=created[pa], created_before=created[pd]), {pb})
        self.assertEqual(self.ids(h, created_after="2999-01-01T00:00:00Z"), set())

        # pages of one and two walk everything once, in order
        for size in (1, 2, 3):
            seen, cursor = [], None
            while True:
                q = {"limit": size, **({"cursor": cursor} if cursor else {})}
                p = self.jobs(h, **q)
                self.assertLessEqual(len(p["items"]), size)
                seen += [j["id"] for j in p["items"]]
                cursor = p["next_cursor"]
                if cursor is None:
                    break
            self.assertEqual(seen, [j["id"] for j in page["items"]], f"pages of {size}")
            self.assertEqual(len(seen), len(set(seen)))

        # a customer's key sees its own jobs only, and cannot widen that with a filter
        k2 = h.make_key("customer-viewer", customer=c2["id"])
        self.assertEqual(self.ids(h, auth=k2), {pb, pd})
        self.assertEqual(self.ids(h, auth=k2, customer_id=c1["id"]), set())
        self.assertEqual(self.ids(h, auth=k2, instance_id=a["id"]), set())
        # a child app's key sees its instance's jobs only
        ck = h.make_key("child-app", customer=c2["id"], instance=d["id"])
        self.assertEqual(self.ids(h, auth=ck), {pd})

    def test_every_bad_parameter_is_a_problem_naming_it(self):
        h = self.host(dbname=self.db, env={"FT_ROLES": "api"})
        bad = [("status", "done"), ("kind", "reboot"), ("instance_id", "not-a-uuid"), ("customer_id", "123"),
               ("created_after", "yesterday"), ("created_before", "2026-13-01T00:00:00Z"),
               ("created_after", "2026-02-30T00:00:00Z"), ("limit", "0"), ("limit", "201"), ("limit", "x"),
               ("cursor", "nonsense"), ("cursor", "12.not-a-uuid"), ("product", "p" * 200)]
        for name, value in bad:
            r = h.get("/api/v1/jobs?" + urllib.parse.urlencode({name: value}))
            p = self.assertProblem(r, 400, "invalid-parameter")
            self.assertEqual(p["errors"][0]["parameter"], name, (name, value, p))
        # a well-formed timestamp with an offset is accepted
        r = h.get("/api/v1/jobs?" + urllib.parse.urlencode({"created_after": "2026-01-31T12:00:00.5+01:00"}))
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    main()
