"""Security, as an outside attacker or user sees it: forged and tampered access tokens, signing
key rotation and retirement, tenant isolation over every /api route (found by reading the route
tables at test time), sign-in lockout, refresh token rotation and reuse detection, rate limits,
Idempotency-Key replays, the audit log, and the life of an API key."""
import base64
import datetime
import glob
import http.client
import json
import os
import re
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import contract
from harness import FAULTY, HOST_BIN, OPENAPI_CHECK, ROOT, StackTestCase, main, plugin_dir, wait_until

FAST = {"FT_JOB_BACKOFF_MS": "150", "FT_JOB_BACKOFF_MAX_MS": "4000", "FT_JOB_ACK_WAIT_MS": "2000", "FT_RELAY_POLL_MS": "1000",
        "FT_SWEEP_INTERVAL_MS": "1000"}
PASSWORD = "correct horse battery staple"
KEY_SHAPE = re.compile(r"^ftk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$")
CUSTOMER_ROLES = ("customer-admin", "customer-viewer")
# permissions no customer-bound credential may ever hold, whatever rbac.c says
STAFF_ONLY = {"customers:create", "customers:delete", "dlq:read", "dlq:write", "plugins:read", "plugins:reload",
              "hosts:read", "signing-keys:read", "signing-keys:write", "dev:use", "tenant-databases:read",
              "tenant-databases:write"}


# ---------------------------------------------------------------- the route and role tables

class Route:
    def __init__(self, method, pattern, permission, action, flags, source):
        self.method, self.pattern, self.permission, self.action, self.flags, self.source = \
            method, pattern, permission, action, flags, source

    @property
    def write(self):
        return "FT_ROUTE_WRITE" in self.flags

    @property
    def params(self):
        return re.findall(r"\{(\w+)\}", self.pattern)

    def __repr__(self):
        return f"{self.method} {self.pattern}"


def parse_routes():
    """Every route of the static tables at the bottom of host/http/*.c."""
    routes = []
    entry = re.compile(r'\{\s*\.method\s*=\s*"([A-Z]+)"\s*,\s*\.pattern\s*=\s*"([^"]+)"([^{}]*)\}')
    for path in sorted(glob.glob(os.path.join(ROOT, "host", "http", "*.c"))):
        with open(path) as f:
            text = f.read()
        for m in entry.finditer(text):
            rest = m.group(3)
            perm = re.search(r'\.permission\s*=\s*"([^"]+)"', rest)
            action = re.search(r'\.action\s*=\s*"([^"]+)"', rest)
            routes.append(Route(m.group(1), m.group(2), perm.group(1) if perm else None, action.group(1) if action else None,
                                set(re.findall(r"FT_ROUTE_[A-Z_]+", rest)), os.path.basename(path)))
    return routes


def parse_roles():
    """role name -> the permissions host/auth/rbac.c grants it."""
    with open(os.path.join(ROOT, "host", "auth", "rbac.c")) as f:
        text = f.read()
    arrays = {name: set(re.findall(r'"([^"]+)"', body))
              for name, body in re.findall(r"static const char \*const (\w+)\[\] = \{(.*?)\};", text, re.S)}
    return {name: arrays[arr] for name, arr in re.findall(r'\{FT_ROLE_\w+,\s*"([a-z-]+)",\s*(\w+)\}', text)}


PUBLIC_AUTH = {"/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout"}
# the API's own documentation, public on purpose (integration.openapi checks it)
PUBLIC_DOCS = {"/api/v1/openapi.json", "/api/v1/docs", "/api/v1/docs/redoc.standalone.js"}


def api_routes():
    return [r for r in parse_routes()
            if r.pattern.startswith("/api/") and not r.pattern.startswith("/api/v1/_dev") and r.pattern not in PUBLIC_AUTH | PUBLIC_DOCS]


# ---------------------------------------------------------------- JOSE by hand

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def b64u_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token):
    h, p, _ = token.split(".")
    return json.loads(b64u_decode(h)), json.loads(b64u_decode(p))


class Forge:
    """Makes tokens with the openssl command line."""

    def __init__(self, directory):
        self.dir = tempfile.mkdtemp(prefix="jose-", dir=directory)

    def _file(self, text):
        path = os.path.join(self.dir, secrets.token_hex(6) + ".pem")
        with open(path, "w") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.chmod(path, 0o600)
        return path

    @staticmethod
    def _openssl(*args, data=None):
        p = subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)} failed: {p.stderr.decode(errors='replace')}")
        return p.stdout

    def fresh_rsa_key(self):
        path = os.path.join(self.dir, secrets.token_hex(6) + ".pem")
        self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        with open(path) as f:
            return f.read()

    def public_pem(self, private_pem):
        return self._openssl("pkey", "-in", self._file(private_pem), "-pubout").decode()

    def rs256(self, private_pem, header, claims):
        signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
        sig = self._openssl("dgst", "-sha256", "-sign", self._file(private_pem), data=signing_input.encode())
        return signing_input + "." + b64u(sig)

    def hs256(self, secret, header, claims):
        signing_input = f"{b64u_json(header)}.{b64u_json(claims)}"
        mac = self._openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + secret.hex(), "-binary",
                            data=signing_input.encode())
        return signing_input + "." + b64u(mac)


# ---------------------------------------------------------------- the test case

class SecurityCase(StackTestCase):
    """Hosts load the products and the faulty test product (for DLQ entries), with fast retries."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plugins = plugin_dir(cls.stack.dir, FAULTY)
        cls.routes = api_routes()
        cls.roles = parse_roles()

    def host(self, start=True, **kw):
        env = {"FT_PLUGIN_DIR": self.plugins, **FAST}
        env.update(kw.pop("env", {}))
        return super().host(start=start, env=env, **kw)

    # ---- builders

    def customer(self, h, **extra):
        body = {"legal_name": f"Customer {secrets.token_hex(4)}", "tax_id": secrets.token_hex(6), "country": "CO"}
        body.update(extra)
        r = h.post("/api/v1/customers", body=body)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def instance(self, h, customer_id, product="vet", plan="professional", settings=None, **extra):
        body = {"code": "i-" + secrets.token_hex(4), "product": product, "plan": plan,
                "settings": settings if settings is not None else {"admin_email": "admin@example.test"}}
        body.update(extra)
        r = h.post(f"/api/v1/customers/{customer_id}/instances", body=body)
        self.assertEqual(r.status, 202, r)
        return r.json()

    def api_key(self, h, roles, auth="admin", **scope):
        r = h.post("/api/v1/api-keys", body={"name": "k-" + secrets.token_hex(3), "roles": list(roles), **scope}, auth=auth)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def user(self, h, roles, customer_id=None, email=None, auth="admin"):
        body = {"email": email or f"u-{secrets.token_hex(5)}@example.test", "password": PASSWORD, "roles": list(roles)}
        if customer_id:
            body["customer_id"] = customer_id
        r = h.post("/api/v1/users", body=body, auth=auth)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def login(self, h, email, password=PASSWORD, headers=None):
        return h.post("/api/v1/auth/login", body={"email": email, "password": password}, auth=None, headers=headers)

    def token(self, h, email, password=PASSWORD):
        r = self.login(h, email, password)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def create_admin(self, h, email=None, password=PASSWORD):
        email = email or f"root-{secrets.token_hex(4)}@example.test"
        code, out, err = h.cli("create-admin", "--email", email, env={"FT_ADMIN_PASSWORD": password})
        self.assertEqual(code, 0, err)
        return email, re.search(r"\(([0-9a-f-]{36})\)", out).group(1)

    def wait_instance(self, h, instance_id, statuses, timeout=60):
        def check():
            s = h.get(f"/api/v1/instances/{instance_id}").json()
            return s if s["status"] in statuses else None
        return wait_until(check, timeout, interval=0.1, what=f"instance {instance_id} to be {statuses}")

    def dlq_entry(self, h, customer_id):
        """A DLQ entry of the customer: an instance of the faulty product whose step fails for good."""
        i = self.instance(h, customer_id, product="faulty", plan="basic", settings={"admin_email": "a@b.test", "fatal": True})
        self.wait_instance(h, i["id"], ["failed"])
        job = i["latest_job"]["id"]
        d = wait_until(lambda: [x for x in h.get("/api/v1/dlq").json()["items"] if x["job_id"] == job], 30, what="the DLQ entry")
        return i, d[0]

    def subject(self, h, credential):
        r = h.get("/api/v1/auth/me", auth=credential)
        self.assertEqual(r.status, 200, r)
        return r.json()["subject"]

    def assertUnauthenticated(self, r, invalid_token=True, msg=None):
        p = self.assertProblem(r, 401, "unauthenticated")
        challenge = r.headers.get("www-authenticate", "")
        self.assertTrue(challenge.startswith('Bearer realm="farutech"'), (challenge, msg))
        if invalid_token:
            self.assertIn('error="invalid_token"', challenge, msg)
        return p

    def assertForbidden(self, r, permission, msg=None):
        self.assertEqual(r.status, 403, (msg, r))
        p = self.assertProblem(r, 403, "forbidden")
        self.assertEqual(p.get("required_permission"), permission, (msg, p))
        self.assertIn(permission, p["detail"], msg)


class Security(SecurityCase):

    # ================================================================ credentials and tokens

    def test_missing_and_malformed_credentials(self):
        h = self.host()
        wait_until(lambda: h.get("/ready", auth=None).status == 200, 60, what="/ready")
        for path in ("/health", "/ready", "/metrics", "/.well-known/jwks.json"):
            self.assertEqual(h.get(path, auth=None).status, 200, path)
        r = h.get("/api/v1/customers", auth=None)
        self.assertUnauthenticated(r, invalid_token=False)
        self.assertEqual(r.headers["www-authenticate"], 'Bearer realm="farutech"')
        self.assertNotIn("error=", r.headers["www-authenticate"])
        self.assertUnauthenticated(h.post("/ofrep/v1/evaluate/flags", body={"context": {}}, auth=None), invalid_token=False)
        # writes are refused before anything is done
        r = h.post("/api/v1/customers", body={"legal_name": "X", "tax_id": secrets.token_hex(6), "country": "CO"}, auth=None)
        self.assertUnauthenticated(r, invalid_token=False)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_customers", h.dbname), "0")
        # API keys: Bearer or X-API-Key; a key of the right shape that is not one, a tampered secret
        key = h.admin_key
        self.assertTrue(KEY_SHAPE.match(key), key)
        self.assertEqual(h.get("/api/v1/customers", headers={"X-API-Key": key}, auth=None).status, 200)
        self.assertEqual(h.get("/api/v1/customers", auth=key).status, 200)
        # spaces around the credential are not part of it, whether or not the key is cached here yet
        fresh = h.make_key("customer-viewer", customer=self.customer(h)["id"])
        for attempt in ("not cached", "cached"):
            with self.subTest(spaces=attempt):
                self.assertEqual(h.get("/api/v1/auth/me", headers={"Authorization": "Bearer  " + fresh + "  "}, auth=None).status, 200)
        prefix, secret = key[4:16], key[17:]
        other_secret = ("A" if secret[0] != "A" else "B") + secret[1:]
        bad = {"unknown prefix": "ftk_" + "0" * 12 + "_" + secret, "tampered secret": f"ftk_{prefix}_{other_secret}",
               "short": "ftk_abc", "truncated": key[:-1], "padded": key + "A", "uppercase prefix": "ftk_" + prefix.upper() + key[16:]}
        for what, k in bad.items():
            with self.subTest(what):
                self.assertUnauthenticated(h.get("/api/v1/customers", auth=k), msg=what)
                self.assertUnauthenticated(h.get("/api/v1/customers", headers={"X-API-Key": k}, auth=None), msg=what)
        # other schemes and empty credentials
        for value in ("Basic YWRtaW46YWRtaW4=", "Bearer ", "Bearer", "Token " + key, key):
            with self.subTest(authorization=value):
                r = h.get("/api/v1/customers", headers={"Authorization": value}, auth=None)
                self.assertProblem(r, 401, "unauthenticated")
                self.assertTrue(r.headers["www-authenticate"].startswith('Bearer realm="farutech"'))

    def test_forged_and_tampered_access_tokens_are_refused(self):
        h = self.host()
        forge = Forge(self.stack.dir)
        email, admin_id = self.create_admin(h)
        login = self.token(h, email)
        access = login["access_token"]
        header, claims = jwt_parts(access)
        kid = header["kid"]
        # what a login hands out
        self.assertEqual(set(login), {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "user"})
        self.assertEqual((login["token_type"], login["expires_in"]), ("Bearer", 900))
        self.assertTrue(login["refresh_token"].startswith("ftr_"))
        self.assertEqual(login["user"]["id"], admin_id)
        self.assertEqual((header["alg"], header["typ"]), ("RS256", "JWT"))
        self.assertIn(kid, [k["kid"] for k in h.get("/.well-known/jwks.json", auth=None).json()["keys"]])
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"], claims["email"], claims["roles"]),
                         ("farutech", "farutech-api", admin_id, email, ["platform-admin"]))
        self.assertEqual(claims["exp"] - claims["iat"], 900)
        self.assertNotIn("customer_id", claims)
        self.assertTrue(claims["jti"])
        jwks = h.get("/.well-known/jwks.json", auth=None).json()
        for k in jwks["keys"]:
            self.assertFalse({"d", "p", "q", "dp", "dq", "qi"} & set(k), k)  # never a private member
        self.assertEqual(h.get("/api/v1/customers", auth=access).status, 200)
        me = h.get("/api/v1/auth/me", auth=access).json()
        self.assertEqual((me["subject"], me["roles"]), (f"user:{admin_id}", ["platform-admin"]))

        pem = self.stack.psql(f"SELECT private_pem FROM ft_signing_keys WHERE kid = '{kid}'", h.dbname)
        self.assertIn("PRIVATE KEY", pem)
        now = int(time.time())
        good = {"iss": "farutech", "aud": "farutech-api", "sub": admin_id, "email": email, "roles": ["platform-admin"],
                "iat": now - 5, "exp": now + 300, "jti": secrets.token_urlsafe(12)}
        rs = {"alg": "RS256", "typ": "JWT", "kid": kid}
        # the forging machinery makes tokens the host accepts: every refusal below is about one defect
        forged = forge.rs256(pem, rs, good)
        self.assertEqual(h.get("/api/v1/customers", auth=forged).status, 200)

        public = forge.public_pem(pem)
        own_key = forge.fresh_rsa_key()
        c = self.customer(h)
        viewer = self.user(h, ["customer-viewer"], customer_id=c["id"])
        viewer_token = self.token(h, viewer["email"])["access_token"]
        self.assertEqual(h.get("/api/v1/auth/me", auth=viewer_token).status, 200)
        self.assertEqual(h.get("/api/v1/users", auth=viewer_token).status, 403)
        vh, vp, vs = viewer_token.split(".")
        escalated = dict(json.loads(b64u_decode(vp)), roles=["platform-admin"])
        escalated.pop("customer_id")

        def without(k):
            d = dict(good)
            d.pop(k)
            return d
        attacks = {
            "alg none": f"{b64u_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64u_json(good)}.",
            "alg none, no kid": f"{b64u_json({'alg': 'none', 'typ': 'JWT'})}.{b64u_json(good)}.",
            "alg NONE with the real signature": f"{b64u_json({'alg': 'NONE', 'typ': 'JWT', 'kid': kid})}.{b64u_json(good)}."
                                                + forged.split(".")[2],
            "HS256 keyed with the public PEM": forge.hs256(public.encode(), {"alg": "HS256", "typ": "JWT", "kid": kid}, good),
            "HS256 keyed with the public PEM, no newline": forge.hs256(public.strip().encode(),
                                                                       {"alg": "HS256", "typ": "JWT", "kid": kid}, good),
            "not yet valid": forge.rs256(pem, rs, dict(good, nbf=now + 3600)),
            "issued by someone else": forge.rs256(pem, rs, dict(good, iss="https://evil.example")),
            "no issuer": forge.rs256(pem, rs, without("iss")),
            "for another audience": forge.rs256(pem, rs, dict(good, aud="other-api")),
            "audience list without ours": forge.rs256(pem, rs, dict(good, aud=["other-api", "farutech"])),
            "no audience": forge.rs256(pem, rs, without("aud")),
            "no expiry": forge.rs256(pem, rs, without("exp")),
            "expiry as a string": forge.rs256(pem, rs, dict(good, exp=str(now + 300))),
            "roles tampered, signature kept": f"{vh}.{b64u_json(escalated)}.{vs}",
            "subject tampered, signature kept": forged.split(".")[0] + "." + b64u_json(dict(good, sub=str(uuid.uuid4()))) + "."
                                                + forged.split(".")[2],
            "unknown kid": forge.rs256(pem, dict(rs, kid="no-such-kid"), good),
            "no kid": forge.rs256(pem, {"alg": "RS256", "typ": "JWT"}, good),
            "own key with the real kid": forge.rs256(own_key, rs, good),
            "own key, its JWK embedded": forge.rs256(own_key, dict(rs, jwk={"kty": "RSA"}, kid="attacker"), good),
            "signature stripped": forged.rsplit(".", 1)[0] + ".",
            "signature of another token": forged.rsplit(".", 1)[0] + "." + viewer_token.split(".")[2],
            "crit header": forge.rs256(pem, dict(rs, crit=["exp"]), good),
            "garbage": "garbage",
            "three dots of garbage": "a.b.c",
            "four parts": forged + ".x",
            "huge": "a" * 9000,
        }
        for what, token in attacks.items():
            with self.subTest(what):
                self.assertUnauthenticated(h.get("/api/v1/customers", auth=token), msg=what)
        # an authentic token past its exp is told apart (a client refreshes), nothing more
        r = h.get("/api/v1/customers", auth=forge.rs256(pem, rs, dict(good, iat=now - 1000, exp=now - 2)))
        self.assertProblem(r, 401, "token-expired")
        self.assertIn('error="invalid_token"', r.headers.get("www-authenticate", ""))
        # the real token is as good as before
        self.assertEqual(h.get("/api/v1/customers", auth=access).status, 200)

    def test_access_tokens_end_when_the_users_access_changes(self):
        """Disabling, a new password, other roles or deletion void the user's access tokens at
        once, on this host and (through NOTIFY) on another; a fresh sign-in works again."""
        h = self.host()
        other = self.host(dbname=h.dbname)
        c = self.customer(h)
        u = self.user(h, ["customer-admin"], customer_id=c["id"])
        me = "/api/v1/auth/me"

        def refused(host, token):
            r = host.get(me, auth=token)
            self.assertEqual(r.status, 401, r)
            self.assertIn('error="invalid_token"', r.headers.get("www-authenticate", ""))
            self.assertIn("revoked", r.json()["detail"])

        def fresh():
            t = self.token(h, u["email"])["access_token"]
            for host in (h, other):
                self.assertEqual(host.get(me, auth=t).status, 200)
            return t

        # a change that does not decide access leaves tokens alone
        t = fresh()
        self.assertEqual(h.request("PATCH", f"/api/v1/users/{u['id']}", body={"display_name": "Still Me"}).status, 200)
        for host in (h, other):
            self.assertEqual(host.get(me, auth=t).status, 200)
        for change in ({"status": "disabled"}, {"password": PASSWORD + "-new"}, {"roles": ["customer-viewer"]}):
            with self.subTest(change=change):
                t = fresh()
                time.sleep(1.05)  # the token's iat is in whole seconds: let the change fall in a later one
                r = h.request("PATCH", f"/api/v1/users/{u['id']}", body=change)
                self.assertEqual(r.status, 200, r)
                refused(h, t)  # this host: at once, with the answer
                t0 = time.monotonic()
                wait_until(lambda: other.get(me, auth=t).status == 401, 1.0, interval=0.01, what="the other host to hear")
                self.assertLess(time.monotonic() - t0, 1.0)
                refused(other, t)
                if change.get("status") == "disabled":
                    self.assertEqual(self.login(h, u["email"]).status, 401)
                    self.assertEqual(h.request("PATCH", f"/api/v1/users/{u['id']}", body={"status": "active"}).status, 200)
                    refused(h, t)  # enabling again does not bring the old token back
                if "password" in change:
                    self.assertEqual(h.request("PATCH", f"/api/v1/users/{u['id']}", body={"password": PASSWORD}).status, 200)
        # roles that do not fit the user are refused whoever asks, and nothing changes
        r = h.request("PATCH", f"/api/v1/users/{u['id']}", body={"roles": ["operator"]})
        self.assertEqual((r.status, r.json()["type"].rsplit("/", 1)[-1]), (422, "roles-do-not-fit"), r)
        # deleted: its tokens end too
        t = fresh()
        time.sleep(1.05)
        self.assertEqual(h.request("DELETE", f"/api/v1/users/{u['id']}").status, 204)
        refused(h, t)
        wait_until(lambda: other.get(me, auth=t).status == 401, 1.0, interval=0.01, what="the other host to hear")
        # a host started later learns the revocations from the database
        late = self.host(dbname=h.dbname)
        self.assertEqual(late.get(me, auth=t).status, 401)

    def test_signing_key_rotation_and_retirement(self):
        h = self.host()
        email, _ = self.create_admin(h)
        first = self.token(h, email)["access_token"]
        k1 = jwt_parts(first)[0]["kid"]
        r = h.post("/api/v1/auth/signing-keys")
        self.assertEqual(r.status, 200, r)
        keys = r.json()["keys"]
        k2 = [k["kid"] for k in keys if k["signing"]][0]
        self.assertNotEqual(k1, k2)
        jwks = [k["kid"] for k in h.get("/.well-known/jwks.json", auth=None).json()["keys"]]
        self.assertIn(k1, jwks)
        self.assertIn(k2, jwks)
        second = self.token(h, email)["access_token"]
        self.assertEqual(jwt_parts(second)[0]["kid"], k2)  # new logins use the new key
        self.assertEqual(h.get("/api/v1/auth/me", auth=first).status, 200)  # rotated out, not retired: still good
        self.assertEqual(h.get("/api/v1/auth/me", auth=second).status, 200)
        # another host on the same database learns the new key
        h2 = self.host(dbname=h.dbname)
        self.assertEqual(h2.get("/api/v1/auth/me", auth=second).status, 200)
        # the signing key cannot be retired; the old one can
        self.assertProblem(h.request("DELETE", f"/api/v1/auth/signing-keys/{k2}"), 409)
        self.assertProblem(h.request("DELETE", "/api/v1/auth/signing-keys/no-such-kid"), 404)
        r = h.request("DELETE", f"/api/v1/auth/signing-keys/{k1}")
        self.assertEqual(r.status, 200, r)
        self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=first))
        self.assertEqual(h.get("/api/v1/auth/me", auth=second).status, 200)
        self.assertNotIn(k1, [k["kid"] for k in h.get("/.well-known/jwks.json", auth=None).json()["keys"]])
        wait_until(lambda: h2.get("/api/v1/auth/me", auth=first).status == 401, 60, what="the other host to drop the retired key")
        self.assertEqual(h2.get("/api/v1/auth/me", auth=second).status, 200)
        # a token forged with the retired key's private PEM: no better
        pem = self.stack.psql(f"SELECT private_pem FROM ft_signing_keys WHERE kid = '{k1}'", h.dbname)
        now = int(time.time())
        claims = dict(jwt_parts(second)[1], iat=now, exp=now + 300)
        forged = Forge(self.stack.dir).rs256(pem, {"alg": "RS256", "typ": "JWT", "kid": k1}, claims)
        self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=forged))
        # only a platform admin rotates
        operator = h.make_key("operator")
        self.assertForbidden(h.post("/api/v1/auth/signing-keys", auth=operator), "signing-keys:write")
        self.assertForbidden(h.request("DELETE", f"/api/v1/auth/signing-keys/{k2}", auth=operator), "signing-keys:write")

    # ================================================================ sign-in, refresh, sign-out

    def test_login_lockout_counts_failures_in_a_row_for_any_address(self):
        h = self.host(env={"FT_LOGIN_MAX_FAILURES": "3", "FT_LOGIN_LOCKOUT_S": "900"})
        email, admin_id = self.create_admin(h)
        c = self.customer(h)
        disabled = self.user(h, ["customer-viewer"], customer_id=c["id"])
        self.assertEqual(h.request("PATCH", f"/api/v1/users/{disabled['id']}", body={"status": "disabled"}).status, 200)
        unknown = f"nobody-{secrets.token_hex(4)}@example.test"

        wrong = self.login(h, email, "not the password")
        p_wrong = self.assertProblem(wrong, 401, "invalid-credentials")
        p_unknown = self.assertProblem(self.login(h, unknown, "not the password"), 401, "invalid-credentials")
        p_disabled = self.assertProblem(self.login(h, disabled["email"], PASSWORD), 401, "invalid-credentials")
        # one answer for all three: nothing tells which addresses exist
        for p in (p_unknown, p_disabled):
            self.assertEqual({k: v for k, v in p.items() if k not in ("request_id",)},
                             {k: v for k, v in p_wrong.items() if k not in ("request_id",)})
        self.assertNotIn("access_token", wrong.body.decode())

        # failures in a row, not failures in total: a success in between resets the count
        other, _ = self.create_admin(h)
        for _ in range(2):
            self.assertEqual(self.login(h, other, "wrong").status, 401)
            self.assertEqual(self.login(h, other, "wrong too").status, 401)
            self.assertEqual(self.login(h, other).status, 200)

        # the third failure in a row locks: even the right password is refused, with Retry-After
        self.assertEqual(self.login(h, email, "still wrong").status, 401)
        self.assertEqual(self.login(h, email, "wrong again").status, 401)
        for password in ("wrong once more", PASSWORD):
            r = self.login(h, email, password)
            self.assertProblem(r, 429, "login-locked")
            self.assertNotIn("access_token", r.body.decode())
            self.assertTrue(r.headers["retry-after"].isdigit(), r.headers)
            self.assertTrue(1 <= int(r.headers["retry-after"]) <= 900, r.headers)
        # the case of the address does not make another address
        self.assertProblem(self.login(h, email.upper()), 429, "login-locked")
        # other addresses are unaffected
        self.assertEqual(self.login(h, other).status, 200)

        # an unknown address locks exactly the same way
        for _ in range(2):
            self.assertProblem(self.login(h, unknown, "guess"), 401, "invalid-credentials")
        r = self.login(h, unknown, "guess")
        self.assertProblem(r, 429, "login-locked")
        self.assertTrue(int(r.headers["retry-after"]) >= 1)

        # every attempt is recorded
        rows = self.stack.psql(f"SELECT string_agg(success::text || ':' || coalesce(reason, ''), ',' ORDER BY id)"
                               f" FROM ft_login_attempts WHERE lower(email) = lower('{email}')", h.dbname)
        self.assertEqual(rows.split(","), ["false:wrong password"] * 3 + ["false:locked"] * 3)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_login_attempts WHERE email = '{unknown}'", h.dbname), "4")
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_login_attempts WHERE email = '{unknown}' AND user_id IS NOT NULL",
                                         h.dbname), "0")
        audit = h.get(f"/api/v1/audit?action=auth.login&entity_id={admin_id}&limit=200").json()["items"]
        self.assertEqual(sorted(a["result"] for a in audit), ["failure"] * 3)
        denied = h.get("/api/v1/audit?action=auth.login&result=denied&limit=200").json()["items"]
        self.assertEqual(len(denied), 4, denied)  # the 3 locked attempts on email, the 1 on the unknown address
        self.assertTrue(all(a["details"]["email"] in (email, email.upper(), unknown) for a in denied), denied)

    def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(self):
        h = self.host(env={"FT_LOGIN_MAX_FAILURES": "3"}, threads=4)
        email, _ = self.create_admin(h)
        results = []
        barrier = threading.Barrier(12)

        def guess(n):
            barrier.wait()
            results.append(self.login(h, email, f"guess {n}").status)
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertTrue(set(results) <= {401, 429}, results)
        checked = int(self.stack.psql(f"SELECT count(*) FROM ft_login_attempts WHERE email = '{email}' AND reason <> 'locked'",
                                      h.dbname))
        # the lockout is a budget of password guesses: parallel requests must not buy more of them
        self.assertLessEqual(checked, 3, f"{checked} passwords were checked for one address with FT_LOGIN_MAX_FAILURES=3: {results}")
        self.assertEqual(results.count(401), checked)

    def test_refresh_rotation_reuse_detection_and_logout(self):
        h = self.host()
        email, admin_id = self.create_admin(h)
        first = self.token(h, email)
        r1 = first["refresh_token"]
        self.assertEqual(first["refresh_expires_in"], 2592000)
        rot = h.post("/api/v1/auth/refresh", body={"refresh_token": r1}, auth=None)
        self.assertEqual(rot.status, 200, rot)
        second = rot.json()
        r2 = second["refresh_token"]
        self.assertNotEqual(r2, r1)
        self.assertNotEqual(second["access_token"], first["access_token"])
        self.assertEqual(h.get("/api/v1/auth/me", auth=second["access_token"]).json()["subject"], f"user:{admin_id}")
        self.assertNotIn(r1, json.dumps(second))
        # a token that already rotated, used again: 401, and the whole family is revoked
        p = self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": r1}, auth=None), 401, "refresh-token-reused")
        self.assertNotIn("access_token", p)
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": r2}, auth=None), 401)
        # another sign-in (family) of the same user is not touched
        other = self.token(h, email)
        r = h.post("/api/v1/auth/refresh", body={"refresh_token": other["refresh_token"]}, auth=None)
        self.assertEqual(r.status, 200, r)
        r3 = r.json()["refresh_token"]
        # two uses of one token at once: exactly one wins
        outcomes = []
        barrier = threading.Barrier(2)

        def use():
            barrier.wait()
            outcomes.append(h.post("/api/v1/auth/refresh", body={"refresh_token": r3}, auth=None))
        ts = [threading.Thread(target=use) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(o.status for o in outcomes), [200, 401], outcomes)
        # sign-out: 204, then the token is dead; signing out again is still 204
        fresh = self.token(h, email)
        self.assertEqual(h.post("/api/v1/auth/logout", body={"refresh_token": fresh["refresh_token"]}, auth=None).status, 204)
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": fresh["refresh_token"]}, auth=None), 401,
                           "invalid-refresh-token")
        self.assertEqual(h.post("/api/v1/auth/logout", body={"refresh_token": fresh["refresh_token"]}, auth=None).status, 204)
        # tokens that were never issued
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": "ftr_" + b64u(os.urandom(32))}, auth=None), 401,
                           "invalid-refresh-token")
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": "not-a-token"}, auth=None), 400)
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": first["access_token"][:200]}, auth=None), 400)
        # disabling a user and changing a password revoke the user's refresh tokens
        c = self.customer(h)
        u = self.user(h, ["customer-admin"], customer_id=c["id"])
        t1 = self.token(h, u["email"])
        self.assertEqual(t1["user"]["customer_id"], c["id"])
        self.assertEqual(jwt_parts(t1["access_token"])[1]["customer_id"], c["id"])
        self.assertEqual(h.request("PATCH", f"/api/v1/users/{u['id']}", body={"password": "another long password"}).status, 200)
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": t1["refresh_token"]}, auth=None), 401)
        self.assertEqual(self.login(h, u["email"], PASSWORD).status, 401)
        t2 = self.token(h, u["email"], "another long password")
        self.assertEqual(h.request("PATCH", f"/api/v1/users/{u['id']}", body={"status": "disabled"}).status, 200)
        self.assertProblem(h.post("/api/v1/auth/refresh", body={"refresh_token": t2["refresh_token"]}, auth=None), 401)
        self.assertProblem(self.login(h, u["email"], "another long password"), 401, "invalid-credentials")
        # the refresh events are audited
        rows = h.get(f"/api/v1/audit?action=auth.refresh&entity_id={admin_id}&limit=200").json()["items"]
        self.assertIn("denied", [a["result"] for a in rows])
        self.assertIn("success", [a["result"] for a in rows])
        self.assertTrue(h.get(f"/api/v1/audit?action=auth.logout&entity_id={admin_id}").json()["items"])

    # ================================================================ rate limits

    def until_limited(self, send, tokens, rps, since=None, passing=(200,)):
        """Sends until a 429. A bucket holding at most `tokens` at `since` (default: now) lets at most
        those through, plus what refills at rps meanwhile: a slow machine lets more through, never
        fewer. Returns the 429, how many passed (each with a status in `passing`) and when the 429
        was asked for (its bucket then held less than one token)."""
        since, passed = since or time.monotonic(), 0
        while True:
            asked = time.monotonic()
            r = send()
            if r.status == 429:
                return r, passed, asked
            self.assertIn(r.status, passing, r)
            passed += 1
            self.assertLessEqual(passed, tokens + rps * (time.monotonic() - since), "more got through than the bucket holds")

    def test_rate_limit_per_credential(self):
        h = self.host(env={"FT_RATE_LIMIT_RPS": "1", "FT_RATE_LIMIT_BURST": "3"})
        k1, k2 = h.make_key("operator"), h.make_key("operator")
        r, passed, limited = self.until_limited(lambda: h.get("/api/v1/customers", auth=k1), 3, 1)
        self.assertGreaterEqual(passed, 3)  # the burst
        p = self.assertProblem(r, 429, "rate-limited")
        self.assertEqual(p.get("limited_by"), "credential")
        self.assertTrue(re.fullmatch(r"[1-9][0-9]*", r.headers.get("retry-after", "")), r.headers)
        self.assertEqual(h.get("/api/v1/customers", auth=k2).status, 200)  # another credential: its own bucket
        # same key, other header: the same bucket, which had less than one token left
        r, _, _ = self.until_limited(lambda: h.get("/api/v1/customers", headers={"X-API-Key": k1}, auth=None), 1, 1, limited)
        self.assertEqual(h.get("/health", auth=None).status, 200)
        time.sleep(int(r.headers["retry-after"]) + 0.1)
        self.assertEqual(h.get("/api/v1/customers", auth=k1).status, 200)

    def test_rate_limit_per_client_address(self):
        h = self.host(env={"FT_RATE_LIMIT_IP_RPS": "1", "FT_RATE_LIMIT_IP_BURST": "3"})
        keys = [h.make_key("operator") for _ in range(4)]
        # two credentials and an anonymous request (which counts too), then fresh credentials do not help
        sent = iter([keys[0], keys[1], None] + keys[2:] * 20)
        r, passed, limited = self.until_limited(lambda: h.get("/api/v1/customers", auth=next(sent)), 3, 1, passing=(200, 401))
        self.assertGreaterEqual(passed, 3)
        p = self.assertProblem(r, 429, "rate-limited")
        self.assertEqual(p.get("limited_by"), "client address")
        self.assertTrue(re.fullmatch(r"[1-9][0-9]*", r.headers.get("retry-after", "")), r.headers)
        self.until_limited(lambda: h.post("/api/v1/auth/login", body={"email": "a@b.test", "password": "x"}, auth=None), 1, 1,
                           limited, passing=(401,))
        # another client address is unaffected
        conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10, source_address=("127.0.0.2", 0))
        try:
            conn.request("GET", "/api/v1/customers", headers={"Authorization": "Bearer " + keys[3]})
            r = conn.getresponse()
            body = r.read()
            if OPENAPI_CHECK:
                contract.check(HOST_BIN, "GET", "/api/v1/customers", r.status, {k.lower(): v for k, v in r.getheaders()}, body)
            self.assertEqual(r.status, 200)
        finally:
            conn.close()

    # ================================================================ idempotency

    def test_idempotency_keys(self):
        h = self.host()
        other_admin = h.make_key("platform-admin")
        body = {"legal_name": "Idem " + secrets.token_hex(3), "tax_id": secrets.token_hex(6), "country": "CO"}
        key = "idem-" + secrets.token_hex(8)
        first = h.post("/api/v1/customers", body=body, headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 201, first)
        self.assertNotIn("idempotent-replayed", first.headers)
        again = h.post("/api/v1/customers", body=body, headers={"Idempotency-Key": key})
        self.assertEqual(again.status, 201, again)
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(again.json(), first.json())
        self.assertEqual(again.headers["location"], first.headers["location"])
        # the same body written otherwise is the same request
        raw = json.dumps({"country": "CO", "tax_id": body["tax_id"], "legal_name": body["legal_name"]}, indent=2).encode()
        r = h.post("/api/v1/customers", body=raw, headers={"Idempotency-Key": key, "Content-Type": "application/json"})
        self.assertEqual((r.status, r.headers.get("idempotent-replayed")), (201, "true"), r)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_customers WHERE tax_id = '{body['tax_id']}'", h.dbname), "1")
        # another body, or another route, under the same key
        self.assertProblem(h.post("/api/v1/customers", body=dict(body, legal_name="Other"), headers={"Idempotency-Key": key}), 422,
                           "idempotency-key-reused")
        self.assertProblem(h.post("/api/v1/api-keys", body={"name": "x", "roles": ["operator"]}, headers={"Idempotency-Key": key}),
                           422, "idempotency-key-reused")
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_api_keys WHERE name = 'x'", h.dbname), "0")
        # keys belong to their credential: another one may use the same key for its own request
        own = dict(body, tax_id=secrets.token_hex(6))
        r = h.post("/api/v1/customers", body=own, headers={"Idempotency-Key": key}, auth=other_admin)
        self.assertEqual(r.status, 201, r)
        self.assertNotIn("idempotent-replayed", r.headers)
        self.assertNotEqual(r.json()["id"], first.json()["id"])
        # malformed keys
        for bad in ("has space", "x" * 256, "tab\there", "é"):
            with self.subTest(key=bad):
                fresh = dict(body, tax_id=secrets.token_hex(6))
                r = h.post("/api/v1/customers", body=fresh, headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")})
                self.assertProblem(r, 400, "invalid-idempotency-key")
                self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_customers WHERE tax_id = '{fresh['tax_id']}'", h.dbname), "0")
        self.assertEqual(h.post("/api/v1/customers", body=dict(body, tax_id=secrets.token_hex(6)),
                                headers={"Idempotency-Key": "y" * 255}).status, 201)
        # a delete replays its 204; without the key it is a new request
        d = self.customer(h)
        dkey = "del-" + secrets.token_hex(6)
        self.assertEqual(h.request("DELETE", f"/api/v1/customers/{d['id']}", headers={"Idempotency-Key": dkey}).status, 204)
        r = h.request("DELETE", f"/api/v1/customers/{d['id']}", headers={"Idempotency-Key": dkey})
        self.assertEqual((r.status, r.headers.get("idempotent-replayed")), (204, "true"), r)
        self.assertEqual(h.request("DELETE", f"/api/v1/customers/{d['id']}").status, 404)
        # the seed-compatible provisioning endpoint replays too
        c = self.customer(h)
        pbody = {"customerId": c["id"], "productId": "vet", "settings": {"admin_email": "a@b.test"}}
        pkey = "prov-" + secrets.token_hex(6)
        p1 = h.post("/api/provisioning/provision", body=pbody, headers={"Idempotency-Key": pkey})
        p2 = h.post("/api/provisioning/provision", body=pbody, headers={"Idempotency-Key": pkey})
        self.assertEqual((p1.status, p2.status), (202, 202), (p1, p2))
        self.assertEqual(p2.json(), p1.json())
        self.assertEqual(p2.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_instances WHERE customer_id = '{c['id']}'", h.dbname), "1")
        # an expired key runs the request again (API keys: the replay never shows the key)
        kkey = "key-" + secrets.token_hex(6)
        kbody = {"name": "idem key", "roles": ["operator"]}
        k1 = h.post("/api/v1/api-keys", body=kbody, headers={"Idempotency-Key": kkey})
        self.assertEqual(k1.status, 201, k1)
        self.assertTrue(KEY_SHAPE.match(k1.json()["key"]))
        k2 = h.post("/api/v1/api-keys", body=kbody, headers={"Idempotency-Key": kkey})
        self.assertEqual((k2.status, k2.headers.get("idempotent-replayed"), k2.json()["id"]), (201, "true", k1.json()["id"]))
        self.assertNotIn("key", k2.json())
        self.assertNotIn(k1.json()["key"], self.stack.psql(f"SELECT response::text FROM ft_idempotency WHERE key = '{kkey}'", h.dbname))
        self.stack.psql(f"UPDATE ft_idempotency SET expires_at = now() - interval '1 second' WHERE key = '{kkey}'", h.dbname)
        k3 = h.post("/api/v1/api-keys", body=kbody, headers={"Idempotency-Key": kkey})
        self.assertEqual(k3.status, 201, k3)
        self.assertNotIn("idempotent-replayed", k3.headers)
        self.assertNotEqual(k3.json()["id"], k1.json()["id"])
        self.assertIn("key", k3.json())
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_api_keys WHERE name = 'idem key'", h.dbname), "2")
        # concurrent duplicates: one instance, the same answer for everyone
        ibody = {"code": "race-" + secrets.token_hex(3), "product": "vet", "plan": "essentials", "settings": {"admin_email": "a@b.test"}}
        ikey = "race-" + secrets.token_hex(6)
        answers = []
        barrier = threading.Barrier(4)

        def send():
            barrier.wait()
            answers.append(h.post(f"/api/v1/customers/{c['id']}/instances", body=ibody, headers={"Idempotency-Key": ikey}))
        ts = [threading.Thread(target=send) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual([a.status for a in answers], [202] * 4, answers)
        self.assertEqual(len({json.dumps(a.json(), sort_keys=True) for a in answers}), 1, answers)  # member order may differ
        self.assertEqual(sum(1 for a in answers if a.headers.get("idempotent-replayed") == "true"), 3)
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_instances WHERE code = '{ibody['code']}'", h.dbname), "1")

    # ================================================================ API keys

    def test_api_key_life(self):
        h = self.host()
        c = self.customer(h)
        other = self.customer(h)
        i = self.instance(h, c["id"])
        oi = self.instance(h, other["id"])
        r = h.post("/api/v1/api-keys", body={"name": "billing", "roles": ["customer-viewer"], "customer_id": c["id"]})
        self.assertEqual(r.status, 201, r)
        made = r.json()
        key = made["key"]
        self.assertTrue(KEY_SHAPE.match(key), key)
        self.assertEqual(r.headers["location"], f"/api/v1/api-keys/{made['id']}")
        self.assertEqual((made["customer_id"], made["roles"], made["prefix"]), (c["id"], ["customer-viewer"], key[:16]))
        # shown once: never in a read, a listing, the database or the audit log
        got = h.get(f"/api/v1/api-keys/{made['id']}")
        self.assertEqual(got.status, 200)
        self.assertNotIn("key", got.json())
        secret = key[17:]
        for resp in (got, h.get("/api/v1/api-keys?limit=200"), h.get("/api/v1/audit?limit=200")):
            self.assertNotIn(secret, resp.body.decode())
        dump = self.stack.psql(f"SELECT row_to_json(k)::text FROM ft_api_keys k WHERE id = '{made['id']}'", h.dbname)
        self.assertNotIn(secret, dump)
        self.assertNotIn(secret, self.stack.psql("SELECT coalesce(string_agg(details::text, ''), '') FROM ft_audit", h.dbname))
        # the key works, for its customer only
        self.assertEqual(self.subject(h, key), f"key:{made['id']}")
        items = h.get("/api/v1/customers", auth=key).json()["items"]
        self.assertEqual([x["id"] for x in items], [c["id"]])
        self.assertEqual([x["id"] for x in h.get("/api/v1/instances", auth=key).json()["items"]], [i["id"]])
        self.assertEqual(h.get(f"/api/v1/instances/{oi['id']}", auth=key).status, 404)
        self.assertEqual(h.get(f"/api/v1/customers/{other['id']}", auth=key).status, 404)
        self.assertForbidden(h.request("PATCH", f"/api/v1/customers/{c['id']}", body={"legal_name": "X"}, auth=key),
                             "customers:update")
        # revoked: refused at once, here and on another host that had it cached
        h2 = self.host(dbname=h.dbname)
        self.assertEqual(h2.get("/api/v1/auth/me", auth=key).status, 200)
        r = h.request("DELETE", f"/api/v1/api-keys/{made['id']}")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["revoked_at"])
        self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=key))
        self.assertUnauthenticated(h.get("/api/v1/auth/me", headers={"X-API-Key": key}, auth=None))
        wait_until(lambda: h2.get("/api/v1/auth/me", auth=key).status == 401, 30, interval=0.05,
                   what="the other host to refuse the revoked key")
        # expiry
        past = h.post("/api/v1/api-keys", body={"name": "old", "roles": ["operator"], "expires_at": "2020-01-01T00:00:00Z"})
        self.assertEqual(past.status, 201, past)
        self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=past.json()["key"]))
        # (whole seconds: 5 to 6 s from now, time enough to use it first on a busy machine)
        soon = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        brief = h.post("/api/v1/api-keys", body={"name": "brief", "roles": ["operator"], "expires_at": soon}).json()["key"]
        self.assertEqual(h.get("/api/v1/auth/me", auth=brief).status, 200)
        wait_until(lambda: h.get("/api/v1/auth/me", auth=brief).status == 401, 60, interval=0.2, what="the key to expire")
        # scope rules
        misfits = [
            {"roles": ["operator"], "customer_id": c["id"]},
            {"roles": ["customer-admin"]},
            {"roles": ["child-app"]},
            {"roles": ["child-app", "customer-viewer"], "instance_id": i["id"]},
            {"roles": ["customer-viewer"], "instance_id": i["id"]},
            {"roles": ["platform-admin", "customer-admin"], "customer_id": c["id"]},
        ]
        for body in misfits:
            with self.subTest(body=body):
                self.assertProblem(h.post("/api/v1/api-keys", body={"name": "misfit", **body}), 422, "invalid-key-scope")
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_api_keys WHERE name = 'misfit'", h.dbname), "0")
        # a customer admin makes keys for its own customer only, and no staff keys
        admin_c = h.make_key("customer-admin", customer=c["id"])
        self.assertProblem(h.post("/api/v1/api-keys", body={"name": "up", "roles": ["platform-admin"]}, auth=admin_c), 403)
        self.assertProblem(h.post("/api/v1/api-keys", body={"name": "up", "roles": ["operator"]}, auth=admin_c), 403)
        child = self.api_key(h, ["child-app"], auth=admin_c, instance_id=i["id"])
        self.assertEqual((child["customer_id"], child["instance_id"]), (c["id"], i["id"]))
        r = h.post("/api/v1/api-keys", body={"name": "theirs", "roles": ["child-app"], "instance_id": oi["id"]}, auth=admin_c)
        self.assertIn(r.status, (403, 404, 422), r)
        self.assertNotIn(other["id"], r.body.decode())
        mine = h.get("/api/v1/api-keys?limit=200", auth=admin_c).json()["items"]
        self.assertTrue(mine)
        self.assertEqual({k["customer_id"] for k in mine}, {c["id"]})
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_api_keys WHERE customer_id = '{other['id']}'", h.dbname), "0")

    def test_api_key_lookups_are_counted_and_a_cached_key_is_not_read_again(self):
        h = self.host()
        c = self.customer(h)

        def lookups(reason, result):
            name = f'ft_api_key_lookups_total{{reason="{reason}",result="{result}"}}'
            lines = [l for l in h.get("/metrics").body.decode().splitlines() if l.startswith(name + " ")]
            return float(lines[0].split()[1]) if lines else 0.0
        made = self.api_key(h, ["customer-viewer"], customer_id=c["id"])
        key = made["key"]
        found, unknown = lookups("miss", "found"), lookups("miss", "unknown")
        for _ in range(5):
            self.assertEqual(h.get("/api/v1/auth/me", auth=key).status, 200)
        self.assertEqual(lookups("miss", "found"), found + 1)  # read once, then answered from memory
        stranger = "ftk_zzzzzzzzzzzz_" + "A" * 43
        for _ in range(3):
            self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=stranger))
        self.assertEqual(lookups("miss", "unknown"), unknown + 1)  # an unknown prefix is remembered too
        # a revoked key is refused from the first request after the revocation, and read again
        r = h.request("DELETE", f"/api/v1/api-keys/{made['id']}")
        self.assertEqual(r.status, 200, r)
        self.assertUnauthenticated(h.get("/api/v1/auth/me", auth=key))
        self.assertEqual(lookups("miss", "found"), found + 2)

    def test_a_key_in_use_is_read_again_before_its_minute_ends(self):
        h = self.host()
        c = self.customer(h)
        made = self.api_key(h, ["customer-viewer"], customer_id=c["id"])
        key = made["key"]

        def lookups(reason):
            name = f'ft_api_key_lookups_total{{reason="{reason}",result="found"}}'
            lines = [l for l in h.get("/metrics").body.decode().splitlines() if l.startswith(name + " ")]
            return float(lines[0].split()[1]) if lines else 0.0
        self.assertEqual(h.get("/api/v1/auth/me", auth=key).status, 200)
        misses = lookups("miss")
        # revoked with its NOTIFY lost (triggers off for this session): only a read of the row can tell
        self.stack.psql("SET session_replication_role = replica; "
                        f"UPDATE ft_api_keys SET revoked_at = now() WHERE id = '{made['id']}'", h.dbname)
        # the cached row answers until the refresh, 20 to 30 s after the first read, brings the revocation
        wait_until(lambda: h.get("/api/v1/auth/me", auth=key).status == 401, 75, interval=0.5,
                   what="the background refresh to bring the revocation")
        self.assertGreaterEqual(lookups("refresh"), 1)
        self.assertEqual(lookups("miss"), misses)  # no request waited for it

    def test_who_may_manage_users(self):
        h = self.host()
        c, other = self.customer(h), self.customer(h)
        cadmin = h.make_key("customer-admin", customer=c["id"])
        for who, cred in (("operator", h.make_key("operator")), ("customer-viewer", h.make_key("customer-viewer", customer=c["id"])),
                          ("product-manager", h.make_key("product-manager"))):
            with self.subTest(who):
                r = h.post("/api/v1/users", body={"email": f"{who}@x.test", "password": PASSWORD, "roles": ["customer-viewer"],
                                                  "customer_id": c["id"]}, auth=cred)
                self.assertForbidden(r, "users:write")
        # a customer admin grants customer roles, in its own customer only
        for roles in (["platform-admin"], ["operator"], ["customer-admin", "operator"]):
            r = h.post("/api/v1/users", body={"email": "up@x.test", "password": PASSWORD, "roles": roles}, auth=cadmin)
            self.assertProblem(r, 403, "role-not-grantable")
        mate = self.user(h, ["customer-viewer"], auth=cadmin)
        self.assertEqual(mate["customer_id"], c["id"])
        r = h.post("/api/v1/users", body={"email": "elsewhere@x.test", "password": PASSWORD, "roles": ["customer-viewer"],
                                          "customer_id": other["id"]}, auth=cadmin)
        self.assertProblem(r, 403, "outside-your-customer")
        self.assertEqual(self.stack.psql(f"SELECT count(*) FROM ft_users WHERE customer_id = '{other['id']}'", h.dbname), "0")
        self.assertProblem(h.request("PATCH", f"/api/v1/users/{mate['id']}", body={"roles": ["platform-admin"]}, auth=cadmin), 403,
                           "role-not-grantable")
        staff = self.user(h, ["operator"])
        self.assertEqual(h.request("PATCH", f"/api/v1/users/{staff['id']}", body={"status": "disabled"}, auth=cadmin).status, 404)
        self.assertEqual(h.get(f"/api/v1/users/{staff['id']}", auth=cadmin).status, 404)
        self.assertEqual(h.request("DELETE", f"/api/v1/users/{staff['id']}", auth=cadmin).status, 404)
        self.assertEqual(self.stack.psql(f"SELECT status FROM ft_users WHERE id = '{staff['id']}'", h.dbname), "active")
        # roles must fit the user; passwords have 12 characters or more; no hash is ever shown
        self.assertProblem(h.post("/api/v1/users", body={"email": "s@x.test", "password": PASSWORD, "roles": ["customer-admin"]}),
                           422, "roles-do-not-fit")
        self.assertProblem(h.post("/api/v1/users", body={"email": "s@x.test", "password": PASSWORD, "roles": ["operator"],
                                                         "customer_id": c["id"]}), 422, "roles-do-not-fit")
        self.assertProblem(h.post("/api/v1/users", body={"email": "s@x.test", "password": "short", "roles": ["operator"]}), 400)
        self.assertProblem(h.post("/api/v1/users", body={"email": mate["email"].upper(), "password": PASSWORD,
                                                         "roles": ["operator"]}), 409)
        for r in (h.get(f"/api/v1/users/{mate['id']}"), h.get("/api/v1/users?limit=200")):
            self.assertNotIn("password_hash", r.body.decode())
            self.assertNotIn("$argon2", r.body.decode())
        # a customer admin signed in as a user: its own customer's users only, and not itself to delete
        boss = self.user(h, ["customer-admin"], customer_id=c["id"])
        jwt = self.token(h, boss["email"])["access_token"]
        listed = h.get("/api/v1/users?limit=200", auth=jwt).json()["items"]
        self.assertEqual({u["customer_id"] for u in listed}, {c["id"]})
        self.assertIn(mate["id"], [u["id"] for u in listed])
        self.assertEqual(h.get(f"/api/v1/users?customer_id={other['id']}", auth=jwt).json()["items"], [])
        self.assertProblem(h.request("DELETE", f"/api/v1/users/{boss['id']}", auth=jwt), 409, "cannot-delete-self")
        self.assertEqual(h.request("DELETE", f"/api/v1/users/{mate['id']}", auth=jwt).status, 204)

    # ================================================================ tenancy

    def build_tenants(self, h):
        """Tenant A with one of everything, tenant B with credentials of every customer kind."""
        tag = secrets.token_hex(3)
        a = self.customer(h, legal_name=f"Alpha Clinic {tag}", tax_id="A" + secrets.token_hex(6))
        b = self.customer(h, legal_name=f"Beta Clinic {tag}", tax_id="B" + secrets.token_hex(6))
        a1 = self.instance(h, a["id"], code="alpha-" + tag)
        b1 = self.instance(h, b["id"], code="beta-" + tag)
        for i in (a1, b1):
            r = h.request("PUT", f"/api/v1/instances/{i['id']}/overrides/telemedicine", body={"enabled": i is b1, "reason": "tenancy"})
            self.assertEqual(r.status, 200, r)
        a2, dlq = self.dlq_entry(h, a["id"])
        a_user = self.user(h, ["customer-admin"], customer_id=a["id"], email=f"alpha-{tag}@alpha.test")
        a_key = self.api_key(h, ["customer-admin"], customer_id=a["id"])
        a_child = self.api_key(h, ["child-app"], instance_id=a1["id"])
        b_user = self.user(h, ["customer-admin"], customer_id=b["id"], email=f"beta-{tag}@beta.test")
        creds = {
            "customer-admin key": self.api_key(h, ["customer-admin"], customer_id=b["id"])["key"],
            "customer-admin user": self.token(h, b_user["email"])["access_token"],
            "customer-viewer key": self.api_key(h, ["customer-viewer"], customer_id=b["id"])["key"],
            "child-app key": self.api_key(h, ["child-app"], instance_id=b1["id"])["key"],
        }
        roles = {"customer-admin key": "customer-admin", "customer-admin user": "customer-admin",
                 "customer-viewer key": "customer-viewer", "child-app key": "child-app"}
        for i in (a1, b1):
            self.wait_instance(h, i["id"], ["active"])
        a_ids = {"customer": a["id"], "instance": a1["id"], "instance2": a2["id"], "job": a1["latest_job"]["id"],
                 "job2": a2["latest_job"]["id"], "dlq": dlq["id"], "user": a_user["id"], "key": a_key["id"],
                 "child key": a_child["id"], "subscription": a1["subscription"]["id"]}
        secrets_of_a = set(a_ids.values()) | {a["legal_name"], a["tax_id"], a1["code"], a2["code"], a_user["email"], a_key["prefix"],
                                              a_child["prefix"], a_key["key"], a_child["key"]}
        return dict(a=a, b=b, a1=a1, b1=b1, a2=a2, a_ids=a_ids, secrets=secrets_of_a, creds=creds, roles=roles, b_user=b_user,
                    kid=h.get("/api/v1/auth/signing-keys").json()["keys"][0]["kid"])

    def snapshot(self, h, customer_id):
        sql = f"""SELECT json_build_object(
            'customer', (SELECT json_agg(c) FROM ft_customers c WHERE id = '{customer_id}'),
            'instances', (SELECT json_agg(i ORDER BY id) FROM ft_instances i WHERE customer_id = '{customer_id}'),
            'subscriptions', (SELECT json_agg(s ORDER BY id) FROM ft_subscriptions s WHERE customer_id = '{customer_id}'),
            'overrides', (SELECT json_agg(o ORDER BY id) FROM ft_feature_overrides o WHERE subscription_id IN
                          (SELECT id FROM ft_subscriptions WHERE customer_id = '{customer_id}')),
            'jobs', (SELECT json_agg(j ORDER BY id) FROM ft_jobs j WHERE instance_id IN
                     (SELECT id FROM ft_instances WHERE customer_id = '{customer_id}')),
            'dlq', (SELECT json_agg(d ORDER BY id) FROM ft_dlq d WHERE instance_id IN
                    (SELECT id FROM ft_instances WHERE customer_id = '{customer_id}')),
            'users', (SELECT json_agg(u ORDER BY id) FROM ft_users u WHERE customer_id = '{customer_id}'),
            'keys', (SELECT json_agg(k ORDER BY id) FROM ft_api_keys k WHERE customer_id = '{customer_id}'),
            'outbox', (SELECT count(*) FROM ft_outbox WHERE aggregate_id IN
                       (SELECT id::text FROM ft_instances WHERE customer_id = '{customer_id}') OR aggregate_id = '{customer_id}'))"""
        return json.loads(self.stack.psql(sql, h.dbname))

    def fill(self, route, ids, kid):
        """Paths for a route with tenant A's ids in it: [(path, [A ids used])]. Fails on a parameter it
        cannot fill, so a new kind of route makes this test grow with it."""
        by_segment = {"customers": ["customer"], "instances": ["instance", "instance2"], "jobs": ["job", "job2"], "dlq": ["dlq"],
                      "users": ["user"], "api-keys": ["key", "child key"], "provisioning": ["instance"]}
        names = {"feature": "telemedicine", "name": "patient-count", "code": "vet", "plan": "professional", "product": "vet", "kid": kid}
        paths = [("", [])]
        segments = route.pattern.split("/")[1:]
        for n, seg in enumerate(segments):
            m = re.fullmatch(r"\{(\w+)\}", seg)
            if not m:
                paths = [(p + "/" + seg, used) for p, used in paths]
                continue
            name, before = m.group(1), segments[n - 1] if n else ""
            if name in names:
                choices = [(names[name], None)]
            elif before in by_segment:
                choices = [(ids[k], ids[k]) for k in by_segment[before]]
            elif name == "id" or name.lower().endswith("id"):
                choices = [(v, v) for v in ids.values()]  # a resource this test does not know: every id of A
            else:
                self.fail(f"{route}: no value for {{{name}}}; teach SecurityCase.fill about it")
            paths = [(p + "/" + v, used + ([a] if a else [])) for p, used in paths for v, a in choices]
        return paths

    def body_for(self, route, a, b):
        """A valid body for a write route, naming tenant A wherever the body names a tenant."""
        tag = secrets.token_hex(4)
        bodies = {
            ("POST", "/api/v1/customers"): {"legal_name": "Probe " + tag, "tax_id": "P" + tag, "country": "CO"},
            ("PATCH", "/api/v1/customers/{id}"): {"legal_name": "Hijacked " + tag},
            ("POST", "/api/v1/customers/{id}/instances"): {"code": "probe-" + tag, "product": "vet", "plan": "essentials",
                                                           "settings": {"admin_email": "probe@beta.test"}},
            ("POST", "/api/v1/instances/{id}/subscription/plan"): {"plan": "enterprise", "when": "now"},
            ("POST", "/api/v1/instances/{id}/subscription/cancel"): {"at_period_end": False},
            ("POST", "/api/v1/instances/{id}/subscription/trial"): {"ends_at": "2099-01-01T00:00:00Z"},
            ("PUT", "/api/v1/instances/{id}/overrides/{feature}"): {"enabled": True, "reason": "probe"},
            ("POST", "/api/v1/users"): {"email": f"probe-{tag}@beta.test", "password": PASSWORD, "customer_id": a["id"],
                                        "roles": ["customer-viewer"]},
            ("PATCH", "/api/v1/users/{id}"): {"display_name": "hijacked", "status": "disabled"},
            ("POST", "/api/v1/api-keys"): {"name": "probe " + tag, "roles": ["customer-viewer"], "customer_id": a["id"]},
            ("POST", "/api/provisioning/provision"): {"customerId": a["id"], "productId": "vet",
                                                      "settings": {"admin_email": "probe@beta.test"}},
            ("PUT", "/api/provisioning/{tenantInstanceId}/features"): {"customFeatures": {"telemedicine": False}},
            ("POST", "/api/v1/instances/{id}/actions/{name}"): {},
        }
        if (route.method, route.pattern) in bodies:
            return bodies[(route.method, route.pattern)], True
        if "FT_ROUTE_JSON_BODY" in route.flags:
            return {}, False  # a route this test does not know yet: an empty object
        return None, True

    def assertOnlyTenant(self, doc, b_id, what):
        """Every customer_id in the document is B's."""
        if isinstance(doc, dict):
            for k, v in doc.items():
                if k == "customer_id" and v is not None:
                    self.assertEqual(v, b_id, what)
                self.assertOnlyTenant(v, b_id, what)
        elif isinstance(doc, list):
            for v in doc:
                self.assertOnlyTenant(v, b_id, what)

    def test_cross_tenant_probes_over_every_api_route(self):
        h = self.host()
        self.assertGreaterEqual(len(self.routes), 40, self.routes)
        for must in ("GET /api/v1/customers/{id}", "DELETE /api/v1/instances/{id}", "GET /api/v1/audit", "POST /api/v1/users"):
            self.assertIn(must, [repr(r) for r in self.routes])
        self.assertEqual(self.roles["child-app"], {"entitlements:read", "self:read", "actions:run", "jobs:read"})
        for role in CUSTOMER_ROLES:
            self.assertFalse(self.roles[role] & STAFF_ONLY, role)
        t = self.build_tenants(h)
        a, b, secrets_of_a = t["a"], t["b"], t["secrets"]
        # wait for every job of A to settle, then remember A as it is
        wait_until(lambda: self.stack.psql(
            f"SELECT count(*) FROM ft_jobs WHERE status NOT IN ('succeeded', 'failed') AND instance_id IN "
            f"(SELECT id FROM ft_instances WHERE customer_id = '{a['id']}')", h.dbname) == "0", 60, what="A's jobs to settle")
        before = self.snapshot(h, a["id"])
        checked = 0
        # routes that name A in their path first, the listings last (they must show none of the probes' traces)
        routes = sorted(self.routes, key=lambda r: (not r.params, r.pattern, r.method))
        for route in routes:
            for who, cred in t["creds"].items():
                role = t["roles"][who]
                granted = "*" in self.roles[role] or route.permission in self.roles[role]
                for path, used in self.fill(route, t["a_ids"], t["kid"]):
                    body, known_body = self.body_for(route, a, b)
                    msg = f"{who}: {route.method} {path}"
                    with self.subTest(msg):
                        checked += 1
                        r = h.request(route.method, path, body=body, auth=cred)
                        sent = path + json.dumps(body or {})
                        text = r.body.decode(errors="replace") + r.headers.get("location", "")
                        leaked = [s for s in secrets_of_a if s not in sent and s in text]
                        self.assertEqual(leaked, [], f"{msg} answered {r.status} with A's data: {text[:400]}")
                        if not granted:
                            self.assertForbidden(r, route.permission, msg)
                            continue
                        if used:
                            # A's resource: as if it did not exist (the same answer as for an id nobody has)
                            if route.method == "GET" and r.status == 200:
                                # a listing under A's id: empty, as for an id nobody has (checked below)
                                self.assertEqual(r.json().get("items"), [], f"{msg}: {r}")
                            else:
                                self.assertIn(r.status, (403, 404) if known_body else (400, 403, 404, 422), f"{msg}: {r}")
                            probe = path
                            for v in used:
                                probe = probe.replace(v, str(uuid.uuid4()))
                            r2 = h.request(route.method, probe, body=body, auth=cred)
                            self.assertEqual((r.status, r.json().get("type") if r.body else None,
                                              r.json().get("items") if r.body else None),
                                             (r2.status, r2.json().get("type") if r2.body else None,
                                              r2.json().get("items") if r2.body else None),
                                             f"{msg}: A's id and an unknown id answer differently: {r} vs {r2}")
                        elif route.method == "GET":
                            self.assertEqual(r.status, 200, f"{msg}: {r}")
                            self.assertOnlyTenant(r.json(), b["id"], msg)
                        elif r.status in (200, 201, 202):
                            # a collection write naming A in its body may only act within B
                            self.assertOnlyTenant(r.json(), b["id"], msg)
                            self.assertEqual(r.json().get("customer_id"), b["id"], f"{msg}: {r}")
                        else:
                            self.assertIn(r.status, (403, 404, 422), f"{msg}: {r}")
        self.assertGreater(checked, 150)

        # the listings of B show B, and the filters cannot reach A
        admin_b = t["creds"]["customer-admin key"]
        self.assertEqual([c["id"] for c in h.get("/api/v1/customers", auth=admin_b).json()["items"]], [b["id"]])
        self.assertEqual([i["id"] for i in h.get("/api/v1/instances", auth=admin_b).json()["items"]], [t["b1"]["id"]])
        users = h.get("/api/v1/users?limit=200", auth=admin_b).json()["items"]
        self.assertIn(t["b_user"]["id"], [u["id"] for u in users])
        self.assertTrue(h.get("/api/v1/api-keys?limit=200", auth=admin_b).json()["items"])
        audit = h.get("/api/v1/audit?limit=200", auth=admin_b).json()["items"]
        self.assertTrue(audit)
        for listing in ("/api/v1/audit?limit=200", "/api/v1/users?limit=200", "/api/v1/api-keys?limit=200", "/api/v1/instances",
                        "/api/v1/customers"):
            for cred in (admin_b, t["creds"]["customer-admin user"]):
                r = h.get(listing, auth=cred)
                self.assertEqual(r.status, 200, (listing, r))
                self.assertOnlyTenant(r.json(), b["id"], listing)
                self.assertEqual([s for s in secrets_of_a if s in r.body.decode()], [], listing)
        ovr = h.get("/api/v1/products/vet/features/telemedicine/overrides", auth=admin_b).json()["overrides"]
        self.assertEqual([o["instance"]["id"] for o in ovr], [t["b1"]["id"]])
        # the listings' own filters, pointed at A: nothing
        a1_id = t["a1"]["id"]
        filters = {
            "/api/v1/audit": [f"customer_id={a['id']}", f"instance_id={a1_id}", f"entity_id={a1_id}", f"entity_id={a['id']}",
                              "action=customer", "result=denied"],
            "/api/v1/users": [f"customer_id={a['id']}", f"customer_id={a['id']}&limit=1"],
            "/api/v1/api-keys": [f"customer_id={a['id']}", f"customer_id={a['id']}&include_revoked=true"],
            "/api/v1/instances": [f"customer_id={a['id']}", f"code={t['a1']['code']}"],
            "/api/v1/customers": [f"tax_id={a['tax_id']}", "q=" + urllib.parse.quote(a["legal_name"])],
        }
        for listing, queries in filters.items():
            for q in queries:
                with self.subTest(f"{listing}?{q}"):
                    r = h.get(f"{listing}?{q}", auth=admin_b)
                    self.assertIn(r.status, (200, 400, 403, 404), r)
                    if r.status == 200:
                        self.assertOnlyTenant(r.json(), b["id"], q)
                        if not q.startswith(("action=", "result=")):
                            self.assertEqual(r.json()["items"], [], r)
                    self.assertEqual([s for s in secrets_of_a if s in r.body.decode() and s not in urllib.parse.unquote(q)], [])
                    # the same filter works for A's platform admin: the empty answers above are the scope, not the filter
                    if "customer_id" in q or "tax_id" in q:
                        self.assertNotEqual(h.get(f"{listing}?{q}").json()["items"], [], q)
        # a key for one of A's instances cannot be made from B
        r = h.post("/api/v1/api-keys", body={"name": "x", "roles": ["child-app"], "instance_id": t["a1"]["id"]}, auth=admin_b)
        self.assertIn(r.status, (403, 404, 422), r)
        # nothing of A changed, nothing was half-written
        self.assertEqual(self.snapshot(h, a["id"]), before)
        # A's own credentials still see A
        a_viewer = h.make_key("customer-viewer", customer=a["id"])
        self.assertEqual(h.get(f"/api/v1/customers/{a['id']}", auth=a_viewer).json()["legal_name"], a["legal_name"])

    def test_child_app_key_reaches_only_its_instance(self):
        h = self.host()
        a, b = self.customer(h), self.customer(h)
        a1, b1 = self.instance(h, a["id"]), self.instance(h, b["id"])
        r = h.request("PUT", f"/api/v1/instances/{a1['id']}/overrides/telemedicine", body={"enabled": False, "reason": "A only"})
        self.assertEqual(r.status, 200, r)
        a_child = self.api_key(h, ["child-app"], instance_id=a1["id"])["key"]
        b_child = self.api_key(h, ["child-app"], instance_id=b1["id"])["key"]
        me = h.get("/api/v1/auth/me", auth=b_child).json()
        self.assertEqual((me["roles"], me["customer_id"], me["instance_id"]), (["child-app"], b["id"], b1["id"]))
        self.assertEqual(h.get(f"/api/v1/instances/{b1['id']}/entitlements", auth=b_child).status, 200)
        r = h.get(f"/api/v1/instances/{a1['id']}/entitlements", auth=b_child)
        self.assertIn(r.status, (403, 404), r)
        self.assertNotIn(a["id"], r.body.decode())
        self.assertForbidden(h.get(f"/api/v1/instances/{b1['id']}", auth=b_child), "instances:read")
        # OFREP evaluates the key's instance, whatever the context names
        for ctx in ({"targetingKey": a1["id"]}, {"targetingKey": "user-7", "instance_id": a1["id"]}, {"targetingKey": b1["id"]}):
            with self.subTest(context=ctx):
                r = h.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": ctx}, auth=b_child)
                self.assertEqual((r.status, r.json().get("value")), (200, True), r)
                r = h.post("/ofrep/v1/evaluate/flags/telemedicine", body={"context": ctx}, auth=a_child)
                self.assertEqual((r.status, r.json().get("value")), (200, False), r)  # A's override: the key decides
                bulk = h.post("/ofrep/v1/evaluate/flags", body={"context": ctx}, auth=b_child)
                self.assertEqual(bulk.status, 200, bulk)
                flags = {f["key"]: f["value"] for f in bulk.json()["flags"]}
                self.assertTrue(flags["telemedicine"])

    def test_ofrep_targeting_key_reaches_only_what_the_credential_may_see(self):
        # credentials not bound to an instance name it in context.targetingKey, within their scope
        h = self.host()
        a, b = self.customer(h), self.customer(h)
        a1 = self.instance(h, a["id"])
        for who, cred, allowed in (("platform-admin key", h.admin_key, True), ("operator key", h.make_key("operator"), True),
                                   ("customer-admin key of A", h.make_key("customer-admin", customer=a["id"]), True),
                                   ("customer-admin key of B", h.make_key("customer-admin", customer=b["id"]), False),
                                   ("customer-viewer key of B", h.make_key("customer-viewer", customer=b["id"]), False)):
            with self.subTest(who):
                for path in ("/ofrep/v1/evaluate/flags/telemedicine", "/ofrep/v1/evaluate/flags"):
                    r = h.post(path, body={"context": {"targetingKey": a1["id"]}}, auth=cred)
                    if allowed:
                        self.assertEqual(r.status, 200, f"{who}: {r}")
                    else:
                        self.assertEqual(r.status, 400, f"{who}: {r}")
                        self.assertEqual(r.json()["errorCode"], "INVALID_CONTEXT")
                        self.assertNotIn('"value"', r.body.decode())
                        self.assertNotIn('"flags"', r.body.decode())

    # ================================================================ the audit log

    def test_every_write_route_is_audited(self):
        h = self.host()
        admin_subject = self.subject(h, h.admin_key)
        calls = []

        def write(method, pattern, path, body=None, status=200, **expect):
            rid = "sec-" + secrets.token_hex(8)
            r = h.request(method, path, body=body, headers={"X-Request-Id": rid})
            self.assertEqual(r.status, status, f"{method} {path}: {r}")
            self.assertEqual(r.headers["x-request-id"], rid)
            calls.append((method, pattern, rid, expect))
            return r

        # the DLQ entries first (their instances fail on their own)
        c = self.customer(h)
        f1, d1 = self.dlq_entry(h, c["id"])
        f2, d2 = self.dlq_entry(h, c["id"])
        cid = c["id"]
        n = write("POST", "/api/v1/customers", "/api/v1/customers",
                  {"legal_name": "Audited", "tax_id": secrets.token_hex(6), "country": "CO"}, 201).json()
        calls[-1][3].update(entity_type="customer", entity_id=n["id"], customer_id=n["id"])
        write("PATCH", "/api/v1/customers/{id}", f"/api/v1/customers/{cid}", {"legal_name": "Audited Too"},
              entity_type="customer", entity_id=cid, customer_id=cid)
        i = write("POST", "/api/v1/customers/{id}/instances", f"/api/v1/customers/{cid}/instances",
                  {"code": "aud-" + secrets.token_hex(3), "product": "vet", "plan": "professional",
                   "settings": {"admin_email": "a@b.test"}}, 202).json()
        calls[-1][3].update(entity_type="instance", entity_id=i["id"], customer_id=cid, instance_id=i["id"])
        tr = self.instance(h, cid, trial=True)
        sub = dict(entity_type="subscription", customer_id=cid)
        write("POST", "/api/v1/instances/{id}/subscription/trial", f"/api/v1/instances/{tr['id']}/subscription/trial",
              {"ends_at": "2099-01-01T00:00:00Z"}, entity_id=tr["id"], instance_id=tr["id"], **sub)
        base = f"/api/v1/instances/{i['id']}"
        write("POST", "/api/v1/instances/{id}/subscription/plan", base + "/subscription/plan", {"plan": "enterprise"},
              entity_id=i["id"], instance_id=i["id"], **sub)
        write("POST", "/api/v1/instances/{id}/subscription/suspend", base + "/subscription/suspend",
              entity_id=i["id"], instance_id=i["id"], **sub)
        write("POST", "/api/v1/instances/{id}/subscription/resume", base + "/subscription/resume",
              entity_id=i["id"], instance_id=i["id"], **sub)
        write("PUT", "/api/v1/instances/{id}/overrides/{feature}", base + "/overrides/telemedicine", {"enabled": False},
              entity_type="override", instance_id=i["id"], customer_id=cid)
        write("DELETE", "/api/v1/instances/{id}/overrides/{feature}", base + "/overrides/telemedicine",
              entity_type="override", instance_id=i["id"], customer_id=cid)
        write("POST", "/api/v1/instances/{id}/subscription/cancel", base + "/subscription/cancel", {"at_period_end": True},
              entity_id=i["id"], instance_id=i["id"], **sub)
        self.wait_instance(h, i["id"], ["active"])
        write("POST", "/api/v1/instances/{id}/actions/{name}", base + "/actions/patient-count",
              entity_type="instance", entity_id=i["id"], customer_id=cid, instance_id=i["id"])
        write("DELETE", "/api/v1/instances/{id}", base, status=202, entity_type="instance", entity_id=i["id"], customer_id=cid,
              instance_id=i["id"])
        p = write("POST", "/api/provisioning/provision", "/api/provisioning/provision",
                  {"customerId": cid, "productId": "vet", "settings": {"admin_email": "a@b.test"}}, 202).json()
        pid = p["tenantInstanceId"]
        calls[-1][3].update(entity_type="instance", entity_id=pid, customer_id=cid, instance_id=pid)
        write("PUT", "/api/provisioning/{tenantInstanceId}/features", f"/api/provisioning/{pid}/features",
              {"customFeatures": {"telemedicine": False}}, entity_type="override", instance_id=pid, customer_id=cid)
        self.wait_instance(h, pid, ["active"])  # an instance being provisioned cannot be removed yet
        write("DELETE", "/api/provisioning/{tenantInstanceId}", f"/api/provisioning/{pid}", status=202,
              entity_type="instance", entity_id=pid, customer_id=cid, instance_id=pid)
        u = write("POST", "/api/v1/users", "/api/v1/users", {"email": f"aud-{secrets.token_hex(3)}@c.test", "password": PASSWORD,
                                                             "customer_id": cid, "roles": ["customer-viewer"]}, 201).json()
        calls[-1][3].update(entity_type="user", entity_id=u["id"], customer_id=cid)
        write("PATCH", "/api/v1/users/{id}", f"/api/v1/users/{u['id']}", {"display_name": "Vera"},
              entity_type="user", entity_id=u["id"], customer_id=cid)
        write("DELETE", "/api/v1/users/{id}", f"/api/v1/users/{u['id']}", status=204,
              entity_type="user", entity_id=u["id"], customer_id=cid)
        k = write("POST", "/api/v1/api-keys", "/api/v1/api-keys", {"name": "aud", "roles": ["customer-viewer"], "customer_id": cid},
                  201).json()
        calls[-1][3].update(entity_type="api_key", entity_id=k["id"], customer_id=cid)
        write("DELETE", "/api/v1/api-keys/{id}", f"/api/v1/api-keys/{k['id']}", entity_type="api_key", entity_id=k["id"],
              customer_id=cid)
        write("POST", "/api/v1/dlq/{id}/replay", f"/api/v1/dlq/{d1['id']}/replay", status=202,
              entity_type="dlq", entity_id=d1["id"], customer_id=cid, instance_id=f1["id"])
        write("DELETE", "/api/v1/dlq/{id}", f"/api/v1/dlq/{d2['id']}", status=204,
              entity_type="dlq", entity_id=d2["id"], customer_id=cid, instance_id=f2["id"])
        old_kid = h.get("/api/v1/auth/signing-keys").json()["keys"][0]["kid"]
        keys = write("POST", "/api/v1/auth/signing-keys", "/api/v1/auth/signing-keys").json()["keys"]
        new_kid = [x["kid"] for x in keys if x["signing"]][0]
        calls[-1][3].update(entity_type="signing_key", entity_id=new_kid, customer_id=None)
        write("DELETE", "/api/v1/auth/signing-keys/{kid}", f"/api/v1/auth/signing-keys/{old_kid}",
              entity_type="signing_key", entity_id=old_kid, customer_id=None)
        write("POST", "/api/v1/plugins/{product}/reload", "/api/v1/plugins/vet/reload", customer_id=None)
        write("POST", "/api/v1/plugins/reload", "/api/v1/plugins/reload", customer_id=None)
        pooled = dict(entity_type="tenant_database", customer_id=None)
        t = write("POST", "/api/v1/tenant-databases", "/api/v1/tenant-databases",
                  {"name": "aud-" + secrets.token_hex(3), "url": self.stack.url_for(self.stack.create_database()), "capacity": 3},
                  201).json()
        calls[-1][3].update(entity_id=t["id"], **pooled)
        write("PATCH", "/api/v1/tenant-databases/{id}", f"/api/v1/tenant-databases/{t['id']}", {"status": "closed"},
              entity_id=t["id"], **pooled)
        write("DELETE", "/api/v1/tenant-databases/{id}", f"/api/v1/tenant-databases/{t['id']}", status=204, entity_id=t["id"],
              **pooled)
        gone = self.customer(h)
        write("DELETE", "/api/v1/customers/{id}", f"/api/v1/customers/{gone['id']}", status=204,
              entity_type="customer", entity_id=gone["id"], customer_id=gone["id"])

        # every write route of the route tables was driven
        driven = {(m, pat) for m, pat, _, _ in calls}
        every = {(r.method, r.pattern) for r in self.routes if r.write}
        self.assertEqual(every - driven, set(), "write routes this test does not drive yet")
        self.assertEqual(driven - every, set())
        action_of = {(r.method, r.pattern): r.action for r in self.routes}

        rows = self.all_audit(h, "")
        by_rid = {}
        for row in rows:
            by_rid.setdefault(row["request_id"], []).append(row)
        for method, pattern, rid, expect in calls:
            with self.subTest(f"{method} {pattern}"):
                mine = by_rid.get(rid, [])
                self.assertEqual(len(mine), 1, f"{method} {pattern}: {mine}")
                row = mine[0]
                self.assertEqual((row["action"], row["result"], row["actor"], row["client_ip"]),
                                 (action_of[(method, pattern)], "success", admin_subject, "127.0.0.1"), row)
                self.assertIsNone(row["reason"], row)
                for field, value in expect.items():
                    self.assertEqual(row[field], value, f"{field} of {row}")

        # a denied write, failed writes
        viewer = h.make_key("customer-viewer", customer=cid)
        viewer_subject = self.subject(h, viewer)
        rid = "denied-" + secrets.token_hex(6)
        r = h.request("PATCH", f"/api/v1/customers/{cid}", body={"legal_name": "Nope"}, headers={"X-Request-Id": rid}, auth=viewer)
        self.assertForbidden(r, "customers:update")
        failures = {}
        for what, (method, path, body, status) in {
            "schema": ("POST", "/api/v1/customers", {"legal_name": 5, "tax_id": "x", "country": "CO"}, 400),
            "unknown plan": ("POST", f"/api/v1/customers/{cid}/instances",
                             {"code": "nope", "product": "vet", "plan": "platinum", "settings": {"admin_email": "a@b.test"}}, 422),
            "invalid settings": ("POST", f"/api/v1/customers/{cid}/instances",
                                 {"code": "nope", "product": "vet", "plan": "essentials", "settings": {}}, 422),
            "unknown feature": ("PUT", f"/api/v1/instances/{tr['id']}/overrides/teleportation", {"enabled": True}, 422),
            "unknown plan change": ("POST", f"/api/v1/instances/{tr['id']}/subscription/plan", {"plan": "gold"}, 422),
            "key scope": ("POST", "/api/v1/api-keys", {"name": "x", "roles": ["operator"], "customer_id": cid}, 422),
            "unknown product (seed API)": ("POST", "/api/provisioning/provision", {"customerId": cid, "productId": "nope"}, 422),
            "taken tax id": ("POST", "/api/v1/customers", {"legal_name": "Dup", "tax_id": c["tax_id"], "country": "CO"}, 409),
            "missing": ("DELETE", f"/api/v1/users/{uuid.uuid4()}", None, 404),
        }.items():
            frid = "fail-" + secrets.token_hex(6)
            self.assertEqual(h.request(method, path, body=body, headers={"X-Request-Id": frid}).status, status, what)
            failures[what] = frid
        # sign-in, good and bad
        email, uid = self.create_admin(h)
        lrid, brid = "login-" + secrets.token_hex(6), "badlogin-" + secrets.token_hex(6)
        self.assertEqual(self.login(h, email, headers={"X-Request-Id": lrid}).status, 200)
        self.assertEqual(self.login(h, email, "Tr0ub4dor&3-guess", headers={"X-Request-Id": brid}).status, 401)

        def one(rid):
            found = wait_until(lambda: [x for x in self.all_audit(h, "") if x["request_id"] == rid], 30, what=f"audit row {rid}")
            self.assertEqual(len(found), 1, found)
            return found[0]
        d = one(rid)
        self.assertEqual((d["action"], d["result"], d["actor"], d["customer_id"]), ("customer.update", "denied", viewer_subject, cid))
        self.assertIn("customers:update", d["reason"])
        for what, frid in failures.items():
            with self.subTest(failure=what):
                f = one(frid)
                self.assertEqual((f["result"], f["actor"]), ("failure", admin_subject), f)
                self.assertTrue(f["reason"], f)
        self.assertEqual(one(failures["unknown feature"])["customer_id"], cid)  # a failure belongs to its tenant too
        ok, bad = one(lrid), one(brid)
        self.assertEqual((ok["action"], ok["result"], ok["actor"], ok["entity_id"]), ("auth.login", "success", f"user:{uid}", uid))
        self.assertEqual((bad["action"], bad["result"]), ("auth.login", "failure"))
        self.assertNotIn("Tr0ub4dor", json.dumps(bad))  # the password tried is not recorded
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_audit WHERE details::text LIKE '%Tr0ub4dor%'"
                                         " OR reason LIKE '%Tr0ub4dor%'", h.dbname), "0")

        # filters
        def q(query):
            r = h.get("/api/v1/audit?" + query)
            self.assertEqual(r.status, 200, (query, r))
            return r.json()["items"]
        got = q("action=customer.create&limit=200")
        self.assertTrue(got)
        self.assertTrue(all(x["action"] == "customer.create" for x in got))
        got = q("action=subscription&limit=200")
        self.assertEqual(len({x["action"] for x in got}), 5, got)
        self.assertTrue(all(x["action"].startswith("subscription.") for x in got))
        got = q(f"entity_type=user&entity_id={u['id']}")
        self.assertEqual(sorted(x["action"] for x in got), ["user.create", "user.delete", "user.update"])
        got = q("result=denied&limit=200")
        self.assertIn(rid, [x["request_id"] for x in got])
        self.assertTrue(all(x["result"] == "denied" for x in got))
        got = q("result=failure&limit=200")
        self.assertTrue({failures[k] for k in ("schema", "taken tax id", "missing", "key scope")} <= {x["request_id"] for x in got},
                        got)
        self.assertTrue(all(x["result"] == "failure" for x in got))
        got = q("actor=" + urllib.parse.quote(viewer_subject))
        self.assertEqual([x["request_id"] for x in got], [rid])
        got = q(f"customer_id={cid}&limit=200")
        self.assertTrue(all(x["customer_id"] == cid for x in got))
        self.assertGreaterEqual(len(got), 15)
        got = q(f"instance_id={i['id']}&limit=200")
        self.assertTrue(all(x["instance_id"] == i["id"] for x in got))
        self.assertGreaterEqual(len(got), 8)
        every_row = self.all_audit(h, "")
        mid = every_row[len(every_row) // 2]
        at = datetime.datetime.fromisoformat(mid["at"]).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        since = self.all_audit(h, "since=" + at)
        until = self.all_audit(h, "until=" + at)
        self.assertIn(mid["id"], [x["id"] for x in since])
        self.assertNotIn(mid["id"], [x["id"] for x in until])
        self.assertEqual(len(since) + len(until), len(every_row))
        for bad in ("result=maybe", "customer_id=nope", "since=yesterday", "cursor=abc", "limit=0", "limit=201"):
            self.assertProblem(h.get("/api/v1/audit?" + bad), 400)
        # pagination: newest first, pages of two, no row twice, none lost
        paged, cursor, pages = [], None, 0
        while True:
            page = h.get(f"/api/v1/audit?customer_id={cid}&limit=2" + (f"&cursor={cursor}" if cursor else "")).json()
            self.assertLessEqual(len(page["items"]), 2)
            paged += page["items"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        whole = q(f"customer_id={cid}&limit=200")
        self.assertEqual([x["id"] for x in paged], [x["id"] for x in whole])
        self.assertGreater(pages, 5)
        ids = [int(x["id"]) for x in whole]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(set(ids)), len(ids))
        # a customer's credential sees its own rows only; a viewer none at all
        cadmin = h.make_key("customer-admin", customer=cid)
        mine = self.all_audit(h, "", auth=cadmin)
        self.assertTrue(mine)
        self.assertEqual({x["customer_id"] for x in mine}, {cid})
        self.assertEqual([x["id"] for x in mine], [x["id"] for x in self.all_audit(h, f"customer_id={cid}")])
        other = self.customer(h)
        r = h.get(f"/api/v1/audit?customer_id={other['id']}", auth=cadmin)
        self.assertTrue(r.status in (403, 404) or r.json()["items"] == [], r)
        self.assertForbidden(h.get("/api/v1/audit", auth=viewer), "audit:read")
        # append-only
        count = self.stack.psql("SELECT count(*) FROM ft_audit", h.dbname)
        for sql in ("UPDATE ft_audit SET result = 'success' WHERE result = 'denied'", "DELETE FROM ft_audit",
                    "UPDATE ft_audit SET actor = 'nobody'"):
            with self.assertRaises(RuntimeError) as e:
                self.stack.psql(sql, h.dbname)
            self.assertIn("append-only", str(e.exception))
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_audit", h.dbname), count)
        self.assertEqual(self.stack.psql("SELECT count(*) FROM ft_audit WHERE actor = 'nobody'", h.dbname), "0")

    def all_audit(self, h, query, auth="admin"):
        rows, cursor = [], None
        while True:
            r = h.get("/api/v1/audit?limit=200" + (f"&{query}" if query else "") + (f"&cursor={cursor}" if cursor else ""), auth=auth)
            self.assertEqual(r.status, 200, r)
            rows += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return rows


if __name__ == "__main__":
    main()
