-- Identity, credentials, audit and idempotency.

-- People who sign in: platform staff (customer_id NULL) and customer users.
CREATE TABLE ft_users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name text,
    password_hash text NOT NULL, -- argon2id, PHC string format
    customer_id uuid REFERENCES ft_customers (id),
    roles text[] NOT NULL CHECK (cardinality(roles) > 0),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- staff hold staff roles only, customer users customer roles only
    CONSTRAINT ft_users_roles_fit CHECK (
        (customer_id IS NULL AND roles <@ ARRAY['platform-admin', 'operator', 'product-manager'])
        OR (customer_id IS NOT NULL AND roles <@ ARRAY['customer-admin', 'customer-viewer']))
);
CREATE UNIQUE INDEX ft_users_email ON ft_users (lower(email));
CREATE INDEX ft_users_customer ON ft_users (customer_id, id);

-- Every sign-in attempt, known e-mail or not: lockout is computed from these rows, so an unknown
-- address locks exactly like a known one and the answer never tells which addresses exist.
CREATE TABLE ft_login_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    user_id uuid,
    success boolean NOT NULL,
    reason text,
    client_ip text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ft_login_attempts_email ON ft_login_attempts (lower(email), id DESC);

-- Rotating refresh tokens. Only a SHA-256 of the token is stored. A token is used once: using it
-- again (reuse of a rotated token) revokes its whole family.
CREATE TABLE ft_refresh_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    family_id uuid NOT NULL,
    parent_id uuid,
    user_id uuid NOT NULL REFERENCES ft_users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    issued_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    revoked_reason text,
    client_ip text
);
CREATE INDEX ft_refresh_tokens_family ON ft_refresh_tokens (family_id);
CREATE INDEX ft_refresh_tokens_user ON ft_refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- API keys for services and child apps: "ftk_<prefix>_<secret>"; the prefix finds the row, the
-- secret's SHA-256 proves it (the secret has 256 random bits, so a slow hash would add nothing).
CREATE TABLE ft_api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    name text NOT NULL,
    customer_id uuid REFERENCES ft_customers (id),
    instance_id uuid REFERENCES ft_instances (id),
    roles text[] NOT NULL CHECK (cardinality(roles) > 0),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    CONSTRAINT ft_api_keys_scope CHECK (
        (customer_id IS NULL AND instance_id IS NULL AND roles <@ ARRAY['platform-admin', 'operator', 'product-manager'])
        OR (customer_id IS NOT NULL AND instance_id IS NULL AND roles <@ ARRAY['customer-admin', 'customer-viewer'])
        OR (customer_id IS NOT NULL AND instance_id IS NOT NULL AND roles = ARRAY['child-app']))
);
CREATE INDEX ft_api_keys_customer ON ft_api_keys (customer_id, created_at);

-- Hosts cache credentials; a change to a key tells them to drop it.
CREATE FUNCTION ft_api_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ft_credentials', 'key:' || coalesce(NEW.prefix, OLD.prefix));
    RETURN NULL;
END
$$;
CREATE TRIGGER ft_api_keys_changed AFTER UPDATE OR DELETE ON ft_api_keys
    FOR EACH ROW EXECUTE FUNCTION ft_api_keys_changed();

-- JWT signing keys. The newest active key signs; every key not retired verifies. Kept in the
-- control-plane database (as Keycloak keeps realm keys) so that every host signs and verifies
-- with the same set and a rotation reaches all of them through NOTIFY.
CREATE TABLE ft_signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL,
    private_pem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    retired_at timestamptz
);
CREATE FUNCTION ft_signing_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ft_signing_keys', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER ft_signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON ft_signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ft_signing_keys_changed();

-- The audit log: append-only. customer_id is the tenant the row belongs to (NULL: platform);
-- no foreign keys, so the record outlives what it describes.
CREATE TABLE ft_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor text NOT NULL,
    action text NOT NULL,
    entity_type text,
    entity_id text,
    customer_id uuid,
    instance_id uuid,
    result text NOT NULL CHECK (result IN ('success', 'failure', 'denied')),
    reason text,
    request_id text,
    client_ip text,
    details jsonb
);
CREATE INDEX ft_audit_customer ON ft_audit (customer_id, id);
CREATE INDEX ft_audit_entity ON ft_audit (entity_type, entity_id, id);
CREATE INDEX ft_audit_actor ON ft_audit (actor, id);
CREATE INDEX ft_audit_at ON ft_audit (at);

CREATE FUNCTION ft_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ft_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER ft_audit_append_only BEFORE UPDATE OR DELETE ON ft_audit
    FOR EACH ROW EXECUTE FUNCTION ft_audit_append_only();

-- Idempotency keys: one row per (credential, key), holding the request's fingerprint and, once
-- the change committed, its response. Written in the change's own transaction.
CREATE TABLE ft_idempotency (
    owner text NOT NULL,
    key text NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    request_hash text NOT NULL,
    status integer,
    response jsonb,
    location text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX ft_idempotency_expiry ON ft_idempotency (expires_at);
