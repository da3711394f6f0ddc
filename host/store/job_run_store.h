/*
 * What a worker writes while it runs a job: claiming it (in order per instance, once per event
 * thanks to the inbox), step progress, failed attempts with their history, the final outcome
 * with its events, and the dead letters. Also the job and DLQ reads and operations the API uses.
 */
#ifndef FT_JOB_RUN_STORE_H
#define FT_JOB_RUN_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "domain/job_kinds.h"
#include "domain/step_plan.h"
#include "domain/trace.h"
#include "store/scope.h"

typedef struct ft_job_step_row {
    int position; /* the step's identity within the job (its event ids derive from it) */
    int ordinal;  /* its place in the order the steps run */
    char name[64];
    unsigned version;
    char status[16];
} ft_job_step_row_t;

typedef struct ft_job_row {
    char id[37], instance_id[37], customer_id[37], product[64], kind[24], correlation_id[160];
    const ft_job_kind_t *k; /* the kind's row */
    char tier[16], code[48], instance_status[24];
    int attempts, max_attempts;
    int round;                  /* times the job was replayed from the DLQ */
    json_t *payload, *settings; /* owned */
    /* set by the worker: the product generation running this attempt, recorded with it */
    unsigned long long generation;
    char product_version[64];
    ft_job_step_row_t *steps;
    size_t nsteps;
    ft_trace_t trace; /* this attempt's span: a child of the span that asked for the job (else a new
                       * trace); the attempt's events and log lines carry it */
} ft_job_row_t;

typedef enum {
    FT_CLAIM_RUN,     /* run it now: attempts was incremented */
    FT_CLAIM_DONE,    /* finished, or this event was already applied: acknowledge */
    FT_CLAIM_WAIT,    /* an earlier job of the same instance is unfinished: try later */
    FT_CLAIM_MISSING, /* no such job (its instance's history was deleted): acknowledge */
    FT_CLAIM_FOREIGN, /* a kind this host does not know: hand it back */
} ft_claim_t;

/* Sets up a worker's control-plane connection: its commits do not wait for the disk (a claim,
 * a step started or done without events is progress that a crash may lose: the message is then
 * delivered again, and the job resumes from what is durable). The outcomes that leave the
 * control plane or end an attempt (ft_job_step_done with events or a result,
 * ft_job_attempt_failed, ft_jobs_succeeded, ft_job_dead) wait for the disk, and so make every
 * earlier commit of the session durable too, before the worker acknowledges the message. */
int ft_job_runner_session(PGconn *c, ft_error_t *err);

/* One fetched message's job, and what the claim decided about it. */
typedef struct ft_claim_item {
    const char *job_id, *event_id; /* in (borrowed) */
    ft_claim_t verdict;            /* out */
    ft_job_row_t job;              /* out, FT_CLAIM_RUN: the job, attempts incremented, its steps read */
    char *tenant_url;              /* out, FT_CLAIM_RUN: the Standard instance's pooled database (NULL: the default one) */
} ft_claim_item_t;
/* Claims the jobs of a fetched batch in one transaction of two statements: each job locked (one
 * a concurrent transaction holds is FT_CLAIM_WAIT), judged done, waiting or to run, and those to
 * run locked for this session (ft_jobs_release), started and their steps read. max_attempts: the
 * attempt budget now in force (recorded with the job). A job whose id repeats in the batch waits.
 * A kind this host does not know (a newer host queued it) is FT_CLAIM_FOREIGN: another worker
 * may take it. On an error nothing is claimed and no lock is held. The connection must hold no
 * job (every earlier claim released) when it claims. */
int ft_job_claim_batch(PGconn *c, ft_claim_item_t *items, size_t n, const char *consumer, int max_attempts, ft_error_t *err);
void ft_claim_item_free(ft_claim_item_t *item);
void ft_job_row_free(ft_job_row_t *job);
/* Lets other workers take the jobs (after FT_CLAIM_RUN, whatever the outcome), in one statement. */
void ft_jobs_release(PGconn *c, const char *const *job_ids, size_t n);
/* Applies a step plan (ft_step_plan of job->steps against `current`, the generation's steps):
 * new order, steps skipped (with `note`) or pending again, new steps added; then reads the
 * steps again into job. Writes nothing when the plan changes nothing. */
int ft_job_steps_apply(PGconn *c, ft_job_row_t *job, const ft_step_plan_item_t *plan, size_t nplan,
                       const ft_job_step_spec_t *current, const char *note, ft_error_t *err);

int ft_job_step_running(PGconn *c, const char *job_id, int position, ft_error_t *err);
/* A step's start or end as it happened, recorded later (ft_job_steps_mark, ft_jobs_succeeded): a
 * worker keeps the progress of quick jobs and writes it with their outcomes. */
typedef struct ft_step_mark {
    const char *job_id; /* borrowed */
    int position;
    int done;       /* 0: the step started; 1: it succeeded */
    int64_t at_us;  /* when, in microseconds since the epoch */
} ft_step_mark_t;
/* Writes the marks, each as if it had been written when it happened (the same rows, changes and
 * notifications as ft_job_step_running and ft_job_step_done without events), one statement per
 * rank: the first mark of every job, then the second, and so on, so each job's changes keep
 * their order. Commits without waiting for the disk, unless inside the caller's transaction. */
int ft_job_steps_mark(PGconn *c, const ft_step_mark_t *marks, size_t n, ft_error_t *err);
/* Marks the step done and writes the events it emitted ([{type,data}], ids derived from the
 * job, the step and their order) to the outbox, and result (JSON text, or NULL: none) as the
 * job's result, in one transaction. */
int ft_job_step_done(PGconn *c, const ft_job_row_t *job, int position, json_t *events, const char *result, ft_error_t *err);
int ft_job_step_failed(PGconn *c, const char *job_id, int position, const char *error, ft_error_t *err);
/* Records a failed attempt and (retrying) puts the job back in the queue state. */
int ft_job_attempt_failed(PGconn *c, const ft_job_row_t *job, const char *step, const char *error, int retryable, ft_error_t *err);

/* A job that succeeded, its message's event id and the data location its steps recorded (NULL:
 * none; borrowed). */
typedef struct ft_job_success {
    const ft_job_row_t *job;
    const char *event_id;
    json_t *data_location;
} ft_job_success_t;
/* Jobs that succeeded: the step marks not yet written (ft_job_steps_mark), their status, their
 * attempts, their instances' (with data_location), the inbox rows and the events, in one
 * transaction that waits for the disk. */
int ft_jobs_succeeded(PGconn *c, const ft_job_success_t *done, size_t n, const ft_step_mark_t *marks, size_t nmarks,
                      const char *consumer, ft_error_t *err);
/* The job is dead: failed, the instance failed (for provisioning), a ft_dlq row, job.failed.v1,
 * the inbox row, in one transaction. */
int ft_job_dead(PGconn *c, const ft_job_row_t *job, const char *event_id, const char *consumer, const char *reason,
                const char *dlq_subject, unsigned long long stream_sequence, ft_error_t *err);
/* The history of a job, one entry per attempt of every round, in order: [{round, attempt,
 * outcome, generation, product_version, step, error, retryable, started_at, finished_at, at}]. */
int ft_job_history(PGconn *c, const char *job_id, json_t **out, ft_error_t *err);

/* API reads and operations. */
int ft_job_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
/* ft_job_get with the job's change number (seq: it grows with every change to the job or its steps)
 * and, in steps (a new array the caller frees), the events of the step changes after change
 * `after` in order (JobStepEvent objects): none when after < 0 or when the log no longer holds every
 * change after it (pruned). */
int ft_job_watch(PGconn *c, const ft_call_t *call, const char *id, long long after, json_t **out, long long *seq, json_t **steps,
                 ft_problem_t *problem, ft_error_t *err);
/* A finished job's change log is kept this long after the job ended: a client that resumes its
 * stream later gets the job's state without the step changes it missed. */
#define FT_JOB_CHANGES_KEEP_S 86400
/* Deletes the change log of jobs that ended more than keep_s seconds ago; n: rows deleted. */
int ft_job_changes_prune(PGconn *c, int keep_s, long *n, ft_error_t *err);
int ft_job_list(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem, ft_error_t *err);

typedef struct ft_job_filter {
    const char *status, *kind, *product, *instance_id, *customer_id; /* each NULL: any */
    const char *created_after, *created_before;                      /* RFC 3339, exclusive bounds; NULL: open */
    const char *cursor;                                              /* a previous page's next_cursor, or NULL */
    int limit;
} ft_job_filter_t;
/* Every job the caller may see that matches f, newest first: {"items": [...], "next_cursor": ...}.
 * A cursor this API did not issue is FT_EINVAL with a 400 problem naming it. */
int ft_job_list_all(PGconn *c, const ft_call_t *call, const ft_job_filter_t *f, json_t **out, ft_problem_t *problem,
                    ft_error_t *err);
int ft_dlq_list(PGconn *c, const ft_call_t *call, int include_closed, json_t **out, ft_error_t *err);
int ft_dlq_replay(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_dlq_discard(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err);

/* Applies plan changes and cancellations whose period has ended (queuing features_changed
 * jobs with the given steps lookup). Returns how many subscriptions changed. */
int ft_subscriptions_roll_periods(PGconn *c, int *changed, ft_error_t *err);

#endif
