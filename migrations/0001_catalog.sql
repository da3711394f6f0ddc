-- The catalog as the loaded product plugins declare it. The plugin runtime upserts these rows
-- on every load and reload; rows a new plugin version no longer declares are retired (retired_at),
-- never deleted, so subscriptions that reference them keep their meaning.

CREATE TABLE ft_products (
    code text PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    plugin_version text NOT NULL,
    vendor text,
    abi text NOT NULL,
    file_hash text NOT NULL,
    generation bigint NOT NULL,
    settings_schema jsonb,
    loaded_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ft_modules (
    product_code text NOT NULL REFERENCES ft_products (code),
    code text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    depends text[] NOT NULL DEFAULT '{}',
    retired_at timestamptz,
    PRIMARY KEY (product_code, code)
);

CREATE TABLE ft_features (
    product_code text NOT NULL,
    code text NOT NULL,
    module_code text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    kind text NOT NULL CHECK (kind IN ('flag', 'limit')),
    default_value bigint NOT NULL,
    requires text[] NOT NULL DEFAULT '{}',
    unit text,
    retired_at timestamptz,
    PRIMARY KEY (product_code, code),
    FOREIGN KEY (product_code, module_code) REFERENCES ft_modules (product_code, code)
);

CREATE TABLE ft_plans (
    product_code text NOT NULL REFERENCES ft_products (code),
    code text NOT NULL,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    current_version integer NOT NULL CHECK (current_version > 0),
    trial_days integer NOT NULL DEFAULT 0,
    retired_at timestamptz,
    PRIMARY KEY (product_code, code)
);

-- Every version of a plan ever loaded, with its features: a subscription keeps the version it bought.
CREATE TABLE ft_plan_versions (
    product_code text NOT NULL,
    plan_code text NOT NULL,
    version integer NOT NULL,
    content_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_code, plan_code, version),
    FOREIGN KEY (product_code, plan_code) REFERENCES ft_plans (product_code, code)
);

CREATE TABLE ft_plan_features (
    product_code text NOT NULL,
    plan_code text NOT NULL,
    version integer NOT NULL,
    feature_code text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (product_code, plan_code, version, feature_code),
    FOREIGN KEY (product_code, plan_code, version) REFERENCES ft_plan_versions (product_code, plan_code, version),
    FOREIGN KEY (product_code, feature_code) REFERENCES ft_features (product_code, code)
);

-- One row per load or reload attempt, successful or not: what operators look at after the fact.
CREATE TABLE ft_plugin_loads (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_code text NOT NULL,
    generation bigint,
    plugin_version text,
    file_hash text,
    result text NOT NULL CHECK (result IN ('loaded', 'reloaded', 'failed')),
    reason text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ft_plugin_loads_product_at ON ft_plugin_loads (product_code, at DESC);
