-- Pooled tenant databases: the Standard tier's databases, each a PostgreSQL URL (possibly on
-- another server, with its own credentials) with a capacity in Standard instances. A new
-- Standard instance is placed on one of the open databases in the transaction that creates it;
-- a closed database takes no new instances while those placed there keep working. The database
-- of FT_TENANT_DATABASE_URL is the row named "default", written by the host at each start,
-- which then also places the Standard instances created before this migration there.
-- `url` carries credentials and never leaves the control plane; `display_url` is the same
-- address without the password, the one the API shows.

CREATE TABLE ft_tenant_databases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    url text NOT NULL,
    display_url text NOT NULL,
    capacity integer NOT NULL CHECK (capacity > 0),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- where a Standard instance's rows live; NULL for Enterprise instances (their own database). A
-- database is removed only when no live instance is placed there; deleted ones then forget it.
ALTER TABLE ft_instances ADD COLUMN tenant_database_id uuid REFERENCES ft_tenant_databases (id) ON DELETE SET NULL;
CREATE INDEX ft_instances_tenant_database ON ft_instances (tenant_database_id) WHERE status <> 'deleted';
