/*
 * Job creation. The job row, its step rows and its outbox message commit together with the
 * change that asked for the work, so work is never lost nor queued for a change that rolled back.
 */
#include "store/job_store.h"

#include "store/outbox_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_job_enqueue(PGconn *c, const ft_job_spec_t *spec, char job_id[37], ft_error_t *err)
{
    char *payload = spec->payload != NULL ? json_dumps(spec->payload, JSON_COMPACT) : strdup("{}");
    const char *params[] = {spec->instance_id, spec->product, spec->kind->name, payload, spec->correlation_id, spec->traceparent};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "queuing a job",
                        "INSERT INTO ft_jobs (instance_id, product_code, kind, payload, correlation_id, traceparent)"
                        " VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING id",
                        6, params, &res, err);
    free(payload);
    if (rc != FT_OK)
        return rc;
    snprintf(job_id, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    for (size_t i = 0; i < spec->nsteps && rc == FT_OK; i++) {
        char pos[16], ver[16];
        snprintf(pos, sizeof(pos), "%zu", i);
        snprintf(ver, sizeof(ver), "%u", spec->steps[i].version);
        const char *sp[] = {job_id, pos, spec->steps[i].name, ver};
        rc = ft_sql(c, "recording a job step",
                    "INSERT INTO ft_job_steps (job_id, position, name, version, ordinal) VALUES ($1, $2, $3, $4, $2)", 4, sp, NULL,
                    err);
    }
    if (rc != FT_OK)
        return rc;

    char subject[96];
    snprintf(subject, sizeof(subject), "ft.jobs.%s", spec->kind->name);
    ft_event_meta_t meta = {.tenant_id = spec->instance_id, .correlation_id = spec->correlation_id};
    meta.traceparent = spec->traceparent;
    char esubject[96];
    snprintf(esubject, sizeof(esubject), "instances/%s", spec->instance_id);
    json_t *ev = ft_event_new(spec->kind->requested, esubject, &meta,
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "job_id", job_id, "instance_id", spec->instance_id,
                                        "customer_id", spec->customer_id, "product", spec->product, "kind", spec->kind->name),
                              NULL);
    rc = ft_outbox_append(c, "instance", spec->instance_id, subject, ev, err);
    json_decref(ev);
    return rc;
}
