-- Live job progress: every change to a job or one of its steps takes the next value of one
-- sequence (change_seq, so a stream can tell what a client has already seen) and, at commit,
-- notifies channel ft_job_changed with the job's id. The global job list pages newest first.
CREATE SEQUENCE ft_job_change_seq;
ALTER TABLE ft_jobs ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE ft_job_steps ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;

CREATE FUNCTION ft_job_change_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_seq := nextval('ft_job_change_seq');
    RETURN NEW;
END $$;

CREATE FUNCTION ft_job_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ft_job_changed', NEW.id::text);
    RETURN NULL;
END $$;

CREATE FUNCTION ft_job_step_change_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ft_job_changed', NEW.job_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER ft_jobs_change_mark BEFORE INSERT OR UPDATE ON ft_jobs FOR EACH ROW EXECUTE FUNCTION ft_job_change_mark();
CREATE TRIGGER ft_job_steps_change_mark BEFORE INSERT OR UPDATE ON ft_job_steps FOR EACH ROW EXECUTE FUNCTION ft_job_change_mark();
CREATE TRIGGER ft_jobs_change_notify AFTER INSERT OR UPDATE ON ft_jobs FOR EACH ROW EXECUTE FUNCTION ft_job_change_notify();
CREATE TRIGGER ft_job_steps_change_notify AFTER INSERT OR UPDATE ON ft_job_steps FOR EACH ROW EXECUTE FUNCTION ft_job_step_change_notify();

CREATE INDEX ft_jobs_created ON ft_jobs (created_at DESC, id DESC);
