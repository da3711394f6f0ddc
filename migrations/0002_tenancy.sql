-- Who bought what: customers (the legal, paying entity), their tenant instances, one
-- subscription per instance, and per-subscription feature overrides. Every change that can
-- alter an instance's entitlements bumps ft_instances.entitlements_version and notifies
-- channel ft_entitlements with the instance id, in the same transaction (so the
-- notification is delivered only if the change commits). Hosts drop their cached record then.

CREATE TABLE ft_customers (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    legal_name text NOT NULL,
    tax_id text NOT NULL,
    country text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    contact_name text,
    contact_email text,
    contact_phone text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ft_customers_tax_id_unique UNIQUE (country, tax_id)
);
CREATE INDEX ft_customers_created ON ft_customers (created_at, id);

CREATE TABLE ft_instances (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL REFERENCES ft_customers (id),
    code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9-]{0,39}$'),
    product_code text NOT NULL REFERENCES ft_products (code),
    tier text NOT NULL CHECK (tier IN ('standard', 'enterprise')),
    environment text NOT NULL CHECK (environment IN ('production', 'staging', 'development', 'sandbox')),
    settings jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'provisioning', 'active', 'failed', 'suspended', 'deprovisioning', 'deleted')),
    status_reason text,
    data_location jsonb, -- where the data lives (database, schema); never credentials
    entitlements_version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
-- the code is unique within a customer among instances that still exist
CREATE UNIQUE INDEX ft_instances_customer_code ON ft_instances (customer_id, code) WHERE status <> 'deleted';
CREATE INDEX ft_instances_customer ON ft_instances (customer_id, created_at, id);

CREATE TABLE ft_subscriptions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL REFERENCES ft_customers (id),
    instance_id uuid NOT NULL UNIQUE REFERENCES ft_instances (id),
    product_code text NOT NULL,
    plan_code text NOT NULL,
    plan_version integer NOT NULL,
    status text NOT NULL CHECK (status IN ('trialing', 'active', 'suspended', 'canceled')),
    trial_ends_at timestamptz,
    current_period_start timestamptz NOT NULL DEFAULT now(),
    current_period_end timestamptz NOT NULL DEFAULT now() + interval '1 month',
    -- a downgrade waits for the end of the period
    pending_plan_code text,
    pending_plan_version integer,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    canceled_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (product_code, plan_code, plan_version) REFERENCES ft_plan_versions (product_code, plan_code, version),
    FOREIGN KEY (product_code, pending_plan_code, pending_plan_version)
        REFERENCES ft_plan_versions (product_code, plan_code, version)
);

CREATE TABLE ft_feature_overrides (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id uuid NOT NULL REFERENCES ft_subscriptions (id) ON DELETE CASCADE,
    product_code text NOT NULL,
    feature_code text NOT NULL,
    enabled boolean NOT NULL,   -- false: off whatever the plan says; true: on whatever the plan says
    limit_value bigint CHECK (limit_value IS NULL OR limit_value >= 0),
    expires_at timestamptz,
    reason text,
    set_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, feature_code),
    FOREIGN KEY (product_code, feature_code) REFERENCES ft_features (product_code, code)
);
CREATE INDEX ft_feature_overrides_feature ON ft_feature_overrides (product_code, feature_code);

CREATE FUNCTION ft_entitlements_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    iid uuid;
BEGIN
    IF TG_TABLE_NAME = 'ft_feature_overrides' THEN
        SELECT instance_id INTO iid FROM ft_subscriptions
         WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.subscription_id ELSE NEW.subscription_id END;
    ELSE
        iid := CASE WHEN TG_OP = 'DELETE' THEN OLD.instance_id ELSE NEW.instance_id END;
    END IF;
    IF iid IS NOT NULL THEN
        UPDATE ft_instances SET entitlements_version = entitlements_version + 1 WHERE id = iid;
        PERFORM pg_notify('ft_entitlements', iid::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ft_subscriptions_entitlements AFTER INSERT OR UPDATE OR DELETE ON ft_subscriptions
    FOR EACH ROW EXECUTE FUNCTION ft_entitlements_changed();
CREATE TRIGGER ft_feature_overrides_entitlements AFTER INSERT OR UPDATE OR DELETE ON ft_feature_overrides
    FOR EACH ROW EXECUTE FUNCTION ft_entitlements_changed();

-- An instance's status gates its entitlements (suspended, deleted).
CREATE FUNCTION ft_instance_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.entitlements_version := OLD.entitlements_version + 1;
    PERFORM pg_notify('ft_entitlements', NEW.id::text);
    RETURN NEW;
END $$;

CREATE TRIGGER ft_instances_status_entitlements BEFORE UPDATE OF status ON ft_instances
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION ft_instance_status_changed();
