"""Event contracts: drive a customer and instances through their lives (create, provision,
overrides, an action run as a job, plan changes, trials, suspension, cancellation, failure, DLQ, replay, discard,
removal), then check every event written to the outbox against its JSON Schema."""
import os
import subprocess

from fixtures import customer
from harness import BUILD, ROOT, main, wait_until
from test_pipeline import PipelineCase


class Events(PipelineCase):

    def test_every_emitted_event_matches_its_schema(self):
        h = self.host()
        c = customer(h)
        h.request("PATCH", f"/api/v1/customers/{c['id']}", body={"legal_name": "Renamed SA"})
        vet = self.create(h, c, product="vet", plan="essentials")
        self.wait_status(h, vet["id"], ["active"])
        base = f"/api/v1/instances/{vet['id']}"
        h.request("PUT", base + "/overrides/telemedicine", body={"enabled": True, "reason": "pilot"})
        h.request("PUT", base + "/overrides/max_users", body={"enabled": True, "limit": 9, "expires_at": "2099-01-01T00:00:00Z"})
        h.request("DELETE", base + "/overrides/telemedicine")
        r = h.request("POST", base + "/actions/patient-count", body={}, headers={"Prefer": "respond-async"})
        self.assertEqual(r.status, 202, r)
        wait_until(lambda: h.get(r.headers["location"]).json()["status"] == "succeeded", 120, what="the action job")
        h.post(base + "/subscription/plan", body={"plan": "enterprise"})
        h.post(base + "/subscription/plan", body={"plan": "essentials"})
        h.post(base + "/subscription/trial", body={"ends_at": "2099-01-01T00:00:00Z"})
        h.post(base + "/subscription/suspend")
        h.post(base + "/subscription/resume")
        h.post(base + "/subscription/cancel", body={"at_period_end": True})
        h.request("PUT", f"/api/provisioning/{vet['id']}/features", body={"customFeatures": {"max_users": 3}})
        fault = os.path.join(self.stack.dir, "events-fault")
        open(fault, "w").close()
        bad = self.create(h, c, settings={"fail_while_exists": fault})
        self.wait_status(h, bad["id"], ["failed"])
        dlq = [d for d in h.get("/api/v1/dlq").json()["items"] if d["instance_id"] == bad["id"]][0]
        os.remove(fault)
        h.post(f"/api/v1/dlq/{dlq['id']}/replay")
        self.wait_status(h, bad["id"], ["active"])
        doomed = self.create(h, c, settings={"fatal": True})
        self.wait_status(h, doomed["id"], ["failed"])
        d2 = [d for d in h.get("/api/v1/dlq").json()["items"] if d["instance_id"] == doomed["id"]][0]
        h.request("DELETE", f"/api/v1/dlq/{d2['id']}")
        # while its instance lives: a deleted instance takes no new key
        k = h.post("/api/v1/api-keys", body={"name": "child", "roles": ["child-app"], "instance_id": vet["id"]}).json()
        h.request("DELETE", f"/api/v1/api-keys/{k['id']}")
        for i in (vet, bad):
            h.request("DELETE", f"/api/v1/instances/{i['id']}")
            self.wait_status(h, i["id"], ["deleted"])
        h.request("DELETE", f"/api/v1/instances/{doomed['id']}")
        self.wait_status(h, doomed["id"], ["deleted"])
        other = customer(h)
        h.request("DELETE", f"/api/v1/customers/{other['id']}")
        u = h.post("/api/v1/users", body={"email": "events@example.test", "password": "a long enough password", "customer_id": c["id"],
                                          "roles": ["customer-viewer"]}).json()
        h.request("PATCH", f"/api/v1/users/{u['id']}", body={"status": "disabled"})
        h.request("DELETE", f"/api/v1/users/{u['id']}")

        events = self.stack.psql("SELECT event::text FROM ft_outbox ORDER BY seq", h.dbname)
        out = subprocess.run([os.path.join(BUILD, "tests", "check_events"), os.path.join(ROOT, "docs", "events")],
                             input=events + "\n", capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        documented = {f[:-len(".schema.json")] for f in os.listdir(os.path.join(ROOT, "docs", "events"))
                      if f.endswith(".schema.json") and f != "envelope.schema.json"}
        emitted = {line.strip()[len("dev.farutech."):] for line in out.stdout.splitlines() if line.startswith("  dev.farutech.")}
        self.assertEqual(documented - emitted, set(), "documented types this scenario never emitted")
        self.assertIn("faulty.touched.v1", emitted)  # a product's own event, checked against the envelope


if __name__ == "__main__":
    main()
