/*
 * Audit rows written from the HTTP layer for requests that end before their work runs.
 */
#include "http/audit.h"

#include "core/mem.h"
#include "infra/log.h"
#include "store/audit_store.h"
#include "store/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_row {
    char actor[128], action[64], entity_type[32], entity_id[64], customer_id[40], result[16], reason[512];
    char request_id[FT_REQUEST_ID_MAX + 1], client_ip[48];
} pending_row_t;

void ft_audit_entity_type(const char *action, char *out, size_t len)
{
    size_t n = strcspn(action, ".");
    snprintf(out, len, "%.*s", (int)n, action);
}

static int write_work(PGconn *c, void *arg, ft_error_t *err)
{
    pending_row_t *p = arg;
    ft_audit_entry_t e = {.actor = p->actor,
                          .action = p->action,
                          .entity_type = p->entity_type[0] ? p->entity_type : NULL,
                          .entity_id = p->entity_id[0] ? p->entity_id : NULL,
                          .customer_id = p->customer_id[0] ? p->customer_id : NULL,
                          .result = p->result,
                          .reason = p->reason[0] ? p->reason : NULL,
                          .request_id = p->request_id,
                          .client_ip = p->client_ip};
    /* an instance-level entity finds its customer (and instance) in SQL */
    if (e.entity_id != NULL && (strcmp(p->entity_type, "instance") == 0 || strcmp(p->entity_type, "subscription") == 0 ||
                                strcmp(p->entity_type, "override") == 0))
        e.instance_id = e.entity_id;
    return ft_audit_write(c, &e, err);
}

static void write_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    if (status != FT_OK)
        ft_log_traced(FT_LOG_ERROR, r->request_id, r->trace.trace_id, "audit row not written: %s", err->message);
    free(arg);
}

void ft_audit_request(ft_req_t *r, const char *result, const char *reason_fmt, ...)
{
    if (r->route == NULL || r->route->action == NULL || r->audited || r->app->db == NULL)
        return;
    r->audited = 1;
    pending_row_t *p = ft_mem_calloc(1, sizeof(*p));
    snprintf(p->actor, sizeof(p->actor), "%s", r->principal.subject[0] ? r->principal.subject : "anonymous");
    snprintf(p->action, sizeof(p->action), "%s", r->route->action);
    ft_audit_entity_type(p->action, p->entity_type, sizeof(p->entity_type));
    const char *id = NULL, *product = NULL;
    if (r->req != NULL) { /* path parameters live in h2o's request */
        id = ft_req_param(r, "id");
        if (id == NULL)
            id = ft_req_param(r, "tenantInstanceId");
        product = ft_req_param(r, "product");
    }
    if (id != NULL && ft_uuid_valid(id)) {
        snprintf(p->entity_id, sizeof(p->entity_id), "%s", id);
        if (strcmp(p->entity_type, "customer") == 0)
            snprintf(p->customer_id, sizeof(p->customer_id), "%s", id);
    } else if (product != NULL && strlen(product) < sizeof(p->entity_id)) {
        snprintf(p->entity_id, sizeof(p->entity_id), "%s", product);
    }
    snprintf(p->result, sizeof(p->result), "%s", result);
    if (reason_fmt != NULL) {
        va_list ap;
        va_start(ap, reason_fmt);
        vsnprintf(p->reason, sizeof(p->reason), reason_fmt, ap);
        va_end(ap);
    }
    snprintf(p->request_id, sizeof(p->request_id), "%s", r->request_id);
    snprintf(p->client_ip, sizeof(p->client_ip), "%s", ft_req_client_ip(r));
    ft_req_defer_db(r, write_work, write_done, p);
}
