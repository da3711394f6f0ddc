"""Product actions, POST /api/v1/instances/{id}/actions/{name}: run in the instance's own
database (Standard and Enterprise), input checked against the action's schema, only on active
instances whose entitlements include the required feature, scoped to the caller, audited, and
idempotent with an Idempotency-Key."""
from fixtures import child_key, customer
from harness import main, wait_until
from test_pipeline import PipelineCase

PATIENT = {"name": "Luna", "species": "dog", "owner_name": "Ana Ruiz", "owner_phone": "+573001234567"}


class Actions(PipelineCase):

    def active_vet(self, h, c, tier="standard"):
        i = self.create(h, c, product="vet", plan="professional", tier=tier)
        self.wait_status(h, i["id"], ["active"])
        return i

    def run_action(self, h, instance_id, name, body=None, **kw):
        return h.request("POST", f"/api/v1/instances/{instance_id}/actions/{name}", body=body if body is not None else {}, **kw)

    def test_actions_run_in_the_instance_database_of_either_tier(self):
        h = self.host()
        c = customer(h)
        for tier in ("standard", "enterprise"):
            with self.subTest(tier=tier):
                i = self.active_vet(h, c, tier)
                listed = h.get(f"/api/v1/instances/{i['id']}/actions").json()
                names = {a["name"]: a for a in listed["actions"]}
                self.assertEqual(listed["product"], "vet")
                self.assertIn("register-patient", names)
                self.assertTrue(names["register-patient"]["allowed"])
                self.assertEqual(names["register-patient"]["input_schema"]["type"], "object")
                r = self.run_action(h, i["id"], "register-patient", PATIENT)
                self.assertEqual(r.status, 200, r)
                out = r.json()
                self.assertEqual((out["action"], out["instance_id"]), ("register-patient", i["id"]))
                self.assertIsInstance(out["output"]["patient_id"], int)
                self.assertIs(out["output"]["owner_created"], True)
                count = self.run_action(h, i["id"], "patient-count").json()["output"]
                self.assertEqual(count["patients"], 1, count)
        # each instance counts its own patients: nothing leaks between tenants of the shared database
        a = self.active_vet(h, c)
        self.assertEqual(self.run_action(h, a["id"], "patient-count").json()["output"]["patients"], 0)

    def test_input_feature_state_and_name_are_checked(self):
        h = self.host()
        c = customer(h)
        i = self.active_vet(h, c)
        p = self.assertProblem(self.run_action(h, i["id"], "register-patient", {"name": "", "species": "Dog!"}), 422,
                               "invalid-action-input")
        self.assertTrue({e["pointer"] for e in p["errors"]} >= {"#/name", "#/species"}, p)
        self.assertProblem(self.run_action(h, i["id"], "register-patient", {"species": "dog", "extra": 1}), 422,
                           "invalid-action-input")
        self.assertProblem(self.run_action(h, i["id"], "teleport"), 404, "action-not-found")
        self.assertProblem(self.run_action(h, i["id"], "Bad%21Name"), 400, "invalid-parameter")
        self.assertProblem(self.run_action(h, "00000000-0000-4000-8000-000000000009", "patient-count"), 404)
        # switching the required feature off refuses the action
        h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/patient_records", body={"enabled": False, "reason": "test"})
        self.assertProblem(self.run_action(h, i["id"], "patient-count"), 403, "feature-not-entitled")
        listed = {a["name"]: a for a in h.get(f"/api/v1/instances/{i['id']}/actions").json()["actions"]}
        self.assertFalse(listed["patient-count"]["allowed"])
        h.request("DELETE", f"/api/v1/instances/{i['id']}/overrides/patient_records")
        self.assertEqual(self.run_action(h, i["id"], "patient-count").status, 200)
        # only active instances
        h.post(f"/api/v1/instances/{i['id']}/subscription/suspend")
        self.wait_status(h, i["id"], ["suspended"])
        self.assertProblem(self.run_action(h, i["id"], "patient-count"), 409, "instance-not-active")

    def test_the_products_refusals_become_the_answers(self):
        h = self.host()
        c = customer(h)
        i = self.active_vet(h, c)
        # FTP_E_NOTFOUND (-4): 404 with the plugin's message
        p = self.assertProblem(self.run_action(h, i["id"], "register-patient", {**PATIENT, "owner_id": 999999}), 404,
                               "action-target-not-found")
        self.assertEqual(p["plugin_code"], -4)
        self.assertIn("owner 999999 not found", p["detail"])
        # FTP_E_INVALID: the schema's pattern lets 2021-02-30 through, the product does not
        p = self.assertProblem(self.run_action(h, i["id"], "register-patient", {**PATIENT, "birth_date": "2021-02-30"}), 422,
                               "action-refused")
        self.assertIn("birth_date", p["detail"])
        # FTP_E_CONFLICT: the plan's patient limit, lowered by an override
        r = h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/max_patients", body={"enabled": True, "limit": 1})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.run_action(h, i["id"], "register-patient", PATIENT).status, 200)
        p = self.assertProblem(self.run_action(h, i["id"], "register-patient", PATIENT), 409, "action-conflict")
        self.assertIn("limit of 1", p["detail"])
        self.assertEqual(self.run_action(h, i["id"], "patient-count").json()["output"]["patients"], 1)

    def test_an_instance_whose_database_is_gone_is_refused_and_not_recreated(self):
        h = self.host()
        c = customer(h)
        i = self.active_vet(h, c, "enterprise")
        db = h.get(f"/api/v1/instances/{i['id']}").json()["data_location"]["database"]
        self.stack.psql(f"DROP DATABASE {db} WITH (FORCE)")
        p = self.assertProblem(self.run_action(h, i["id"], "patient-count"), 409, "instance-not-provisioned")
        self.assertEqual(p["instance_id"], i["id"])
        r = self.run_action(h, i["id"], "patient-count", headers={"Prefer": "respond-async"})
        self.assertEqual(r.status, 202, r)
        job = wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(h.get(r.headers["location"]).json()),
                         120, what="the action job to finish")
        self.assertEqual((job["status"], job["attempts"]), ("failed", 1), job)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM pg_database WHERE datname = '{db}'"), "0")

    def test_a_queued_action_is_checked_again_when_it_runs(self):
        full = self.host()
        c = customer(full)
        ids = [self.active_vet(full, c)["id"] for _ in range(4)]
        full.terminate()
        api = self.host(dbname=full.dbname, env={"FT_ROLES": "api,relay"})  # queued, nothing runs yet
        jobs = []
        for i in ids:
            r = self.run_action(api, i, "register-patient", PATIENT, headers={"Prefer": "respond-async"})
            self.assertEqual(r.status, 202, r)
            jobs.append(r.json()["job_id"])
        not_entitled, suspended, renamed, invalid = ids
        api.request("PUT", f"/api/v1/instances/{not_entitled}/overrides/patient_records", body={"enabled": False})
        self.assertEqual(api.post(f"/api/v1/instances/{suspended}/subscription/suspend").status, 200)
        self.stack.psql(f"UPDATE ft_job_steps SET name = 'teleport' WHERE job_id = '{jobs[2]}'", full.dbname)
        self.stack.psql(f"UPDATE ft_jobs SET payload = jsonb_set(payload, '{{input,name}}', '\"\"') WHERE id = '{jobs[3]}'", full.dbname)
        w = self.host(dbname=full.dbname, env={"FT_ROLES": "worker", "FT_HTTP_LISTEN": "127.0.0.1:0"}, start=False)
        w.start(wait=False)
        expect = ["no longer include", "actions run on active instances", "has no action teleport any more", "no longer satisfies"]
        for job_id, i, why in zip(jobs, ids, expect):
            with self.subTest(why):
                job = wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(
                    api.get(f"/api/v1/jobs/{job_id}").json()), 120, what="the queued action to run")
                self.assertEqual((job["status"], job["attempts"]), ("failed", 1), job)
                self.assertIn(why, job["last_error"])
                self.assertIn(job_id, [d["job_id"] for d in api.get("/api/v1/dlq").json()["items"]])
        self.assertEqual(api.get(f"/api/v1/instances/{not_entitled}").json()["status"], "active")
        for i in (renamed, invalid):  # nothing was registered
            self.assertEqual(self.run_action(api, i, "patient-count").json()["output"]["patients"], 0)
        w.terminate()

    def test_child_apps_act_on_their_own_instance_only_and_writes_are_audited_and_idempotent(self):
        h = self.host()
        c = customer(h)
        mine, other = self.active_vet(h, c), self.active_vet(h, c)
        key = child_key(h, mine["id"])
        self.assertEqual(self.run_action(h, mine["id"], "patient-count", auth=key).status, 200)
        r = self.run_action(h, other["id"], "register-patient", PATIENT, auth=key)
        self.assertEqual(r.status, 404, r)
        self.assertEqual(self.run_action(h, other["id"], "patient-count").json()["output"]["patients"], 0)
        viewer = h.make_key("customer-viewer", customer=c["id"])
        self.assertProblem(self.run_action(h, mine["id"], "patient-count", auth=viewer), 403, "forbidden")
        # the same Idempotency-Key registers one patient
        hdr = {"Idempotency-Key": "register-luna-1"}
        first = self.run_action(h, mine["id"], "register-patient", PATIENT, headers=hdr, auth=key)
        again = self.run_action(h, mine["id"], "register-patient", PATIENT, headers=hdr, auth=key)
        self.assertEqual((first.status, again.status), (200, 200), (first, again))
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(first.json(), again.json())
        self.assertEqual(self.run_action(h, mine["id"], "patient-count", auth=key).json()["output"]["patients"], 1)
        # the child app follows the jobs of its own instance (an action it queued), and no other's
        r = self.run_action(h, mine["id"], "patient-count", headers={"Prefer": "respond-async"}, auth=key)
        self.assertEqual(r.status, 202, r)
        job = wait_until(lambda: (lambda j: j if j.get("status") == "succeeded" else None)(h.get(r.headers["location"], auth=key).json()),
                         120, what="the child app's action job")
        self.assertEqual(job["result"]["patients"], 1)
        self.assertEqual(h.get(f"/api/v1/instances/{mine['id']}/jobs", auth=key).status, 200)
        theirs = h.get(f"/api/v1/instances/{other['id']}/jobs").json()["items"][0]["id"]
        self.assertEqual(h.get(f"/api/v1/jobs/{theirs}", auth=key).status, 404)
        self.assertEqual(h.get(f"/api/v1/instances/{other['id']}/jobs", auth=key).status, 404)
        rows = h.get(f"/api/v1/audit?action=instance.action&instance_id={mine['id']}&limit=200").json()["items"]
        self.assertTrue(rows)
        self.assertTrue(all(r["customer_id"] == c["id"] and r["entity_id"] == mine["id"] for r in rows), rows)
        self.assertIn("success", {r["result"] for r in rows})

    def test_prefer_respond_async_runs_the_action_as_a_job(self):
        h = self.host()
        c = customer(h)
        i = self.active_vet(h, c, "enterprise")
        hdr = {"Prefer": "wait=5, respond-async"}
        r = self.run_action(h, i["id"], "register-patient", PATIENT, headers=hdr)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.headers.get("preference-applied"), "respond-async")
        queued = r.json()
        self.assertEqual((queued["action"], queued["instance_id"], queued["status"]), ("register-patient", i["id"], "queued"))
        self.assertEqual(r.headers["location"], f"/api/v1/jobs/{queued['job_id']}")
        job = wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(h.get(r.headers["location"]).json()),
                         120, what="the action job to finish")
        self.assertEqual((job["status"], job["kind"], job["attempts"]), ("succeeded", "action", 1), job)
        self.assertEqual([(s["name"], s["status"]) for s in job["steps"]], [("register-patient", "succeeded")])
        self.assertIsInstance(job["result"]["patient_id"], int)
        self.assertIs(job["result"]["owner_created"], True)
        self.assertEqual(job["payload"]["input"]["name"], "Luna")
        self.assertIn(job["id"], [j["id"] for j in h.get(f"/api/v1/instances/{i['id']}/jobs").json()["items"]])
        self.assertEqual(self.run_action(h, i["id"], "patient-count").json()["output"]["patients"], 1)
        # the same checks as the synchronous call, before anything is queued
        self.assertProblem(self.run_action(h, i["id"], "register-patient", {"name": ""}, headers=hdr), 422, "invalid-action-input")
        self.assertProblem(self.run_action(h, i["id"], "teleport", headers=hdr), 404, "action-not-found")
        jobs = h.get(f"/api/v1/instances/{i['id']}/jobs").json()["items"]
        self.assertEqual(sorted(j["kind"] for j in jobs), ["action", "provision"])  # nothing queued for the refusals
        # a refusal by the product fails the job for good (no retry), not the instance
        r = self.run_action(h, i["id"], "register-patient", {"name": "Kira", "species": "dog", "owner_id": 999999}, headers=hdr)
        self.assertEqual(r.status, 202, r)
        job = wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed") else None)(h.get(r.headers["location"]).json()),
                         120, what="the refused action job to finish")
        self.assertEqual((job["status"], job["attempts"], job["result"]), ("failed", 1, None), job)
        self.assertIn("owner 999999 not found", job["last_error"])
        self.assertEqual(h.get(f"/api/v1/instances/{i['id']}").json()["status"], "active")
        dead = [d for d in h.get("/api/v1/dlq").json()["items"] if d["job_id"] == job["id"]]
        self.assertEqual([d["kind"] for d in dead], ["action"])
        self.assertEqual(self.run_action(h, i["id"], "patient-count").json()["output"]["patients"], 1)
        rows = h.get(f"/api/v1/audit?action=instance.action&instance_id={i['id']}&limit=50").json()["items"]
        self.assertGreaterEqual(len([x for x in rows if x["result"] == "success"]), 3)


if __name__ == "__main__":
    main()
