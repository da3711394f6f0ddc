-- W3C trace context of the span that asked for a job (the request that queued it, or the one
-- that replayed it from the DLQ): each attempt of the job is a child span in that trace, and the
-- events and log lines of the attempt carry it. NULL when no trace asked (jobs queued before).
ALTER TABLE ft_jobs ADD COLUMN traceparent text
    CHECK (traceparent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
