-- A job's history is append-only: one row per attempt, written once when the attempt ends and
-- never changed, with its replay round, its start and end, the product generation that ran it,
-- the step at fault and the error. Replays no longer overwrite earlier rounds' attempts.
-- A job's steps follow the product generation that runs them: an `ordinal` orders them (so a
-- step the product added can run between recorded ones while each step keeps the position its
-- event ids derive from), and a `note` says why a step was skipped.

ALTER TABLE ft_jobs
    ADD COLUMN replays integer NOT NULL DEFAULT 0,  -- times replayed from the DLQ: the round of its attempts
    ADD COLUMN attempt_started_at timestamptz;      -- when the latest attempt began

ALTER TABLE ft_job_steps ADD COLUMN ordinal integer, ADD COLUMN note text;
UPDATE ft_job_steps SET ordinal = position;
ALTER TABLE ft_job_steps ALTER COLUMN ordinal SET NOT NULL;

ALTER TABLE ft_job_attempts DROP CONSTRAINT ft_job_attempts_pkey;
ALTER TABLE ft_job_attempts RENAME COLUMN at TO finished_at;
ALTER TABLE ft_job_attempts
    ADD COLUMN id bigint,
    ADD COLUMN round integer NOT NULL DEFAULT 0,
    ADD COLUMN outcome text NOT NULL DEFAULT 'failed' CHECK (outcome IN ('succeeded', 'failed', 'interrupted')),
    ADD COLUMN started_at timestamptz,
    ADD COLUMN generation bigint,   -- the plugin generation (per host process) that ran the attempt
    ADD COLUMN product_version text,
    ALTER COLUMN error DROP NOT NULL,
    ALTER COLUMN retryable DROP NOT NULL;
-- the rows kept so far, numbered in the order they happened
UPDATE ft_job_attempts a SET id = o.n
    FROM (SELECT job_id, attempt, row_number() OVER (ORDER BY finished_at, job_id, attempt) AS n FROM ft_job_attempts) o
    WHERE a.job_id = o.job_id AND a.attempt = o.attempt;
ALTER TABLE ft_job_attempts ALTER COLUMN id SET NOT NULL;
ALTER TABLE ft_job_attempts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('ft_job_attempts', 'id'), coalesce(max(id), 0) + 1, false) FROM ft_job_attempts;
ALTER TABLE ft_job_attempts ADD PRIMARY KEY (id);
ALTER TABLE ft_job_attempts ALTER COLUMN outcome DROP DEFAULT, ALTER COLUMN round DROP DEFAULT;
CREATE INDEX ft_job_attempts_job ON ft_job_attempts (job_id, id);

CREATE FUNCTION ft_job_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ft_job_attempts is append-only: attempt % of job % cannot be changed', OLD.id, OLD.job_id;
END $$;

CREATE TRIGGER ft_job_attempts_append_only BEFORE UPDATE ON ft_job_attempts
    FOR EACH ROW EXECUTE FUNCTION ft_job_attempts_append_only();
