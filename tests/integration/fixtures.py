"""Builders for tenancy objects over the API, shared by the tenancy, entitlements and OFREP
tests. Each call makes fresh, uniquely named objects, so tests can run in any order."""
import secrets


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


def entitlements(h, instance_id):
    r = h.get(f"/api/v1/instances/{instance_id}/entitlements")
    assert r.status == 200, r
    return r.json()


def ofrep(h, key, instance_id, extra_context=None, headers=None):
    ctx = {"targetingKey": instance_id}
    ctx.update(extra_context or {})
    return h.post(f"/ofrep/v1/evaluate/flags/{key}", body={"context": ctx}, headers=headers)
