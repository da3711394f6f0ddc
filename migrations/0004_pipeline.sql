-- The provisioning pipeline: the relay is woken by a notification when outbox rows commit;
-- jobs that used up their attempts are recorded in ft_dlq beside the JetStream DLQ stream.

CREATE FUNCTION ft_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ft_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER ft_outbox_inserted AFTER INSERT ON ft_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION ft_outbox_notify();

CREATE TABLE ft_dlq (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id uuid NOT NULL REFERENCES ft_jobs (id) ON DELETE CASCADE,
    instance_id uuid NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    stream_sequence bigint,                -- where the message sits in the DLQ stream
    reason text NOT NULL,
    attempts jsonb NOT NULL DEFAULT '[]', -- [{attempt, step, error, at}]
    created_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    replayed_by text,
    discarded_at timestamptz,
    discarded_by text
);
CREATE INDEX ft_dlq_open ON ft_dlq (created_at) WHERE replayed_at IS NULL AND discarded_at IS NULL;

-- Every failed attempt of a job, for the error history shown with the job and in the DLQ.
CREATE TABLE ft_job_attempts (
    job_id uuid NOT NULL REFERENCES ft_jobs (id) ON DELETE CASCADE,
    attempt integer NOT NULL,
    step text,
    error text NOT NULL,
    retryable boolean NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
