/*
 * Small helpers every store uses around libpq: run a statement with text parameters,
 * transactions, and reading the constraint behind a violation.
 */
#ifndef FT_SQL_H
#define FT_SQL_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"

/* Runs sql; on success *res (if not NULL) receives the result for the caller to PQclear.
 * On failure err says `what` failed and why; FT_ECONFLICT for unique/exclusion violations,
 * FT_EUNAVAILABLE when the connection is gone, FT_EDB otherwise. */
int ft_sql(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
           ft_error_t *err);
/* ft_sql for a statement run again and again: parsed and planned once per connection (the
 * first time it runs there), then only executed. sql must be a string literal: its address names
 * the statement. The statements belong to the connection (a pooled one keeps them from one
 * borrower to the next) and go with it when it is closed or reset. */
int ft_sql_prepared(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
                    ft_error_t *err);
/* ft_sql_prepared expecting exactly one row; FT_ENOTFOUND when there is none. */
int ft_sql_row_prepared(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
                        ft_error_t *err);
/* The same, expecting exactly one row; FT_ENOTFOUND when there is none. */
int ft_sql_row(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, PGresult **res,
               ft_error_t *err);

/* Runs several statements separated by ';' in one round trip (the simple query protocol: no
 * parameters, so every value in sql must be the store's own, never a user's); *res (if not NULL)
 * receives the last statement's result. The first statement that fails ends the script. */
int ft_sql_script(PGconn *conn, const char *what, const char *sql, PGresult **res, ft_error_t *err);

int ft_sql_begin(PGconn *conn, ft_error_t *err);
int ft_sql_commit(PGconn *conn, ft_error_t *err);
void ft_sql_rollback(PGconn *conn);

/*
 * One transaction around a request's whole write, although each store begins and commits its
 * own: between ft_sql_outer_begin and ft_sql_outer_end (same thread, same connection),
 * ft_sql_begin joins the open transaction, ft_sql_commit leaves it open, and ft_sql_rollback
 * really rolls back (a later ft_sql_begin opens a fresh one). The op runner uses this to write
 * the audit row and the idempotency record in the change's own transaction.
 */
int ft_sql_outer_begin(PGconn *conn, ft_error_t *err);
/* 1 while the outer transaction is open (no store rolled it back). */
int ft_sql_outer_open(void);
/* Commits (commit != 0 and still open) or rolls back, and leaves outer mode. */
int ft_sql_outer_end(PGconn *conn, int commit, ft_error_t *err);

/* The constraint named by the last failed statement's error (stored by ft_sql), or "". */
const char *ft_sql_constraint(const ft_error_t *err);

/* Runs a query whose first row's first column is JSON text, and parses it into *out (the caller
 * json_decref()s). FT_ENOTFOUND when there is no row. */
int ft_sql_json(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, json_t **out,
                ft_error_t *err);

/* Parses the first row's first column of res (JSON text) into *out and clears res; `what` names
 * the thing for the error when the database's JSON does not parse. */
int ft_sql_take_json(PGresult *res, const char *what, json_t **out, ft_error_t *err);

/* A string member of a JSON object (a request body, a row), or NULL when it is absent or not a
 * string. */
static inline const char *ft_json_str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Keyset pages: rows of (json text, cursor text), fetched with LIMIT limit + 1. Builds
 * {"items": [...], "next_cursor": <the last item's cursor, or null>} and clears res. */
json_t *ft_sql_page(PGresult *res, int limit);

/* A bytea parameter in hex input form ("\\x0a1b..."): out holds FT_SQL_BYTEA_PARAM(n) bytes. */
#define FT_SQL_BYTEA_PARAM(n) (2 * (n) + 3)
void ft_sql_bytea_param(const unsigned char *bytes, size_t n, char *out);

/* 1 when s is a canonical or upper-case UUID (8-4-4-4-12 hex). */
int ft_uuid_valid(const char *s);

#endif
