"""Every DELETE route against real PostgreSQL: what a deletion removes with it, what refuses it
(409 naming the blocking things, never a 500 from a foreign key), and the audit row each
answer leaves. Also the writes that race a customer's deletion (a user or an API key added to
it meanwhile)."""
import secrets
import subprocess

from fixtures import customer, instance
from harness import ProductsTestCase, in_thread, main, wait_until

PASSWORD = "correct horse battery staple"


class Deletes(ProductsTestCase):

    # ---------------------------------------------------------------- helpers

    def delete(self, h, path, **kw):
        """DELETE with a fresh request id; returns (response, request id)."""
        rid = "del-" + secrets.token_hex(8)
        return h.request("DELETE", path, headers={"X-Request-Id": rid}, **kw), rid

    def audit_row(self, h, rid, entity_id):
        """The one audit row written for request rid."""
        rows = [r for r in h.get(f"/api/v1/audit?entity_id={entity_id}&limit=200").json()["items"] if r["request_id"] == rid]
        self.assertEqual(len(rows), 1, rows)
        return rows[0]

    def assertAudited(self, h, rid, entity_id, action, result, reason_has=None):
        row = self.audit_row(h, rid, entity_id)
        self.assertEqual((row["action"], row["result"], row["entity_id"]), (action, result, entity_id), row)
        if reason_has is not None:
            self.assertIn(reason_has, row["reason"] or "", row)
        return row

    def status_of(self, h, instance_id):
        return self.stack.psql(f"SELECT status FROM ft_instances WHERE id = '{instance_id}'", h.dbname)

    def wait_status(self, h, instance_id, status):
        wait_until(lambda: self.status_of(h, instance_id) == status, 60, what=f"instance {instance_id} to be {status}")

    def deprovision(self, h, instance_id):
        self.wait_status(h, instance_id, "active")
        r, _ = self.delete(h, f"/api/v1/instances/{instance_id}")
        self.assertEqual(r.status, 202, r)
        self.wait_status(h, instance_id, "deleted")

    def child_key(self, h, instance_id, **extra):
        r = h.post("/api/v1/api-keys", body={"name": "child " + secrets.token_hex(3), "roles": ["child-app"],
                                             "instance_id": instance_id, **extra})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def customer_key(self, h, customer_id, **extra):
        r = h.post("/api/v1/api-keys", body={"name": "cust " + secrets.token_hex(3), "roles": ["customer-viewer"],
                                             "customer_id": customer_id, **extra})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def user(self, h, customer_id=None, roles=("customer-viewer",)):
        body = {"email": f"d-{secrets.token_hex(5)}@example.test", "password": PASSWORD, "roles": list(roles)}
        if customer_id:
            body["customer_id"] = customer_id
        r = h.post("/api/v1/users", body=body)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def revoke(self, h, key_id):
        r, _ = self.delete(h, f"/api/v1/api-keys/{key_id}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def count(self, h, sql):
        return int(self.stack.psql(sql, h.dbname))

    # ---------------------------------------------------------------- customers

    def test_customer_whose_child_app_key_was_revoked_deletes(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        k = self.child_key(h, i["id"])
        self.revoke(h, k["id"])
        self.deprovision(h, i["id"])
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertAudited(h, rid, c["id"], "customer.delete", "success")
        self.assertEqual(h.get(f"/api/v1/customers/{c['id']}").status, 404)
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_api_keys WHERE id = '{k['id']}'"), 0)
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_instances WHERE customer_id = '{c['id']}'"), 0)
        # the history of what happened stays: the key's creation and revocation, the instance's removal
        actions = self.stack.psql(f"SELECT string_agg(DISTINCT action, ',' ORDER BY action) FROM ft_audit"
                                  f" WHERE entity_id IN ('{k['id']}', '{i['id']}')", h.dbname)
        self.assertEqual(actions, "api_key.create,api_key.revoke,instance.create,instance.deprovision")
        # a second delete is a 404, audited as a failure
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertProblem(r, 404, "customer-not-found")
        self.assertAudited(h, rid, c["id"], "customer.delete", "failure", "No customer")

    def test_customer_with_a_live_key_is_refused_naming_it(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        live = self.child_key(h, i["id"])
        expired = self.customer_key(h, c["id"], expires_at="2020-01-01T00:00:00Z")  # dead: blocks nothing
        self.deprovision(h, i["id"])
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        p = self.assertProblem(r, 409, "customer-has-live-api-keys")
        self.assertEqual([(x["id"], x["prefix"]) for x in p["api_keys"]], [(live["id"], live["prefix"])])
        self.assertIn(live["prefix"], p["detail"])
        self.assertNotIn(expired["prefix"], p["detail"])
        self.assertAudited(h, rid, c["id"], "customer.delete", "failure", live["prefix"])
        self.assertEqual(h.get(f"/api/v1/customers/{c['id']}").status, 200)  # nothing removed
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_api_keys WHERE customer_id = '{c['id']}'"), 2)
        self.revoke(h, live["id"])
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertAudited(h, rid, c["id"], "customer.delete", "success")

    def test_customer_with_only_dead_credentials_deletes(self):
        h = self.host()
        c = customer(h)
        k = self.customer_key(h, c["id"])
        self.revoke(h, k["id"])
        u = self.user(h, c["id"])
        # the user signed in once (a refresh token row), then was disabled
        r = h.post("/api/v1/auth/login", body={"email": u["email"], "password": PASSWORD}, auth=None)
        self.assertEqual(r.status, 200, r)
        r = h.request("PATCH", f"/api/v1/users/{u['id']}", body={"status": "disabled"})
        self.assertEqual(r.status, 200, r)
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertAudited(h, rid, c["id"], "customer.delete", "success")
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_users WHERE id = '{u['id']}'"), 0)
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_refresh_tokens WHERE user_id = '{u['id']}'"), 0)
        self.assertEqual(h.get(f"/api/v1/users/{u['id']}").status, 404)

    def test_customer_with_an_active_user_is_refused_naming_it(self):
        h = self.host()
        c = customer(h)
        u = self.user(h, c["id"], roles=("customer-admin",))
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        p = self.assertProblem(r, 409, "customer-has-active-users")
        self.assertEqual([(x["id"], x["email"]) for x in p["users"]], [(u["id"], u["email"])])
        self.assertIn(u["email"], p["detail"])
        self.assertAudited(h, rid, c["id"], "customer.delete", "failure", u["email"])
        self.assertEqual(h.get(f"/api/v1/users/{u['id']}").status, 200)
        r, _ = self.delete(h, f"/api/v1/users/{u['id']}")
        self.assertEqual(r.status, 204, r)
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertAudited(h, rid, c["id"], "customer.delete", "success")

    def test_customer_with_live_instances_is_refused_naming_them(self):
        h = self.host()
        c = customer(h)
        a = instance(h, c["id"])
        b = instance(h, c["id"])
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        p = self.assertProblem(r, 409, "customer-has-instances")
        self.assertEqual(p["live_instances"], 2)
        self.assertEqual(sorted(x["id"] for x in p["instances"]), sorted([a["id"], b["id"]]))
        self.assertEqual({x["code"] for x in p["instances"]}, {a["code"], b["code"]})
        self.assertAudited(h, rid, c["id"], "customer.delete", "failure", a["code"])

    def test_customer_whose_deleted_instance_still_has_work_queued_is_refused(self):
        # a job queued on an instance already deleted (as a DLQ replay could leave one): deleting
        # its row would pull it from under a worker
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        self.deprovision(h, i["id"])
        job = self.stack.psql(f"INSERT INTO ft_jobs (instance_id, product_code, kind, correlation_id)"
                              f" VALUES ('{i['id']}', 'vet', 'features_changed', 'test') RETURNING id", h.dbname)
        r, rid = self.delete(h, f"/api/v1/customers/{c['id']}")
        p = self.assertProblem(r, 409, "customer-has-jobs-in-flight")
        self.assertEqual([x["id"] for x in p["jobs"]], [job.splitlines()[0]])
        self.assertAudited(h, rid, c["id"], "customer.delete", "failure")
        self.stack.psql(f"UPDATE ft_jobs SET status = 'failed' WHERE id = '{job.splitlines()[0]}'", h.dbname)
        r, _ = self.delete(h, f"/api/v1/customers/{c['id']}")
        self.assertEqual(r.status, 204, r)

    def test_writes_racing_a_customer_deletion_answer_422(self):
        """A user or key added while the customer is being deleted: the deletion wins, the write
        is told the customer is gone (not a foreign-key 500)."""
        h = self.host()
        writes = {
            "user": lambda cid, iid: h.post("/api/v1/users", body={"email": f"r-{secrets.token_hex(4)}@example.test",
                                                                   "password": PASSWORD, "roles": ["customer-viewer"],
                                                                   "customer_id": cid}),
            "customer key": lambda cid, iid: h.post("/api/v1/api-keys", body={"name": "race", "roles": ["customer-viewer"],
                                                                             "customer_id": cid}),
            "child key": lambda cid, iid: h.post("/api/v1/api-keys", body={"name": "race", "roles": ["child-app"],
                                                                          "instance_id": iid}),
        }
        for what, write in writes.items():
            with self.subTest(what):
                c = customer(h)
                i = instance(h, c["id"])
                self.wait_status(h, i["id"], "active")  # no job left running on it
                # another session deletes the customer's rows and holds its transaction open
                psql = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.stack.url_for(h.dbname)],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                try:
                    psql.stdin.write(f"BEGIN; DELETE FROM ft_jobs WHERE instance_id = '{i['id']}';"
                                     f" DELETE FROM ft_subscriptions WHERE customer_id = '{c['id']}';"
                                     f" DELETE FROM ft_instances WHERE customer_id = '{c['id']}';"
                                     f" DELETE FROM ft_customers WHERE id = '{c['id']}';\n")
                    psql.stdin.flush()
                    wait_until(lambda: self.count(h, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                                                     " AND query LIKE 'DELETE FROM ft_customers%'") == 1, 30,
                               what="the deleting session to hold its locks")
                    join = in_thread(write, c["id"], i["id"])
                    wait_until(lambda: self.count(h, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                                     " AND datname = current_database()") >= 1, 30,
                               what="the write to wait for the deleting session")
                    psql.stdin.write("COMMIT;\n")
                    psql.stdin.close()
                    self.assertEqual(psql.wait(30), 0, psql.stderr.read())
                finally:
                    if psql.poll() is None:
                        psql.kill()
                        psql.wait()
                r = join()
                p = self.assertProblem(r, 422)
                self.assertTrue(p["type"].endswith("-not-found"), p)

    # ---------------------------------------------------------------- users

    def test_user_delete(self):
        h = self.host()
        c = customer(h)
        u = self.user(h, c["id"])
        r = h.post("/api/v1/auth/login", body={"email": u["email"], "password": PASSWORD}, auth=None)
        self.assertEqual(r.status, 200, r)
        refresh = r.json()["refresh_token"]
        r, rid = self.delete(h, f"/api/v1/users/{u['id']}")
        self.assertEqual(r.status, 204, r)
        self.assertAudited(h, rid, u["id"], "user.delete", "success")
        self.assertEqual(self.count(h, f"SELECT count(*) FROM ft_refresh_tokens WHERE user_id = '{u['id']}'"), 0)
        self.assertEqual(h.post("/api/v1/auth/refresh", body={"refresh_token": refresh}, auth=None).status, 401)
        r, rid = self.delete(h, f"/api/v1/users/{u['id']}")
        self.assertProblem(r, 404, "user-not-found")
        self.assertAudited(h, rid, u["id"], "user.delete", "failure", "No user")
        # a customer admin cannot reach another customer's user: 404, audited
        other = self.user(h, customer(h)["id"])
        admin = h.make_key("customer-admin", customer=c["id"])
        r, rid = self.delete(h, f"/api/v1/users/{other['id']}", auth=admin)
        self.assertProblem(r, 404, "user-not-found")
        self.assertAudited(h, rid, other["id"], "user.delete", "failure")
        self.assertEqual(h.get(f"/api/v1/users/{other['id']}").status, 200)

    # ---------------------------------------------------------------- API keys

    def test_api_key_revoke(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        k = self.child_key(h, i["id"])
        first = self.revoke(h, k["id"])
        self.assertTrue(first["revoked_at"])
        r, rid = self.delete(h, f"/api/v1/api-keys/{k['id']}")  # again: same answer, revocation time kept
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["revoked_at"], first["revoked_at"])
        self.assertAudited(h, rid, k["id"], "api_key.revoke", "success")
        gone = "00000000-0000-4000-8000-000000000000"
        r, rid = self.delete(h, f"/api/v1/api-keys/{gone}")
        self.assertProblem(r, 404, "api-key-not-found")
        self.assertAudited(h, rid, gone, "api_key.revoke", "failure", "No API key")
        # a live key of an instance deleted since can still be revoked
        k2 = self.child_key(h, i["id"])
        self.deprovision(h, i["id"])
        self.assertTrue(self.revoke(h, k2["id"])["revoked_at"])

    # ---------------------------------------------------------------- instances

    def test_instance_delete(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        self.child_key(h, i["id"])  # a live key does not hold the instance back; it holds the customer
        self.wait_status(h, i["id"], "active")
        r, rid = self.delete(h, f"/api/v1/instances/{i['id']}")
        self.assertEqual(r.status, 202, r)
        self.assertAudited(h, rid, i["id"], "instance.deprovision", "success")
        self.wait_status(h, i["id"], "deleted")
        # a deleted instance is gone, not unknown (GET still shows it with status deleted)
        r, rid = self.delete(h, f"/api/v1/instances/{i['id']}")
        self.assertProblem(r, 410, "instance-deleted")
        self.assertAudited(h, rid, i["id"], "instance.deprovision", "failure", "was deleted")
        # the compatibility route answers the same
        r, rid = self.delete(h, f"/api/provisioning/{i['id']}")
        self.assertProblem(r, 410, "instance-deleted")
        self.assertAudited(h, rid, i["id"], "instance.deprovision", "failure")
        # no new key for a deleted instance (it would only hold its customer back)
        r = h.post("/api/v1/api-keys", body={"name": "late", "roles": ["child-app"], "instance_id": i["id"]})
        p = self.assertProblem(r, 422, "instance-not-found")
        self.assertEqual(p["errors"][0]["pointer"], "#/instance_id")

    def test_override_delete(self):
        h = self.host()
        c = customer(h)
        i = instance(h, c["id"])
        path = f"/api/v1/instances/{i['id']}/overrides/telemedicine"
        self.assertEqual(h.request("PUT", path, body={"enabled": False}).status, 200)
        r, rid = self.delete(h, path)
        self.assertEqual(r.status, 200, r)
        self.assertAudited(h, rid, i["id"], "override.remove", "success")
        r, rid = self.delete(h, path)
        self.assertProblem(r, 404, "override-not-found")
        self.assertAudited(h, rid, i["id"], "override.remove", "failure", "no override")
        self.deprovision(h, i["id"])
        r, rid = self.delete(h, path)
        self.assertProblem(r, 410, "instance-deleted")
        self.assertAudited(h, rid, i["id"], "override.remove", "failure")

    # ---------------------------------------------------------------- plans

    def test_plans_have_no_delete_route(self):
        """Plans come from the product plugins and are retired by a reload, never deleted
        (subscriptions keep the version they bought): no DELETE route exists."""
        h = self.host()
        r = h.request("DELETE", "/api/v1/products/vet/plans/professional")
        self.assertIn(r.status, (404, 405), r)
        self.assertEqual(h.get("/api/v1/products/vet/plans/professional").status, 200)


if __name__ == "__main__":
    main()
