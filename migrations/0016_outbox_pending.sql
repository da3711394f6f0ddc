-- The relay's work list apart from the events. Marking a row of ft_outbox published rewrote the
-- whole row (the event with it) and added entries to its indexes; the relay now deletes the
-- row's narrow entry from ft_outbox_pending and appends (seq, published_at) to
-- ft_outbox_published, so an event is written once, by the transaction that made it.
-- ft_outbox_pending.partition: hashtext('<aggregate_type>:<aggregate_id>') & 63, the same for every
-- event of an aggregate; a relay publishes a partition under its transaction-scoped advisory lock.
CREATE TABLE ft_outbox_pending (
    seq bigint PRIMARY KEY,         -- ft_outbox.seq
    partition smallint NOT NULL
);

CREATE TABLE ft_outbox_published (
    seq bigint NOT NULL,            -- ft_outbox.seq
    published_at timestamptz NOT NULL -- when JetStream's acknowledgement of its batch was in
);

INSERT INTO ft_outbox_pending (seq, partition)
SELECT seq, hashtext(aggregate_type || ':' || aggregate_id) & 63 FROM ft_outbox WHERE published_at IS NULL;
INSERT INTO ft_outbox_published (seq, published_at)
SELECT seq, published_at FROM ft_outbox WHERE published_at IS NOT NULL;
ALTER TABLE ft_outbox DROP COLUMN published_at;

-- Every statement that adds outbox rows adds their pending entries and wakes the relays (at
-- commit), whoever writes them.
DROP TRIGGER ft_outbox_inserted ON ft_outbox;
DROP FUNCTION ft_outbox_notify();
CREATE FUNCTION ft_outbox_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ft_outbox_pending (seq, partition)
    SELECT seq, hashtext(aggregate_type || ':' || aggregate_id) & 63 FROM added;
    PERFORM pg_notify('ft_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER ft_outbox_inserted AFTER INSERT ON ft_outbox REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ft_outbox_added();
