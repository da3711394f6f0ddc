-- Background work and its events. A job is one run of a product's steps for one lifecycle
-- event; its steps record progress so a restarted job resumes after the last completed one.
-- The outbox holds events written in the same transaction as the change they describe; the
-- relay publishes them to JetStream (Nats-Msg-Id = id) and marks them. The inbox records the
-- event ids a consumer has applied, so a redelivered message has one effect.

CREATE TABLE ft_jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    instance_id uuid NOT NULL REFERENCES ft_instances (id),
    product_code text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('provision', 'deprovision', 'suspend', 'resume', 'features_changed', 'action')),
    status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    payload jsonb NOT NULL DEFAULT '{}',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    last_error text,
    correlation_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX ft_jobs_instance ON ft_jobs (instance_id, created_at DESC);

CREATE TABLE ft_job_steps (
    job_id uuid NOT NULL REFERENCES ft_jobs (id) ON DELETE CASCADE,
    position integer NOT NULL,
    name text NOT NULL,
    version integer NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (job_id, position)
);

CREATE TABLE ft_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- commit order within an aggregate
    id uuid NOT NULL UNIQUE,                              -- the CloudEvents id
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    subject text NOT NULL,                                -- the NATS subject
    type text NOT NULL,
    event jsonb NOT NULL,                                 -- the whole CloudEvents envelope
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX ft_outbox_unpublished ON ft_outbox (seq) WHERE published_at IS NULL;

CREATE TABLE ft_inbox (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
