"""Pooled tenant databases: registering more than one database for the Standard tier, placing
each new Standard instance by the policy (least-loaded by default, fill-first on request) in the
transaction that creates it, the load per database, closed and full databases, the instances
made before a second database existed, and the operator API's validation, permissions and
discretion about passwords. Provisions run through the real pipeline into the placed database."""
import json
import secrets
import urllib.parse

from fixtures import customer, instance, settled
from harness import ProductsTestCase, free_port, in_thread, main, wait_until

PATIENT = {"name": "Luna", "species": "dog", "owner_name": "Ana Ruiz", "owner_phone": "+573001234567"}
PASSWORD = "pw-" + secrets.token_hex(8)  # in URLs of databases that cannot be reached; never to be shown


class Pools(ProductsTestCase):

    def host(self, start=True, capacity=None, **kw):
        env = {"FT_RELAY_POLL_MS": "500", "FT_JOB_BACKOFF_MS": "150", "FT_JOB_BACKOFF_MAX_MS": "2000"}
        if capacity is not None:
            env["FT_TENANT_DATABASE_CAPACITY"] = str(capacity)
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)

    def url(self, dbname):
        """The stack's URL for dbname: with its password (the server asks for it)."""
        u = self.stack.url_for(dbname)
        self.assertTrue(urllib.parse.urlsplit(u).password, u)
        return u

    def shown(self, dbname):
        """The URL the API shows for dbname: the same without the password."""
        parts = urllib.parse.urlsplit(self.stack.url_for(dbname))
        return parts._replace(netloc=f"{parts.username}@{parts.hostname}:{parts.port}").geturl()

    def register(self, h, name, capacity, dbname=None):
        dbname = dbname or self.stack.create_database()
        r = h.post("/api/v1/tenant-databases", body={"name": name, "url": self.url(dbname), "capacity": capacity})
        self.assertEqual(r.status, 201, r)
        d = r.json()
        d["dbname"] = dbname
        self.assertEqual(r.headers.get("location"), f"/api/v1/tenant-databases/{d['id']}")
        return d

    def databases(self, h):
        r = h.get("/api/v1/tenant-databases")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        return doc, {d["name"]: d for d in doc["tenant_databases"]}

    def patch(self, h, d, body, status=200):
        r = h.request("PATCH", f"/api/v1/tenant-databases/{d['id']}", body=body)
        self.assertEqual(r.status, status, r)
        return r.json()

    def rows(self, dbname, instance_id):
        """The instance's vet users in dbname (0 when the schema is not there at all)."""
        if self.stack.psql("SELECT to_regclass('vet.users') IS NOT NULL", dbname) != "t":
            return 0
        return int(self.stack.psql(f"SELECT count(*) FROM vet.users WHERE tenant_id = '{instance_id}'", dbname))

    def count_instances(self, h):
        return int(self.stack.psql("SELECT count(*) FROM ft_instances", h.dbname))

    # ---------------------------------------------------------------- placement

    def test_least_loaded_spreads_by_capacity_into_the_placed_databases(self):
        h = self.host(capacity=2)
        doc, dbs = self.databases(h)
        self.assertEqual(doc["policy"], "least-loaded")
        self.assertEqual(list(dbs), ["default"])
        self.assertEqual((dbs["default"]["capacity"], dbs["default"]["instances"], dbs["default"]["load"]), (2, 0, 0))
        self.assertEqual(dbs["default"]["url"], self.shown("farutech_tenants"))
        pool = self.register(h, "pool-b", 4)
        self.assertEqual((pool["name"], pool["capacity"], pool["status"], pool["instances"], pool["load"]), ("pool-b", 4, "open", 0, 0))
        c = customer(h)
        made = [instance(h, c["id"]) for _ in range(6)]
        # by load relative to capacity, ties by name: default 0/2 = pool-b 0/4, then pool-b twice per default
        self.assertEqual([i["placement"]["database_name"] for i in made],
                         ["default", "pool-b", "pool-b", "default", "pool-b", "pool-b"])
        ids = {"default": dbs["default"]["id"], "pool-b": pool["id"]}
        for i in made:
            self.assertEqual(i["placement"]["database_id"], ids[i["placement"]["database_name"]])
            self.assertEqual(set(i["placement"]), {"database_id", "database_name"})  # no address, no credentials

        where = {"default": "farutech_tenants", "pool-b": pool["dbname"]}
        for i in made:
            a = settled(h, i["id"])
            placed = i["placement"]["database_name"]
            self.assertEqual(a["placement"], i["placement"])
            self.assertEqual(a["data_location"], {"tier": "standard", "database": where[placed], "schema": "vet"})
            other = "pool-b" if placed == "default" else "default"
            self.assertEqual(self.rows(where[placed], i["id"]), 1, i)
            self.assertEqual(self.rows(where[other], i["id"]), 0, i)
        # the schema in the new database is under row-level security like the default one's
        self.assertEqual(self.stack.psql("SELECT relrowsecurity FROM pg_class WHERE oid = 'vet.users'::regclass", pool["dbname"]), "t")

        _, dbs = self.databases(h)
        self.assertEqual((dbs["default"]["instances"], dbs["default"]["load"]), (2, 1))
        self.assertEqual((dbs["pool-b"]["instances"], dbs["pool-b"]["load"]), (4, 1))
        self.assertEqual(h.get(f"/api/v1/tenant-databases/{pool['id']}").json()["instances"], 4)
        p = self.assertProblem(h.request("PATCH", f"/api/v1/tenant-databases/{pool['id']}", body={"capacity": 3, "status": "closed"}),
                               409, "capacity-below-placements")
        self.assertEqual((p["instances"], p["errors"][0]["pointer"]), (4, "#/capacity"))
        self.assertEqual(self.databases(h)[1]["pool-b"]["status"], "open")  # nothing of the refused change applied

        # both full: 409 naming each database's load, and nothing written
        before = self.count_instances(h)
        outbox = self.stack.psql("SELECT count(*) FROM ft_outbox", h.dbname)
        r = h.post(f"/api/v1/customers/{c['id']}/instances",
                   body={"code": "one-too-many", "product": "vet", "plan": "professional", "settings": {"admin_email": "a@b.test"}})
        p = self.assertProblem(r, 409, "pooled-capacity-exhausted")
        self.assertEqual({(d["name"], d["instances"], d["capacity"]) for d in p["tenant_databases"]},
                         {("default", 2, 2), ("pool-b", 4, 4)})
        self.assertEqual(self.count_instances(h), before)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_outbox", h.dbname), outbox)
        # an Enterprise instance has a database of its own and needs no pooled room
        e = instance(h, c["id"], tier="enterprise")
        self.assertIsNone(e["placement"])
        # a removed instance frees its slot
        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{made[1]['id']}").status, 202)
        settled(h, made[1]["id"], statuses=("deleted",))
        self.assertEqual(self.rows(pool["dbname"], made[1]["id"]), 0)
        _, dbs = self.databases(h)
        self.assertEqual((dbs["pool-b"]["instances"], dbs["pool-b"]["load"]), (3, 0.75))
        self.assertEqual(instance(h, c["id"])["placement"]["database_name"], "pool-b")

    def test_fill_first_packs_databases_in_name_order(self):
        h = self.host(capacity=2, env={"FT_PLACEMENT_POLICY": "fill-first"})
        self.assertEqual(self.databases(h)[0]["policy"], "fill-first")
        self.register(h, "a-pool", 1)
        self.register(h, "z-pool", 5)
        c = customer(h)
        self.assertEqual([instance(h, c["id"])["placement"]["database_name"] for _ in range(4)],
                         ["a-pool", "default", "default", "z-pool"])

    def test_the_last_slot_goes_to_one_of_two_concurrent_creations(self):
        h = self.host(capacity=1)
        c = customer(h)
        body = {"product": "vet", "plan": "professional", "settings": {"admin_email": "a@b.test"}}
        joins = [in_thread(h.post, f"/api/v1/customers/{c['id']}/instances", {**body, "code": f"race-{n}"}) for n in range(2)]
        statuses = sorted(j().status for j in joins)
        self.assertEqual(statuses, [202, 409])
        self.assertEqual(self.databases(h)[1]["default"]["instances"], 1)

    def test_a_closed_database_takes_no_new_instance_and_keeps_its_own(self):
        h = self.host()
        _, dbs = self.databases(h)
        default = dbs["default"]
        pool = self.register(h, "pool-c", 10)
        closed = self.patch(h, default, {"status": "closed"})
        self.assertEqual(closed["status"], "closed")
        c = customer(h)
        first = instance(h, c["id"])
        self.assertEqual(first["placement"]["database_name"], "pool-c")
        settled(h, first["id"])
        self.assertEqual(self.rows(pool["dbname"], first["id"]), 1)

        # nothing open: 409 and nothing written
        self.patch(h, pool, {"status": "closed"})
        before = self.count_instances(h)
        p = self.assertProblem(h.post(f"/api/v1/customers/{c['id']}/instances",
                                      body={"code": "nowhere", "product": "vet", "plan": "professional",
                                            "settings": {"admin_email": "a@b.test"}}), 409, "pooled-capacity-exhausted")
        self.assertEqual(p["tenant_databases"], [])
        self.assertEqual(self.count_instances(h), before)
        # the instance on the closed database keeps working: an action writes its rows there
        r = h.post(f"/api/v1/instances/{first['id']}/actions/register-patient", body=PATIENT)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM vet.patients WHERE tenant_id = '{first['id']}'", pool["dbname"]), "1")

        # the default's capacity (configured), removal in use
        reopened = self.patch(h, pool, {"status": "open", "capacity": 2})
        self.assertEqual((reopened["status"], reopened["capacity"], reopened["load"]), ("open", 2, 0.5))
        p = self.assertProblem(h.request("PATCH", f"/api/v1/tenant-databases/{default['id']}", body={"capacity": 9}), 409,
                               "tenant-database-managed-by-configuration")
        self.assertEqual(p["errors"][0]["pointer"], "#/capacity")
        p = self.assertProblem(h.request("DELETE", f"/api/v1/tenant-databases/{pool['id']}"), 409, "tenant-database-in-use")
        self.assertEqual(p["instances"], 1)
        self.assertProblem(h.request("DELETE", f"/api/v1/tenant-databases/{default['id']}"), 409,
                           "tenant-database-managed-by-configuration")

        # once its instance is gone, the database can be removed
        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{first['id']}").status, 202)
        settled(h, first["id"], statuses=("deleted",))
        self.assertEqual(self.rows(pool["dbname"], first["id"]), 0)
        self.assertEqual(h.request("DELETE", f"/api/v1/tenant-databases/{pool['id']}").status, 204)
        self.assertProblem(h.get(f"/api/v1/tenant-databases/{pool['id']}"), 404, "tenant-database-not-found")
        self.assertIsNone(h.get(f"/api/v1/instances/{first['id']}").json()["placement"])
        audit = self.stack.psql("SELECT string_agg(action || ':' || result, ',' ORDER BY id) FROM ft_audit"
                                " WHERE entity_type = 'tenant_database'", h.dbname)
        self.assertIn("tenant_database.create:success", audit)
        self.assertIn("tenant_database.update:failure", audit)
        self.assertIn("tenant_database.delete:success", audit)

    def test_an_instance_from_before_the_second_database_keeps_working(self):
        h = self.host()
        c = customer(h)
        old = instance(h, c["id"])
        settled(h, old["id"])
        # as the instances created before placements were recorded: no placement at all
        self.stack.psql(f"UPDATE ft_instances SET tenant_database_id = NULL WHERE id = '{old['id']}'", h.dbname)
        self.assertIsNone(h.get(f"/api/v1/instances/{old['id']}").json()["placement"])
        h.terminate()
        h.start()
        self.assertEqual(h.get(f"/api/v1/instances/{old['id']}").json()["placement"]["database_name"], "default")

        _, dbs = self.databases(h)
        pool = self.register(h, "pool-new", 5)
        self.patch(h, dbs["default"], {"status": "closed"})
        new = instance(h, c["id"])
        self.assertEqual(new["placement"]["database_name"], "pool-new")
        settled(h, new["id"])
        self.assertEqual(self.rows(pool["dbname"], new["id"]), 1)
        self.assertEqual(self.rows("farutech_tenants", old["id"]), 1)

        self.assertEqual(h.request("DELETE", f"/api/v1/instances/{old['id']}").status, 202)
        settled(h, old["id"], statuses=("deleted",))
        self.assertEqual(self.rows("farutech_tenants", old["id"]), 0)
        self.assertEqual(self.rows(pool["dbname"], new["id"]), 1)

    def test_many_unplaced_instances_are_placed_at_start_and_every_count_stays_right(self):
        # Placing them updated the database's count once per instance in one transaction, which
        # grew with the square of their number (60,000 kept a start busy for over ten minutes);
        # the count is now kept once per statement.
        h = self.host()
        c = customer(h)
        n = 20000
        self.stack.psql(
            "INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, status)"
            f" SELECT '{c['id']}', 'many-' || g, 'vet', 'standard', 'production', 'active' FROM generate_series(1, {n}) g"
            " ; UPDATE ft_instances SET tenant_database_id = NULL WHERE code LIKE 'many-%'", h.dbname)
        counted = "SELECT d.placed - (SELECT count(*) FROM ft_instances i WHERE i.tenant_database_id = d.id" \
                  " AND i.status <> 'deleted') FROM ft_tenant_databases d WHERE d.name = '{}'"
        self.assertEqual(self.stack.psql(counted.format("default"), h.dbname), "0")
        h.terminate()
        h.start()
        self.assertTrue(any(f"{n} unplaced Standard instances placed" in line.get("msg", "") for line in h.log_lines()),
                        h.output())
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_instances WHERE tenant_database_id IS NULL", h.dbname), "0")
        self.assertEqual(self.stack.psql(counted.format("default"), h.dbname), "0")
        # a statement that moves some, deletes some and ends some: each database's count follows
        pool = self.register(h, "pool-many", 1000)
        self.stack.psql(
            f"UPDATE ft_instances SET tenant_database_id = '{pool['id']}' WHERE code IN ('many-1', 'many-2', 'many-3');"
            " UPDATE ft_instances SET status = 'deleted' WHERE code IN ('many-2', 'many-4', 'many-5');"
            " DELETE FROM ft_instances WHERE code IN ('many-6', 'many-3')", h.dbname)
        self.assertEqual(self.stack.psql(counted.format("default"), h.dbname), "0")
        self.assertEqual(self.stack.psql(counted.format("pool-many"), h.dbname), "0")
        self.assertEqual(self.stack.psql("SELECT placed FROM ft_tenant_databases WHERE name = 'pool-many'", h.dbname), "1")

    # ---------------------------------------------------------------- the operator API

    def test_bad_registrations_are_refused_naming_the_field_and_write_nothing(self):
        h = self.host()
        good = self.url(self.stack.create_database())
        dead = f"postgresql://farutech:{PASSWORD}@127.0.0.1:{free_port()}/nothing"
        wrong = good.replace(urllib.parse.urlsplit(good).password, PASSWORD)
        cases = [
            ({"name": "p", "url": "not a url", "capacity": 5}, 422, "invalid-database-url", "#/url"),
            ({"name": "p", "url": "http://example.test/db", "capacity": 5}, 422, "invalid-database-url", "#/url"),
            ({"name": "p", "url": dead, "capacity": 5}, 422, "tenant-database-unreachable", "#/url"),
            ({"name": "p", "url": wrong, "capacity": 5}, 422, "tenant-database-unreachable", "#/url"),
            ({"name": "p", "url": self.url("no_such_database"), "capacity": 5}, 422, "tenant-database-unreachable", "#/url"),
            ({"name": "default", "url": good, "capacity": 5}, 409, "tenant-database-name-taken", "#/name"),
            ({"name": "p", "url": good, "capacity": 0}, 400, "invalid-body", "#/capacity"),
            ({"name": "p", "url": good, "capacity": -3}, 400, "invalid-body", "#/capacity"),
            ({"name": "p", "url": good, "capacity": "many"}, 400, "invalid-body", "#/capacity"),
            ({"name": "Bad Name", "url": good, "capacity": 5}, 400, "invalid-body", "#/name"),
            ({"name": "p", "capacity": 5}, 400, "invalid-body", "#/url"),
            ({"name": "p", "url": good, "capacity": 5, "extra": 1}, 400, "invalid-body", "#/extra"),
        ]
        for body, status, slug, pointer in cases:
            with self.subTest(body=body):
                p = self.assertProblem(h.post("/api/v1/tenant-databases", body=body), status, slug)
                self.assertIn(pointer, [e["pointer"] for e in p["errors"]], p)
                self.assertNotIn(PASSWORD, json.dumps(p))
        self.assertEqual(list(self.databases(h)[1]), ["default"])
        d = self.register(h, "pool-ok", 3)
        self.assertProblem(h.post("/api/v1/tenant-databases", body={"name": "pool-ok", "url": good, "capacity": 1}), 409,
                           "tenant-database-name-taken")
        for body in ({}, {"status": "gone"}, {"capacity": 2.5}, {"name": "renamed"}):
            with self.subTest(body=body):
                self.assertProblem(h.request("PATCH", f"/api/v1/tenant-databases/{d['id']}", body=body), 400, "invalid-body")
        self.assertProblem(h.get("/api/v1/tenant-databases/00000000-0000-4000-8000-000000000000"), 404, "tenant-database-not-found")
        self.assertProblem(h.get("/api/v1/tenant-databases/nope"), 400, "invalid-parameter")
        self.assertEqual(sorted(self.databases(h)[1]), ["default", "pool-ok"])
        self.assertNotIn(PASSWORD, h.output())

    def test_the_password_is_stored_but_never_shown(self):
        h = self.host()
        dbname = self.stack.create_database()
        password = urllib.parse.urlsplit(self.url(dbname)).password
        d = self.register(h, "secret-pool", 2, dbname=dbname)
        self.assertEqual(d["url"], self.shown(dbname))  # the address, without the password
        self.assertNotIn(password, d["url"])
        listed = h.get("/api/v1/tenant-databases")
        one = h.get(f"/api/v1/tenant-databases/{d['id']}")
        self.patch(h, d, {"capacity": 3})
        for r in (listed, one, h.get("/api/v1/tenant-databases")):
            self.assertEqual(r.status, 200, r)
            self.assertNotIn(password, r.body.decode())
        # the worker connects with it: an instance placed there provisions
        self.patch(h, self.databases(h)[1]["default"], {"status": "closed"})
        c = customer(h)
        i = instance(h, c["id"])
        self.assertEqual(i["placement"]["database_name"], "secret-pool")
        settled(h, i["id"])
        self.assertEqual(self.rows(dbname, i["id"]), 1)
        self.assertNotIn(password, h.get(f"/api/v1/instances/{i['id']}").body.decode())
        self.assertEqual(self.stack.psql(f"SELECT url LIKE '%{password}%' FROM ft_tenant_databases WHERE id = '{d['id']}'",
                                         h.dbname), "t")
        self.assertNotIn(password, self.stack.psql("SELECT coalesce(string_agg(details::text || coalesce(reason, ''), ''), '')"
                                                   " FROM ft_audit", h.dbname))
        self.assertNotIn(password, h.output())

    def test_operators_read_and_only_platform_admins_change(self):
        h = self.host()
        operator = h.make_key("operator")
        c = customer(h)
        viewer = h.make_key("customer-admin", customer=c["id"])
        self.assertEqual(h.get("/api/v1/tenant-databases", auth=operator).status, 200)
        body = {"name": "op-pool", "url": self.url(self.stack.create_database()), "capacity": 2}
        p = self.assertProblem(h.post("/api/v1/tenant-databases", body=body, auth=operator), 403)
        self.assertEqual(p["required_permission"], "tenant-databases:write")
        p = self.assertProblem(h.get("/api/v1/tenant-databases", auth=viewer), 403)
        self.assertEqual(p["required_permission"], "tenant-databases:read")
        self.assertEqual(list(self.databases(h)[1]), ["default"])


if __name__ == "__main__":
    main()
