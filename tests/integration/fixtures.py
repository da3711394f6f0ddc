"""Builders for tenancy objects over the API, shared by the tenancy, entitlements and OFREP
tests. Each call makes fresh, uniquely named objects, so tests can run in any order."""
import secrets

from harness import wait_until


def customer(h, **extra):
    body = {"legal_name": f"Customer {secrets.token_hex(4)}", "tax_id": secrets.token_hex(6), "country": "CO"}
    body.update(extra)
    r = h.post("/api/v1/customers", body=body)
    assert r.status == 201, r
    return r.json()


def instance(h, customer_id, product="vet", plan="professional", **extra):
    body = {"code": "i-" + secrets.token_hex(4), "product": product, "plan": plan,
            "settings": {"admin_email": "admin@example.test"}}
    body.update(extra)
    r = h.post(f"/api/v1/customers/{customer_id}/instances", body=body)
    assert r.status == 202, r
    return r.json()


def settled(h, instance_id, statuses=("active",), timeout=120):
    """Waits for the instance's provisioning to end in one of statuses; returns the instance."""
    def check():
        i = h.get(f"/api/v1/instances/{instance_id}").json()
        return i if i["status"] in statuses else None
    return wait_until(check, timeout, what=f"instance {instance_id} to be {' or '.join(statuses)}")


def entitlements(h, instance_id):
    r = h.get(f"/api/v1/instances/{instance_id}/entitlements")
    assert r.status == 200, r
    return r.json()


def child_key(h, instance_id):
    """A child-app API key bound to the instance, made through the API."""
    r = h.post("/api/v1/api-keys", body={"name": "child app", "roles": ["child-app"], "instance_id": instance_id})
    assert r.status == 201, r
    return r.json()["key"]


def ofrep(h, flag, credential, extra_context=None, headers=None):
    """Evaluates one flag as a child app does: its key names the instance; the context carries
    the app's own attributes (a user as targetingKey, which never selects a tenant)."""
    ctx = {"targetingKey": "user-42"}
    ctx.update(extra_context or {})
    return h.request("POST", f"/ofrep/v1/evaluate/flags/{flag}", body={"context": ctx}, headers=headers, auth=credential)
