-- The fleet: every host process records itself and the product generations it serves; the
-- fleet's desired state per product is its current release (the plugin file itself, so hosts
-- need no shared filesystem); a rollout asks every live host to serve the releases it names and
-- collects one result row per host and product.

CREATE TABLE ft_hosts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- one per process start
    hostname text NOT NULL,
    pid integer NOT NULL,
    roles text[] NOT NULL,
    version text NOT NULL,
    commit text NOT NULL,
    address text,                                   -- its HTTP address, once it listens
    heartbeat_ms integer NOT NULL CHECK (heartbeat_ms > 0),
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    stopped_at timestamptz                          -- set on a clean shutdown
);
CREATE INDEX ft_hosts_heartbeat ON ft_hosts (heartbeat_at DESC);

-- What each host serves (or last failed to load), one row per product, replaced as it changes.
CREATE TABLE ft_host_plugins (
    host_id uuid NOT NULL REFERENCES ft_hosts (id) ON DELETE CASCADE,
    product text NOT NULL,
    generation bigint,        -- NULL: the product serves no generation on that host
    version text,
    sha256 text,
    loaded_at timestamptz,
    last_error text,          -- the last attempt's reason while it failed
    last_error_at timestamptz,
    PRIMARY KEY (host_id, product)
);

-- A release is written only once some host loaded the file successfully, so a file that fails
-- validation never becomes the fleet's desired state. The newest release of a product is current.
CREATE TABLE ft_plugin_releases (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product text NOT NULL,
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    version text NOT NULL,
    file bytea NOT NULL,
    released_by text NOT NULL,   -- the actor: "user:<id>", "key:<id>", "signal", "host:<id>" (first load)
    released_at timestamptz NOT NULL DEFAULT now(),
    host_id uuid REFERENCES ft_hosts (id) ON DELETE SET NULL,  -- the host that loaded it first
    rollout_id uuid
);
CREATE INDEX ft_plugin_releases_current ON ft_plugin_releases (product, id DESC);

CREATE TABLE ft_plugin_rollouts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    coordinator uuid NOT NULL REFERENCES ft_hosts (id) ON DELETE CASCADE,
    actor text NOT NULL,
    mode text NOT NULL CHECK (mode IN ('all', 'canary')),
    product text,                 -- NULL: every product
    force boolean NOT NULL,
    items jsonb NOT NULL,         -- [{"product","release_id","sha256","version"}]: what the hosts must serve
    hosts uuid[] NOT NULL,        -- the live hosts asked (the coordinator excluded)
    state text NOT NULL CHECK (state IN ('rolling', 'done', 'stopped', 'incomplete')),
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX ft_plugin_rollouts_started ON ft_plugin_rollouts (started_at DESC);

CREATE TABLE ft_plugin_rollout_results (
    rollout_id uuid NOT NULL REFERENCES ft_plugin_rollouts (id) ON DELETE CASCADE,
    host_id uuid NOT NULL REFERENCES ft_hosts (id) ON DELETE CASCADE,
    product text NOT NULL,
    result text NOT NULL CHECK (result IN ('loaded', 'unchanged', 'failed')),
    generation bigint,            -- loaded, unchanged: the one serving now
    serving_generation bigint,    -- failed: the one that keeps serving (NULL: none)
    version text,
    sha256 text,
    reason text,
    load_ms double precision,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollout_id, host_id, product)
);
