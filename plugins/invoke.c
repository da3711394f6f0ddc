/*
 * The host side of the plugin ABI for one invocation: accessors, database access inside the
 * invocation's transaction (as the tenant role under row-level security in the pooled tier),
 * tenant-schema migrations, events and errors.
 */
#include "plugins/invoke.h"

#include "core/mem.h"
#include "infra/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ftp_ctx {
    ft_invocation_t *inv;
    ft_error_t *err;
    json_t *settings, *payload;
    char schema[64];
    char sqlstate[6]; /* of the last failed statement */
    unsigned timeout_ms; /* the step's or action's time limit, for its transaction */
    int begun;           /* the transaction was opened (on first use of the database) */
    char **strings; /* returned to the plugin; freed when the invocation ends */
    size_t nstrings;
};

struct ftp_result {
    PGresult *res;
};

/* A generation's init or fini running on this thread, outside any invocation: its product
 * names the plugin's log lines, and set_init_error writes its reason (init only). */
typedef struct lifecycle_call {
    const char *product;
    char *reason; /* NULL in fini */
    size_t reason_len;
} lifecycle_call_t;

static _Thread_local lifecycle_call_t *lifecycle;

static const char *keep(ftp_ctx_t *ctx, char *s)
{
    ctx->strings = ft_mem_realloc(ctx->strings, (ctx->nstrings + 1) * sizeof(char *));
    ctx->strings[ctx->nstrings++] = s;
    return s;
}

static void host_log(ftp_ctx_t *ctx, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (level < FTP_LOG_DEBUG || level > FTP_LOG_ERROR)
        level = FTP_LOG_INFO;
    if (ctx == NULL) {
        const char *product = lifecycle != NULL ? lifecycle->product : NULL;
        ft_log_product(level, NULL, product, "plugin %s: %s", product != NULL ? product : "-", msg);
        return;
    }
    const char *product = ctx->inv->product->code;
    ft_log_line(level, ctx->inv->log_id, ctx->inv->trace_id, product, "plugin %s, instance %s: %s", product,
                ctx->inv->instance_id != NULL ? ctx->inv->instance_id : "-", msg);
}

static void *host_alloc(size_t n)
{
    return malloc(n == 0 ? 1 : n);
}

static void host_free(void *p)
{
    free(p);
}

static const char *instance_id(ftp_ctx_t *ctx)
{
    return ctx->inv->instance_id;
}

static const char *instance_code(ftp_ctx_t *ctx)
{
    return ctx->inv->instance_code;
}

static const char *customer_id(ftp_ctx_t *ctx)
{
    return ctx->inv->customer_id;
}

static int tier(ftp_ctx_t *ctx)
{
    return ctx->inv->tier;
}

static const char *schema(ftp_ctx_t *ctx)
{
    return ctx->schema;
}

/* A member of a JSON object as text: strings unquoted, null/absent as NULL, others as JSON. */
static const char *member_text(ftp_ctx_t *ctx, json_t *obj, const char *key)
{
    json_t *v = obj != NULL ? json_object_get(obj, key) : NULL;
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    /* 15 significant digits: a decimal such as 1260504.20 comes back as 1260504.2, not as the
     * binary double's 17-digit expansion */
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    return s != NULL ? keep(ctx, s) : NULL;
}

static const char *setting(ftp_ctx_t *ctx, const char *key)
{
    return member_text(ctx, ctx->settings, key);
}

static const char *payload_json(ftp_ctx_t *ctx)
{
    return ctx->inv->payload_json;
}

static const char *payload_get(ftp_ctx_t *ctx, const char *key)
{
    return member_text(ctx, ctx->payload, key);
}

static int feature(ftp_ctx_t *ctx, const char *code, int64_t *value)
{
    int64_t v = 0;
    int on = ctx->inv->entitlement != NULL && ctx->inv->entitlement(ctx->inv->entitlement_arg, code, &v);
    if (value != NULL)
        *value = on ? v : 0;
    return on;
}

static void set_error(ftp_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err->message, sizeof(ctx->err->message), fmt, ap);
    va_end(ap);
}

static void set_init_error(const char *fmt, ...)
{
    if (lifecycle == NULL || lifecycle->reason == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lifecycle->reason, lifecycle->reason_len, fmt, ap);
    va_end(ap);
}

/* Maps a failed statement to an FTP_* code and records its message. */
static int sql_failure(ftp_ctx_t *ctx, const PGresult *res)
{
    PGconn *conn = ctx->inv->conn;
    if (PQstatus(conn) != CONNECTION_OK) {
        set_error(ctx, "the database connection was lost");
        return FTP_E_UNAVAILABLE;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(ctx->sqlstate, sizeof(ctx->sqlstate), "%s", state != NULL ? state : "");
    set_error(ctx, "%s (SQLSTATE %s)", msg != NULL ? msg : PQerrorMessage(conn), state != NULL ? state : "?");
    if (state == NULL)
        return FTP_E_FATAL;
    if (strncmp(state, "23", 2) == 0)
        return FTP_E_CONFLICT;
    if (strcmp(state, "57014") == 0)
        return FTP_E_TIMEOUT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strncmp(state, "08", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "53300") == 0)
        return FTP_E_RETRY;
    return FTP_E_FATAL;
}

static int db_exec(ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params, ftp_result_t **result)
{
    if (result != NULL)
        *result = NULL;
    PGresult *res = PQexecParams(ctx->inv->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = sql_failure(ctx, res);
        PQclear(res);
        return rc;
    }
    if (result == NULL) {
        PQclear(res);
        return FTP_OK;
    }
    ftp_result_t *r = malloc(sizeof(*r));
    if (r == NULL) {
        PQclear(res);
        return FTP_E_NOMEM;
    }
    r->res = res;
    *result = r;
    return FTP_OK;
}

/* Whether a statement changes the schema (its first word, after blanks and comments). */
static int is_ddl(const char *sql)
{
    static const char *const verbs[] = {"CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "REINDEX"};
    for (;;) {
        sql += strspn(sql, " \t\r\n(");
        if (strncmp(sql, "--", 2) == 0)
            sql += strcspn(sql, "\n");
        else if (strncmp(sql, "/*", 2) == 0 && strstr(sql + 2, "*/") != NULL)
            sql = strstr(sql + 2, "*/") + 2;
        else
            break;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        size_t n = strlen(verbs[i]);
        if (strncasecmp(sql, verbs[i], n) == 0 && (sql[n] == '\0' || strchr(" \t\r\n;", sql[n]) != NULL))
            return 1;
    }
    return 0;
}

/* The ABI's db_exec. A step's own DDL refused for lack of privilege (42501) is a plugin built
 * the wrong way round, so the error says where schema changes belong. */
static int begin(ftp_ctx_t *ctx);

static int plugin_db_exec(ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params, ftp_result_t **result)
{
    int rc = ctx->begun ? FTP_OK : begin(ctx);
    if (rc != FTP_OK)
        return rc;
    rc = db_exec(ctx, sql, nparams, params, result);
    if (rc == FTP_E_FATAL && strcmp(ctx->sqlstate, "42501") == 0 && is_ddl(sql)) {
        size_t n = strlen(ctx->err->message);
        snprintf(ctx->err->message + n, sizeof(ctx->err->message) - n,
                 "; hint: steps and actions run with the tenant role (" FT_TENANT_ROLE " in the Standard tier) and cannot"
                 " change the schema; declare DDL as a tenant-schema migration in the product descriptor"
                 " (ftp_plugin_t.migrations, an ftp_migration_t with pooled_sql and siloed_sql), which the host applies"
                 " before the plugin runs");
    }
    return rc;
}

static int result_rows(const ftp_result_t *r)
{
    return r != NULL ? PQntuples(r->res) : 0;
}

static const char *result_value(const ftp_result_t *r, int row, int col)
{
    if (r == NULL || row < 0 || row >= PQntuples(r->res) || col < 0 || col >= PQnfields(r->res) ||
        PQgetisnull(r->res, row, col))
        return NULL;
    return PQgetvalue(r->res, row, col);
}

static void result_free(ftp_result_t *r)
{
    if (r == NULL)
        return;
    PQclear(r->res);
    free(r);
}

static int db_ident(const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name), o = 0;
    if (outlen < n * 2 + 3)
        return FTP_E_INVALID;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '"')
            out[o++] = '"';
        out[o++] = name[i];
    }
    out[o++] = '"';
    out[o] = '\0';
    return FTP_OK;
}

/* Parameterless SQL, possibly several statements (migrations): the simple query protocol. */
static int exec_simple(ftp_ctx_t *ctx, const char *sql)
{
    PGresult *res = PQexec(ctx->inv->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ? FTP_OK : sql_failure(ctx, res);
    PQclear(res);
    return rc;
}

static int enter_tenant_role(ftp_ctx_t *ctx)
{
    return ctx->inv->tier == FTP_TIER_STANDARD ? exec_simple(ctx, "SET LOCAL ROLE " FT_TENANT_ROLE) : FTP_OK;
}

/* Brings the product's tenant schema up to date for this tier, as the connection's own user
 * (the schema owner). A cheap check first; only when something is missing does it take the
 * per-product advisory lock (held to the end of the transaction) and apply what is pending.
 * Every declared version is recorded, also those with no SQL for this tier. */
static int ensure_migrations(ftp_ctx_t *ctx)
{
    const ft_product_t *p = ctx->inv->product;
    int pooled = ctx->inv->tier == FTP_TIER_STANDARD;
    char q[160], sql[1024], table[200];
    int rc;
    db_ident(ctx->schema, q, sizeof(q));
    snprintf(table, sizeof(table), "%s.ft_tenant_migrations", q);
    const char *reg_params[] = {table};
    ftp_result_t *res = NULL;
    if ((rc = db_exec(ctx, "SELECT to_regclass($1) IS NOT NULL", 1, reg_params, &res)) != FTP_OK)
        return rc;
    int have_table = strcmp(result_value(res, 0, 0), "t") == 0;
    result_free(res);
    if (have_table) {
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
        if ((rc = db_exec(ctx, sql, 0, NULL, &res)) != FTP_OK)
            return rc;
        long applied = atol(result_value(res, 0, 0));
        result_free(res);
        if (applied >= (long)p->nmigrations)
            return FTP_OK;
    }

    const char *lock_params[] = {p->code};
    if ((rc = db_exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('farutech.tenant_migrations.' || $1))", 1, lock_params,
                      NULL)) != FTP_OK)
        return rc;
    snprintf(sql, sizeof(sql),
             "CREATE SCHEMA IF NOT EXISTS %s;"
             "CREATE TABLE IF NOT EXISTS %s (version integer PRIMARY KEY, name text NOT NULL,"
             " tier text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
             q, table);
    if ((rc = exec_simple(ctx, sql)) != FTP_OK)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT version FROM %s", table);
    ftp_result_t *done = NULL;
    if ((rc = db_exec(ctx, sql, 0, NULL, &done)) != FTP_OK)
        return rc;
    for (size_t i = 0; i < p->nmigrations && rc == FTP_OK; i++) {
        const ft_tenant_migration_t *m = &p->migrations[i];
        const char *body = pooled ? m->pooled_sql : m->siloed_sql;
        int applied = 0;
        for (int row = 0; row < result_rows(done) && !applied; row++)
            applied = (uint32_t)atol(result_value(done, row, 0)) == m->version;
        if (applied)
            continue;
        if (body != NULL && (rc = exec_simple(ctx, body)) != FTP_OK) {
            char why[sizeof(ctx->err->message)];
            snprintf(why, sizeof(why), "%s", ctx->err->message);
            set_error(ctx, "tenant migration %u %s (%s tier): %s", m->version, m->name, pooled ? "pooled" : "siloed", why);
            break;
        }
        char version[16];
        snprintf(version, sizeof(version), "%u", m->version);
        const char *params[] = {version, m->name, pooled ? "pooled" : "siloed"};
        snprintf(sql, sizeof(sql), "INSERT INTO %s (version, name, tier) VALUES ($1, $2, $3)", table);
        rc = db_exec(ctx, sql, 3, params, NULL);
    }
    result_free(done);
    if (rc != FTP_OK || !pooled)
        return rc;
    snprintf(sql, sizeof(sql),
             "GRANT USAGE ON SCHEMA %s TO " FT_TENANT_ROLE ";"
             "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO " FT_TENANT_ROLE ";"
             "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO " FT_TENANT_ROLE ";"
             "REVOKE ALL ON %s FROM " FT_TENANT_ROLE,
             q, q, q, table);
    return exec_simple(ctx, sql);
}

/* Two first provisions of a product racing: the loser's catalog cache may not have seen the
 * winner's schema yet (an advisory lock does not refresh it), so CREATE ... IF NOT EXISTS can
 * still collide. That is transient: another attempt, in a fresh transaction, sees it. */
static int ensure_migrations_once(ftp_ctx_t *ctx)
{
    int rc = ensure_migrations(ctx);
    return rc == FTP_E_CONFLICT ? FTP_E_RETRY : rc;
}

/* The ABI's apply_tenant_migrations: leaves the tenant role for the owner and comes back. */
static int apply_tenant_migrations(ftp_ctx_t *ctx)
{
    int rc = ctx->begun ? FTP_OK : begin(ctx);
    if (rc == FTP_OK)
        rc = exec_simple(ctx, "RESET ROLE");
    if (rc == FTP_OK)
        rc = ensure_migrations_once(ctx);
    if (rc == FTP_OK)
        rc = enter_tenant_role(ctx);
    return rc;
}

static int emit_event(ftp_ctx_t *ctx, const char *type, const char *data_json)
{
    json_error_t jerr;
    json_t *data = json_loads(data_json != NULL ? data_json : "{}", 0, &jerr);
    if (data == NULL || !json_is_object(data) || type == NULL || *type == '\0') {
        json_decref(data);
        set_error(ctx, "emit_event: the type must be set and the data a JSON object");
        return FTP_E_INVALID;
    }
    if (ctx->inv->events == NULL)
        ctx->inv->events = json_array();
    json_array_append_new(ctx->inv->events, json_pack("{s:s, s:o}", "type", type, "data", data));
    return FTP_OK;
}

static const ftp_host_api_t api = {
    .struct_size = sizeof(ftp_host_api_t),
    .abi_major = FTP_ABI_MAJOR,
    .abi_minor = FTP_ABI_MINOR,
    .log = host_log,
    .alloc = host_alloc,
    .free = host_free,
    .instance_id = instance_id,
    .instance_code = instance_code,
    .customer_id = customer_id,
    .tier = tier,
    .schema = schema,
    .setting = setting,
    .payload_json = payload_json,
    .payload_get = payload_get,
    .feature = feature,
    .db_exec = plugin_db_exec,
    .result_rows = result_rows,
    .result_value = result_value,
    .result_free = result_free,
    .apply_tenant_migrations = apply_tenant_migrations,
    .db_ident = db_ident,
    .emit_event = emit_event,
    .set_error = set_error,
    .set_init_error = set_init_error,
};

const ftp_host_api_t *ft_host_api(void)
{
    return &api;
}

int ft_invoke_init(const ft_product_t *p, const ftp_host_api_t *with, char *reason, size_t len)
{
    lifecycle_call_t call = {.product = p->code, .reason = reason, .reason_len = len};
    reason[0] = '\0';
    lifecycle = &call;
    int rc = p->init(with);
    lifecycle = NULL;
    return rc;
}

void ft_invoke_fini(const ft_product_t *p)
{
    lifecycle_call_t call = {.product = p->code};
    lifecycle = &call;
    p->fini();
    lifecycle = NULL;
}

int ft_tenant_db_prepare(PGconn *conn, ft_error_t *err)
{
    PGresult *res = PQexec(conn, "DO $$ BEGIN"
                                 " IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '" FT_TENANT_ROLE "') THEN"
                                 "  CREATE ROLE " FT_TENANT_ROLE " NOLOGIN NOSUPERUSER NOBYPASSRLS;"
                                 " END IF;"
                                 " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;"
                                 " END $$");
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? FT_OK : FT_EDB;
    if (rc != FT_OK)
        ft_error_set(err, FT_EDB, "creating role %s: %s", FT_TENANT_ROLE, PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* The memo's entry for the invocation's product schema, or -1. */
static int memo_find(const ft_invocation_t *inv)
{
    const ft_product_t *p = inv->product;
    unsigned last = p->nmigrations > 0 ? p->migrations[p->nmigrations - 1].version : 0;
    for (size_t i = 0; inv->memo != NULL && i < inv->memo->n; i++)
        if (strcmp(inv->memo->current[i].product, p->code) == 0 && inv->memo->current[i].tier == inv->tier &&
            inv->memo->current[i].nmigrations == p->nmigrations && inv->memo->current[i].last_version == last)
            return (int)i;
    return -1;
}

/* Remembers the product schema as up to date on the connection (after a commit). */
static void memo_add(const ft_invocation_t *inv)
{
    ft_tenant_memo_t *m = inv->memo;
    if (m == NULL || memo_find(inv) >= 0)
        return;
    size_t i = m->n < FT_TENANT_MEMO_MAX ? m->n++ : FT_TENANT_MEMO_MAX - 1;
    const ft_product_t *p = inv->product;
    snprintf(m->current[i].product, sizeof(m->current[i].product), "%s", p->code);
    m->current[i].tier = inv->tier;
    m->current[i].nmigrations = p->nmigrations;
    m->current[i].last_version = p->nmigrations > 0 ? p->migrations[p->nmigrations - 1].version : 0;
}

/* Opens the invocation's transaction, when the plugin first uses the database (a step that never
 * does costs the database nothing): time limit, search_path, tenant id and role. BEGIN and the
 * settings go in one round trip, the role too when the memo knows the schema is up to date;
 * otherwise the schema is checked (and brought up to date) first. */
static int begin(ftp_ctx_t *ctx)
{
    PGconn *conn = ctx->inv->conn;
    char timeout[24], path[160];
    snprintf(timeout, sizeof(timeout), "%u", ctx->timeout_ms);
    ctx->begun = 1; /* whatever happens from here on, the end is a COMMIT or a ROLLBACK */
    db_ident(ctx->schema, path, sizeof(path) - 8);
    strcat(path, ", public");
    const char *id = ctx->inv->instance_id != NULL ? ctx->inv->instance_id : "";
    int known = memo_find(ctx->inv) >= 0;
    char *q_timeout = PQescapeLiteral(conn, timeout, strlen(timeout)), *q_path = PQescapeLiteral(conn, path, strlen(path)),
         *q_id = PQescapeLiteral(conn, id, strlen(id));
    int rc = FTP_E_NOMEM;
    if (q_timeout != NULL && q_path != NULL && q_id != NULL) {
        char *sql = ft_mem_asprintf("BEGIN; SELECT set_config('statement_timeout', %s, true), set_config('search_path', %s, true),"
                                    " set_config('farutech.tenant_id', %s, true)%s",
                                    q_timeout, q_path, q_id,
                                    known && ctx->inv->tier == FTP_TIER_STANDARD ? "; SET LOCAL ROLE " FT_TENANT_ROLE : "");
        rc = exec_simple(ctx, sql);
        free(sql);
    } else {
        set_error(ctx, "quoting the transaction's settings: %s", PQerrorMessage(conn));
    }
    PQfreemem(q_timeout);
    PQfreemem(q_path);
    PQfreemem(q_id);
    if (rc == FTP_OK && !known)
        rc = ensure_migrations_once(ctx);
    if (rc == FTP_OK && !known)
        rc = enter_tenant_role(ctx);
    return rc;
}

static void ctx_init(ftp_ctx_t *ctx, ft_invocation_t *inv, ft_error_t *err)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->inv = inv;
    ctx->err = err;
    err->message[0] = '\0';
    snprintf(ctx->schema, sizeof(ctx->schema), "%s", inv->product->code);
    if (inv->settings_json != NULL)
        ctx->settings = json_loads(inv->settings_json, 0, NULL);
    if (inv->payload_json != NULL)
        ctx->payload = json_loads(inv->payload_json, 0, NULL);
}

static void ctx_end(ftp_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->nstrings; i++)
        free(ctx->strings[i]);
    free(ctx->strings);
    json_decref(ctx->settings);
    json_decref(ctx->payload);
}

/* Commits when rc is FTP_OK, else rolls back; returns the final code. */
static int finish(ftp_ctx_t *ctx, int rc)
{
    ctx->inv->used_database = ctx->begun;
    if (!ctx->begun)
        return rc;
    if (rc == FTP_OK) {
        rc = exec_simple(ctx, "COMMIT");
        if (rc == FTP_OK)
            memo_add(ctx->inv);
    } else {
        PGresult *r = PQexec(ctx->inv->conn, "ROLLBACK");
        PQclear(r);
    }
    return rc;
}

int ft_invoke_step(ft_invocation_t *inv, const ft_step_t *step, ft_error_t *err)
{
    ftp_ctx_t ctx;
    ctx_init(&ctx, inv, err);
    ctx.timeout_ms = step->timeout_ms;
    int rc = step->run(&api, &ctx);
    if (rc != FTP_OK && err->message[0] == '\0')
        snprintf(err->message, sizeof(err->message), "step %s returned %s (%d)", step->name, ft_plugin_status_name(rc), rc);
    rc = finish(&ctx, rc);
    if (rc != FTP_OK) {
        json_decref(inv->events);
        inv->events = NULL;
    }
    err->code = rc;
    ctx_end(&ctx);
    return rc;
}

int ft_invoke_action(ft_invocation_t *inv, const ft_action_t *action, char **output, ft_error_t *err)
{
    ftp_ctx_t ctx;
    ctx_init(&ctx, inv, err);
    *output = NULL;
    ctx.timeout_ms = 30000;
    char *out = NULL;
    int rc = action->handler(&api, &ctx, inv->payload_json != NULL ? inv->payload_json : "{}", &out);
    if (rc != FTP_OK && err->message[0] == '\0')
        snprintf(err->message, sizeof(err->message), "action %s returned %s (%d)", action->name, ft_plugin_status_name(rc), rc);
    rc = finish(&ctx, rc);
    if (rc == FTP_OK)
        *output = out;
    else
        free(out);
    err->code = rc;
    ctx_end(&ctx);
    return rc;
}
