/*
 * Running a plugin's code for one tenant instance: the host services behind ftp_host_api_t
 * and the transaction around each step or action. The caller provides the connection to the
 * instance's database, how to read its entitlements, and gets back the events the plugin
 * emitted (to write to the outbox when it records the step as done).
 */
#ifndef FT_INVOKE_H
#define FT_INVOKE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "plugins/product.h"

/* The role pooled-tier steps run as, so row-level security applies to them. */
#define FT_TENANT_ROLE "farutech_tenant"

typedef int (*ft_entitlement_fn)(void *arg, const char *code, int64_t *value);

/* What one kept connection to a tenant database is known to hold: the product schemas found up
 * to date on it (product code, tier, and the number and last version of the product's
 * migrations), so a step there skips the check. The connection's owner clears it when it opens
 * another connection. */
#define FT_TENANT_MEMO_MAX 8
typedef struct ft_tenant_memo {
    struct {
        char product[64];
        int tier;
        size_t nmigrations;
        unsigned last_version;
    } current[FT_TENANT_MEMO_MAX];
    size_t n;
} ft_tenant_memo_t;

typedef struct ft_invocation {
    const ft_product_t *product;
    PGconn *conn;
    const char *instance_id, *instance_code, *customer_id;
    int tier;                  /* FTP_TIER_STANDARD or FTP_TIER_ENTERPRISE */
    const char *settings_json; /* the instance's settings object, or NULL */
    const char *payload_json;  /* the lifecycle payload or action input, or NULL */
    ft_entitlement_fn entitlement;
    void *entitlement_arg;
    const char *log_id;   /* correlation id for log lines, or NULL */
    const char *trace_id; /* trace id for log lines, or NULL */
    json_t *events;     /* out: [{"type","data"}] emitted by the plugin; the caller owns it */
    int used_database;  /* out: the plugin used the tenant database (its transaction opened) */
    ft_tenant_memo_t *memo; /* conn's, when the caller keeps it between invocations; NULL: none */
} ft_invocation_t;

/* The host services table handed to every plugin. */
const ftp_host_api_t *ft_host_api(void);

/* Runs a generation's init with `api` on this thread (the reloading one). Log lines the plugin
 * writes without an invocation carry its product; the text it gives set_init_error lands in
 * reason (len bytes, empty when it gave none). Returns init's FTP_* code. */
int ft_invoke_init(const ft_product_t *p, const ftp_host_api_t *api, char *reason, size_t len);
/* Runs a generation's fini, its log lines carrying the product. */
void ft_invoke_fini(const ft_product_t *p);

/* Once per tenant database server: the role pooled steps run as. */
int ft_tenant_db_prepare(PGconn *conn, ft_error_t *err);

/* Runs one step in its own transaction (committed only if the step returns FTP_OK).
 * Returns the step's FTP_* code; err carries the explanation. inv->events is filled. */
int ft_invoke_step(ft_invocation_t *inv, const ft_step_t *step, ft_error_t *err);

/* Runs an action in its own transaction; *output (malloc'd JSON text or NULL) for the caller to free. */
int ft_invoke_action(ft_invocation_t *inv, const ft_action_t *action, char **output, ft_error_t *err);

#endif
