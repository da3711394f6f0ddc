/*
 * libpq helpers shared by the stores. A failed statement's constraint name is kept at the end
 * of the error message after a NUL, so a caller can tell which uniqueness rule was broken.
 */
#include "store/sql.h"

#include "core/mem.h"
#include "infra/db_pool.h"

#include <libpq-events.h>

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* A statement's outcome: the result handed over, or the failure described in err. */
static int outcome(PGconn *conn, PGresult *r, const char *what, PGresult **res, ft_error_t *err)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res != NULL)
            *res = r;
        else
            PQclear(r);
        return FT_OK;
    }
    int rc = ft_db_error(conn, r, err, what);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (rc == FT_EDB && state != NULL && (strcmp(state, "23505") == 0 || strcmp(state, "23P01") == 0))
        rc = err->code = FT_ECONFLICT;
    size_t used = strlen(err->message);
    if (constraint != NULL && used + strlen(constraint) + 2 < sizeof(err->message))
        memcpy(err->message + used + 1, constraint, strlen(constraint) + 1);
    else if (used + 1 < sizeof(err->message))
        err->message[used + 1] = '\0';
    PQclear(r);
    if (res != NULL)
        *res = NULL;
    return rc;
}

int ft_sql(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res, ft_error_t *err)
{
    return outcome(conn, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), what, res, err);
}

/* FT_ENOTFOUND (and *res cleared) unless *res holds exactly one row. */
static int one_row(const char *what, PGresult **res, ft_error_t *err)
{
    if (PQntuples(*res) == 1)
        return FT_OK;
    PQclear(*res);
    *res = NULL;
    return ft_error_set(err, FT_ENOTFOUND, "%s: not found", what);
}

#define PREPARED_MAX 64

/* The statements prepared on one connection, by their text's address; attached to the PGconn
 * (libpq's instance data), so whichever thread the pool lends it to next finds them, and freed
 * with it. A connection is used by one thread at a time. */
typedef struct prepared {
    int n;
    const char *sql[PREPARED_MAX];
} prepared_t;

static int prepared_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNRESET) { /* a new server session: nothing is prepared there */
        prepared_t *p = PQinstanceData(((PGEventConnReset *)info)->conn, prepared_event);
        if (p != NULL)
            p->n = 0;
    } else if (id == PGEVT_CONNDESTROY) {
        free(PQinstanceData(((PGEventConnDestroy *)info)->conn, prepared_event));
    }
    return 1;
}

/* This connection's statements; NULL when libpq cannot attach them (out of memory). */
static prepared_t *prepared_of(PGconn *conn)
{
    prepared_t *p = PQinstanceData(conn, prepared_event);
    if (p != NULL)
        return p;
    if (!PQregisterEventProc(conn, prepared_event, "ft_sql_prepared", NULL))
        return NULL;
    p = ft_mem_calloc(1, sizeof(*p));
    if (!PQsetInstanceData(conn, prepared_event, p)) {
        free(p);
        return NULL;
    }
    return p;
}

int ft_sql_prepared(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
                    ft_error_t *err)
{
    prepared_t *p = prepared_of(conn);
    if (p == NULL)
        return ft_sql(conn, what, sql, nparams, params, res, err);
    int i = 0;
    while (i < p->n && p->sql[i] != sql)
        i++;
    if (i == PREPARED_MAX) /* more statements than foreseen: plain ones for the rest */
        return ft_sql(conn, what, sql, nparams, params, res, err);
    char name[16];
    snprintf(name, sizeof(name), "ft_p%d", i);
    if (i == p->n) {
        int rc = outcome(conn, PQprepare(conn, name, sql, nparams, NULL), what, NULL, err);
        if (rc != FT_OK)
            return rc;
        p->sql[p->n++] = sql;
    }
    return outcome(conn, PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0), what, res, err);
}

int ft_sql_row_prepared(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
                        ft_error_t *err)
{
    int rc = ft_sql_prepared(conn, what, sql, nparams, params, res, err);
    return rc == FT_OK ? one_row(what, res, err) : rc;
}

int ft_sql_row(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
               ft_error_t *err)
{
    int rc = ft_sql(conn, what, sql, nparams, params, res, err);
    return rc == FT_OK ? one_row(what, res, err) : rc;
}

/* The outer transaction of this thread, if any (request work runs one op per thread at a time). */
static _Thread_local struct {
    PGconn *conn; /* NULL: not in outer mode */
    int open;
} outer;

int ft_sql_script(PGconn *conn, const char *what, const char *sql, PGresult **res, ft_error_t *err)
{
    return outcome(conn, PQexec(conn, sql), what, res, err);
}

int ft_sql_begin(PGconn *conn, ft_error_t *err)
{
    if (outer.conn == conn && conn != NULL) {
        if (outer.open)
            return FT_OK;
        int rc = ft_sql(conn, "BEGIN", "BEGIN", 0, NULL, NULL, err);
        outer.open = rc == FT_OK;
        return rc;
    }
    return ft_sql(conn, "BEGIN", "BEGIN", 0, NULL, NULL, err);
}

int ft_sql_commit(PGconn *conn, ft_error_t *err)
{
    if (outer.conn == conn && conn != NULL)
        return FT_OK; /* the outer transaction commits */
    return ft_sql(conn, "COMMIT", "COMMIT", 0, NULL, NULL, err);
}

void ft_sql_rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
    if (outer.conn == conn)
        outer.open = 0;
}

int ft_sql_outer_begin(PGconn *conn, ft_error_t *err)
{
    int rc = ft_sql(conn, "BEGIN", "BEGIN", 0, NULL, NULL, err);
    if (rc == FT_OK) {
        outer.conn = conn;
        outer.open = 1;
    }
    return rc;
}

int ft_sql_outer_open(void)
{
    return outer.conn != NULL && outer.open;
}

int ft_sql_outer_end(PGconn *conn, int commit, ft_error_t *err)
{
    int rc = FT_OK, was_open = outer.conn == conn && outer.open;
    outer.conn = NULL;
    outer.open = 0;
    if (!was_open)
        return commit ? ft_error_set(err, FT_ESTATE, "the transaction was rolled back") : FT_OK;
    if (commit)
        rc = ft_sql(conn, "COMMIT", "COMMIT", 0, NULL, NULL, err);
    else
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

void ft_sql_bytea_param(const unsigned char *bytes, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '\\';
    *out++ = 'x';
    for (size_t i = 0; i < n; i++) {
        *out++ = hex[bytes[i] >> 4];
        *out++ = hex[bytes[i] & 15];
    }
    *out = '\0';
}

const char *ft_sql_constraint(const ft_error_t *err)
{
    return err->message + strlen(err->message) + 1;
}

/* The textual form only (8-4-4-4-12 hex digits): checked on every entitlement request, where
 * uuid_parse's strtoul calls showed up in profiles. */
int ft_uuid_valid(const char *s)
{
    if (s == NULL)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return s[36] == '\0';
}

json_t *ft_sql_page(PGresult *res, int limit)
{
    json_t *items = json_array();
    int n = PQntuples(res), more = n > limit;
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items, json_loads(PQgetvalue(res, i, 0), 0, NULL));
    json_t *next = more ? json_string(PQgetvalue(res, limit - 1, 1)) : json_null();
    PQclear(res);
    return json_pack("{s:o, s:o}", "items", items, "next_cursor", next);
}

int ft_sql_take_json(PGresult *res, const char *what, json_t **out, ft_error_t *err)
{
    json_error_t jerr;
    *out = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    PQclear(res);
    return *out != NULL ? FT_OK : ft_error_set(err, FT_EDB, "%s JSON from the database does not parse: %s", what, jerr.text);
}

int ft_sql_json(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, json_t **out,
                ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql(conn, what, sql, nparams, params, &res, err);
    if (rc != FT_OK)
        return rc;
    if (PQntuples(res) < 1) {
        PQclear(res);
        return ft_error_set(err, FT_ENOTFOUND, "%s: not found", what);
    }
    json_error_t jerr;
    *out = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    PQclear(res);
    return *out != NULL ? FT_OK : ft_error_set(err, FT_EDB, "%s: the database's JSON does not parse: %s", what, jerr.text);
}
