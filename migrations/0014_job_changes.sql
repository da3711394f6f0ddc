-- Every change of a job and of its steps, kept in order: the job stream sends each step change as
-- its own event, even when several commit between two reads. A row is written by the trigger that
-- numbers the change (migration 0013), in the changing transaction, so the log holds exactly the
-- committed changes. An advisory lock per job, taken before the number, makes a job's changes
-- commit in the order of their numbers: a reader that has seen change n of a job has seen every
-- earlier one. prev_seq is the job's number before the change, so a reader can tell whether the
-- rows it holds follow on from the change its client saw or whether some were pruned. Rows go
-- with their job, and the sweeper deletes a finished job's rows a day after it ended.
CREATE TABLE ft_job_changes (
    seq bigint PRIMARY KEY,                 -- from ft_job_change_seq: the change's event id
    prev_seq bigint NOT NULL,               -- the job's change number before this one (0: none)
    -- checked at commit: the row of a job's creation is written before the job's own row
    job_id uuid NOT NULL REFERENCES ft_jobs (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    position integer,                       -- the step's; NULL for a change of the job row itself
    name text,
    version integer,
    from_status text,                       -- NULL when the row was created
    status text NOT NULL,
    attempts integer NOT NULL,
    last_error text,
    note text,
    started_at timestamptz,
    finished_at timestamptz,
    done integer,                           -- steps succeeded after the change (step changes)
    total integer,                          -- steps of the job after the change (step changes)
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ft_job_changes_job ON ft_job_changes (job_id, seq);

-- The job's change number before this change: its row's and its steps' greatest.
CREATE FUNCTION ft_job_change_prev(job uuid) RETURNS bigint LANGUAGE sql AS $$
    SELECT greatest(coalesce((SELECT change_seq FROM ft_jobs WHERE id = job), 0),
                    coalesce((SELECT max(change_seq) FROM ft_job_steps WHERE job_id = job), 0))
$$;

CREATE OR REPLACE FUNCTION ft_job_change_mark() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    job uuid;
    prev bigint;
    done integer;
    total integer;
BEGIN
    IF TG_TABLE_NAME = 'ft_jobs' THEN
        job := NEW.id;
    ELSE
        job := NEW.job_id;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ft_job_changes'), hashtext(job::text));
    prev := ft_job_change_prev(job);
    NEW.change_seq := nextval('ft_job_change_seq');
    IF TG_TABLE_NAME = 'ft_jobs' THEN
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, from_status, status, attempts, last_error, started_at, finished_at)
        VALUES (NEW.change_seq, prev, job, CASE TG_OP WHEN 'UPDATE' THEN OLD.status END, NEW.status, NEW.attempts,
                NEW.last_error, NEW.started_at, NEW.finished_at);
    ELSE
        SELECT count(*) FILTER (WHERE s.status = 'succeeded'), count(*) INTO done, total
            FROM ft_job_steps s WHERE s.job_id = job AND s.position <> NEW.position;
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, position, name, version, from_status, status, attempts, last_error,
                                    note, started_at, finished_at, done, total)
        VALUES (NEW.change_seq, prev, job, NEW.position, NEW.name, NEW.version, CASE TG_OP WHEN 'UPDATE' THEN OLD.status END,
                NEW.status, NEW.attempts, NEW.last_error, NEW.note, NEW.started_at, NEW.finished_at,
                done + (NEW.status = 'succeeded')::int, total + 1);
    END IF;
    RETURN NEW;
END $$;
