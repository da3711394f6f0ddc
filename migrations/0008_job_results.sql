-- What a job produced for its caller: the output of a product action run as a job (POST
-- .../actions/{name} with "Prefer: respond-async"). NULL for lifecycle jobs.
ALTER TABLE ft_jobs ADD COLUMN result jsonb;
