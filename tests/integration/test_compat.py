"""The seed-compatible provisioning endpoints keep their request and response shapes and map
onto the v1 model."""
import uuid

from fixtures import customer, entitlements, settled
from harness import ProductsTestCase, main


class Compat(ProductsTestCase):

    def test_provision_change_features_and_deprovision(self):
        h = self.host()
        c = customer(h)
        r = h.post("/api/provisioning/provision", body={
            "customerId": c["id"], "productId": "erp", "environment": "Production", "moduleIds": ["payroll"],
            "customFeatures": {"max_users": 40, "advanced_reporting": True}, "settings": {"admin_email": "ops@erp.test"}})
        self.assertEqual(r.status, 202, r)
        b = r.json()
        self.assertEqual(set(b), {"tenantInstanceId", "tenantCode", "status", "taskId", "createdAt"})
        uuid.UUID(b["tenantInstanceId"])
        uuid.UUID(b["taskId"])
        self.assertTrue(b["tenantCode"].startswith("erp-"))
        self.assertEqual(b["status"], "pending")
        f = entitlements(h, b["tenantInstanceId"])["features"]
        self.assertEqual(f["max_users"]["value"], 40)
        self.assertTrue(f["advanced_reporting"]["enabled"])
        self.assertTrue(f["payroll"]["enabled"])  # from moduleIds
        self.assertEqual(f["max_employees"]["source"], "override")

        r = h.request("PUT", f"/api/provisioning/{b['tenantInstanceId']}/features",
                      body={"customFeatures": [{"featureCode": "max_users", "value": 12}]})
        self.assertEqual(r.status, 200, r)
        u = r.json()
        self.assertEqual(u["tenantInstanceId"], b["tenantInstanceId"])
        uuid.UUID(u["taskId"])
        f = entitlements(h, b["tenantInstanceId"])["features"]
        self.assertEqual(f["max_users"]["value"], 12)
        self.assertFalse(f["payroll"]["enabled"])  # replaced: moduleIds no longer list it

        # removal waits for provisioning to end (409 instance-busy meanwhile)
        settled(h, b["tenantInstanceId"], ("active", "failed"))
        r = h.request("DELETE", f"/api/provisioning/{b['tenantInstanceId']}")
        self.assertEqual(r.status, 202, r)
        d = r.json()
        self.assertEqual((d["tenantInstanceId"], d["status"]), (b["tenantInstanceId"], "deprovisioning"))
        uuid.UUID(d["taskId"])

    def test_errors_name_the_field(self):
        h = self.host()
        c = customer(h)
        base = {"customerId": c["id"], "productId": "erp", "settings": {"admin_email": "a@b.test"}}
        cases = [
            ({**base, "customerId": "x"}, 400, "#/customerId"),
            ({**base, "productId": "nope"}, 422, "#/productId"),
            ({**base, "environment": "moon"}, 400, "#/environment"),
            ({**base, "moduleIds": ["nope"]}, 422, "#/moduleIds/0"),
            ({**base, "customFeatures": {"warp": True}}, 422, "#/customFeatures/warp"),
            ({**base, "customFeatures": {"max_users": -3}}, 400, "#/customFeatures/max_users"),
            ({**base, "unknown": 1}, 400, "#/unknown"),
        ]
        for body, status, pointer in cases:
            with self.subTest(body=body):
                p = self.assertProblem(h.post("/api/provisioning/provision", body=body), status)
                self.assertIn(pointer, [e["pointer"] for e in p["errors"]], p)
        missing = str(uuid.uuid4())
        self.assertProblem(h.post("/api/provisioning/provision", body={**base, "customerId": missing}), 404, "customer-not-found")
        self.assertProblem(h.request("DELETE", f"/api/provisioning/{missing}"), 404, "instance-not-found")


if __name__ == "__main__":
    main()
