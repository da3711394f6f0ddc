-- The job change log (0014) and the job notifications (0013) written once per statement instead of
-- once per row. A worker now records a whole batch of jobs in one statement; per-row PL/pgSQL that
-- looked the job up, counted its steps, inserted one row and notified once per changed row cost
-- about 0.25 ms a row, more than the rest of a no-op job's database work.
--
-- What stays per row (BEFORE): the per-job advisory lock, then the change's number, in that order,
-- so a job's changes still commit in the order of their numbers. What moves to one AFTER
-- statement trigger per table and event (transition tables): the ft_job_changes rows, set-based,
-- and the notifications, one per statement with up to 200 job ids joined by commas (a NOTIFY
-- payload holds 8,000 bytes).
--
-- A row's prev_seq is still the job's greatest change number before that change: the job row's
-- and its steps' numbers as they were before the statement (the transition table's old rows),
-- and the statement's own earlier changes of the same job (lower numbers). done and total still
-- count the job's steps as they stood right after the change.
--
-- The foreign key to ft_jobs goes: its check, deferred to commit, ran once per change row and
-- locked the job row FOR KEY SHARE each time. Rows still go with their job: an AFTER DELETE
-- statement trigger on ft_jobs deletes them.

DROP TRIGGER ft_jobs_change_mark ON ft_jobs;
DROP TRIGGER ft_job_steps_change_mark ON ft_job_steps;
DROP TRIGGER ft_jobs_change_notify ON ft_jobs;
DROP TRIGGER ft_job_steps_change_notify ON ft_job_steps;
DROP FUNCTION ft_job_change_mark();
DROP FUNCTION ft_job_change_notify();
DROP FUNCTION ft_job_step_change_notify();
DROP FUNCTION ft_job_change_prev(uuid);

ALTER TABLE ft_job_changes DROP CONSTRAINT ft_job_changes_job_id_fkey;

CREATE FUNCTION ft_job_change_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ft_job_changes'), hashtext(NEW.id::text));
    NEW.change_seq := nextval('ft_job_change_seq');
    RETURN NEW;
END $$;

CREATE FUNCTION ft_job_step_change_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ft_job_changes'), hashtext(NEW.job_id::text));
    NEW.change_seq := nextval('ft_job_change_seq');
    RETURN NEW;
END $$;

-- One notification per 200 jobs the statement changed.
CREATE FUNCTION ft_job_changes_notify(jobs uuid[]) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('ft_job_changed', string_agg(j::text, ','))
    FROM (SELECT j, (row_number() OVER (ORDER BY j) - 1) / 200 AS chunk FROM (SELECT DISTINCT unnest(jobs) AS j) d) x
    GROUP BY chunk
$$;

CREATE FUNCTION ft_jobs_changes_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, from_status, status, attempts, last_error, started_at, finished_at)
        SELECT n.change_seq,
               coalesce((SELECT max(s.change_seq) FROM ft_job_steps s WHERE s.job_id = n.id AND s.change_seq < n.change_seq), 0),
               n.id, NULL, n.status, n.attempts, n.last_error, n.started_at, n.finished_at
        FROM new_rows n;
        PERFORM ft_job_changes_notify(ARRAY(SELECT id FROM new_rows));
    ELSE
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, from_status, status, attempts, last_error, started_at, finished_at)
        SELECT n.change_seq,
               greatest(o.change_seq, coalesce((SELECT max(s.change_seq) FROM ft_job_steps s WHERE s.job_id = n.id), 0)),
               n.id, o.status, n.status, n.attempts, n.last_error, n.started_at, n.finished_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id;
        PERFORM ft_job_changes_notify(ARRAY(SELECT id FROM new_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ft_job_steps_changes_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- the steps inserted after this one (higher numbers) did not exist yet at this change
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, position, name, version, from_status, status, attempts, last_error,
                                    note, started_at, finished_at, done, total)
        SELECT n.change_seq,
               greatest(coalesce((SELECT j.change_seq FROM ft_jobs j WHERE j.id = n.job_id), 0),
                        coalesce((SELECT max(s.change_seq) FROM ft_job_steps s
                                  WHERE s.job_id = n.job_id AND s.change_seq < n.change_seq), 0)),
               n.job_id, n.position, n.name, n.version, NULL, n.status, n.attempts, n.last_error, n.note, n.started_at,
               n.finished_at, c.done, c.total
        FROM new_rows n,
             LATERAL (SELECT count(*) FILTER (WHERE s.status = 'succeeded') AS done, count(*) AS total FROM ft_job_steps s
                      WHERE s.job_id = n.job_id AND s.change_seq <= n.change_seq) c;
        PERFORM ft_job_changes_notify(ARRAY(SELECT job_id FROM new_rows));
    ELSE
        -- a step this statement changes later (higher number) still stood as it was (its old row)
        WITH p AS (
            SELECT n.job_id, n.position, n.name, n.version, n.status, n.attempts, n.last_error, n.note, n.started_at,
                   n.finished_at, n.change_seq, o.status AS old_status,
                   max(o.change_seq) OVER (PARTITION BY n.job_id) AS old_max,
                   coalesce(sum((o.status = 'succeeded')::int) OVER (PARTITION BY n.job_id ORDER BY n.change_seq DESC
                                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS later_done
            FROM new_rows n JOIN old_rows o ON o.job_id = n.job_id AND o.position = n.position)
        INSERT INTO ft_job_changes (seq, prev_seq, job_id, position, name, version, from_status, status, attempts, last_error,
                                    note, started_at, finished_at, done, total)
        SELECT p.change_seq,
               greatest(coalesce((SELECT j.change_seq FROM ft_jobs j WHERE j.id = p.job_id), 0),
                        coalesce((SELECT max(s.change_seq) FROM ft_job_steps s
                                  WHERE s.job_id = p.job_id AND s.change_seq < p.change_seq), 0),
                        p.old_max),
               p.job_id, p.position, p.name, p.version, p.old_status, p.status, p.attempts, p.last_error, p.note, p.started_at,
               p.finished_at, c.done + p.later_done, c.total
        FROM p,
             LATERAL (SELECT count(*) FILTER (WHERE s.status = 'succeeded' AND s.change_seq <= p.change_seq) AS done,
                             count(*) AS total FROM ft_job_steps s WHERE s.job_id = p.job_id) c;
        PERFORM ft_job_changes_notify(ARRAY(SELECT job_id FROM new_rows));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION ft_jobs_changes_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ft_job_changes c USING old_rows o WHERE c.job_id = o.id;
    RETURN NULL;
END $$;

CREATE TRIGGER ft_jobs_change_number BEFORE INSERT OR UPDATE ON ft_jobs
    FOR EACH ROW EXECUTE FUNCTION ft_job_change_number();
CREATE TRIGGER ft_job_steps_change_number BEFORE INSERT OR UPDATE ON ft_job_steps
    FOR EACH ROW EXECUTE FUNCTION ft_job_step_change_number();
CREATE TRIGGER ft_jobs_changes_inserted AFTER INSERT ON ft_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ft_jobs_changes_log();
CREATE TRIGGER ft_jobs_changes_updated AFTER UPDATE ON ft_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ft_jobs_changes_log();
CREATE TRIGGER ft_job_steps_changes_inserted AFTER INSERT ON ft_job_steps
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ft_job_steps_changes_log();
CREATE TRIGGER ft_job_steps_changes_updated AFTER UPDATE ON ft_job_steps
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ft_job_steps_changes_log();
CREATE TRIGGER ft_jobs_changes_deleted AFTER DELETE ON ft_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ft_jobs_changes_forget();

-- Room on each page for a row's next version: a job's and a step's status changes in place (a
-- heap-only update, no index entry) while its page has room.
ALTER TABLE ft_jobs SET (fillfactor = 80);
ALTER TABLE ft_job_steps SET (fillfactor = 80);
