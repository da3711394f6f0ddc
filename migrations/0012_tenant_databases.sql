-- Pooled tenant databases: the Standard tier's databases, each a PostgreSQL URL (possibly on
-- another server, with its own credentials) with a capacity in Standard instances. A new
-- Standard instance is placed on one of the open databases in the transaction that creates it;
-- a closed database takes no new instances while those placed there keep working. The database
-- of FT_TENANT_DATABASE_URL is the row named "default", written by the host at each start,
-- which then also places the Standard instances created before this migration there.
-- `url` carries credentials and never leaves the control plane; `display_url` is the same
-- address without the password, the one the API shows. `placed` counts the live (not deleted)
-- instances placed there, kept by a trigger on ft_instances, so a placement reads each
-- database's load in one row instead of counting its instances.

CREATE TABLE ft_tenant_databases (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    url text NOT NULL,
    display_url text NOT NULL,
    capacity integer NOT NULL CHECK (capacity > 0),
    placed integer NOT NULL DEFAULT 0 CHECK (placed >= 0),
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- where a Standard instance's rows live; NULL for Enterprise instances (their own database). A
-- database is removed only when no live instance is placed there; deleted ones then forget it.
ALTER TABLE ft_instances ADD COLUMN tenant_database_id uuid REFERENCES ft_tenant_databases (id) ON DELETE SET NULL;

CREATE FUNCTION ft_tenant_database_placed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was uuid;
    now_on uuid;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status <> 'deleted' THEN
        was := OLD.tenant_database_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status <> 'deleted' THEN
        now_on := NEW.tenant_database_id;
    END IF;
    IF was IS DISTINCT FROM now_on THEN
        UPDATE ft_tenant_databases SET placed = placed - 1 WHERE id = was;
        UPDATE ft_tenant_databases SET placed = placed + 1 WHERE id = now_on;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ft_instances_placed AFTER INSERT OR DELETE OR UPDATE OF tenant_database_id, status ON ft_instances
    FOR EACH ROW EXECUTE FUNCTION ft_tenant_database_placed();
