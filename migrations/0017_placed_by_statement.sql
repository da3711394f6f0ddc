-- The count of live instances placed on each tenant database (migration 0012) is kept once per
-- statement instead of once per row. A row trigger updated the database's row once for every
-- instance a statement placed, all in one transaction: each update makes a new version of the same
-- row, which the next one has to find at the end of the chain, so placing n instances at once cost
-- in the order of n² (the host's start, which places earlier unplaced Standard instances, took
-- over ten minutes for 60,000). Now each statement adds up what it changed per database, from its
-- transition tables, and updates each database's row once. The counts are the same as before.

DROP TRIGGER ft_instances_placed ON ft_instances;
DROP FUNCTION ft_tenant_database_placed();

-- was: the rows before the statement (none for an INSERT); now_on: after (none for a DELETE)
CREATE FUNCTION ft_tenant_database_placed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE ft_tenant_databases d SET placed = d.placed + x.n
        FROM (SELECT tenant_database_id AS id, count(*) AS n FROM now_on
              WHERE status <> 'deleted' AND tenant_database_id IS NOT NULL GROUP BY 1) x
        WHERE d.id = x.id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE ft_tenant_databases d SET placed = d.placed - x.n
        FROM (SELECT tenant_database_id AS id, count(*) AS n FROM was
              WHERE status <> 'deleted' AND tenant_database_id IS NOT NULL GROUP BY 1) x
        WHERE d.id = x.id;
    ELSE
        UPDATE ft_tenant_databases d SET placed = d.placed + x.n
        FROM (SELECT id, sum(n) AS n FROM (
                  SELECT tenant_database_id AS id, -count(*) AS n FROM was
                  WHERE status <> 'deleted' AND tenant_database_id IS NOT NULL GROUP BY 1
                  UNION ALL
                  SELECT tenant_database_id, count(*) FROM now_on
                  WHERE status <> 'deleted' AND tenant_database_id IS NOT NULL GROUP BY 1) c
              GROUP BY id HAVING sum(n) <> 0) x
        WHERE d.id = x.id;
    END IF;
    RETURN NULL;
END $$;

-- (a trigger with transition tables is for one event, and an UPDATE one cannot name columns)
CREATE TRIGGER ft_instances_placed AFTER INSERT ON ft_instances
    REFERENCING NEW TABLE AS now_on FOR EACH STATEMENT EXECUTE FUNCTION ft_tenant_database_placed();
CREATE TRIGGER ft_instances_placed_update AFTER UPDATE ON ft_instances
    REFERENCING OLD TABLE AS was NEW TABLE AS now_on FOR EACH STATEMENT EXECUTE FUNCTION ft_tenant_database_placed();
CREATE TRIGGER ft_instances_placed_delete AFTER DELETE ON ft_instances
    REFERENCING OLD TABLE AS was FOR EACH STATEMENT EXECUTE FUNCTION ft_tenant_database_placed();
