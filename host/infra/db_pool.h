/*
 * PostgreSQL connections: a fixed pool for request work, and the bridge that runs a piece of
 * blocking SQL on a libuv worker thread and comes back on the caller's loop. An HTTP loop
 * thread never touches a PGconn.
 */
#ifndef FT_DB_POOL_H
#define FT_DB_POOL_H

#include <libpq-fe.h>
#include <uv.h>

#include "core/error.h"

typedef struct ft_db_pool ft_db_pool_t;

/* Opens one connection with the host's defaults (application name, connect timeout,
 * keepalives). Blocking. Returns NULL and fills err on failure; the caller PQfinish()es. */
PGconn *ft_db_connect(const char *url, const char *application_name, ft_error_t *err);

/* Like ft_db_connect, to another database (dbname) of the same server and credentials. */
PGconn *ft_db_connect_to(const char *url, const char *dbname, const char *application_name, ft_error_t *err);

/* Creates a pool of `size` connections, opened lazily. Never fails for an unreachable server. */
ft_db_pool_t *ft_db_pool_create(const char *url, unsigned size);
/* Closes every connection; no acquire may be in progress. */
void ft_db_pool_destroy(ft_db_pool_t *pool);
unsigned ft_db_pool_size(const ft_db_pool_t *pool);

/* Blocks (bounded) for a connection; reconnects a broken one. NULL + err when the database
 * cannot be reached or the wait timed out. Never call on an HTTP loop thread. */
PGconn *ft_db_acquire(ft_db_pool_t *pool, ft_error_t *err);
void ft_db_release(ft_db_pool_t *pool, PGconn *conn);

/* Work run on a worker thread with a pooled connection; returns FT_OK or a negative code. */
typedef int (*ft_db_work_fn)(PGconn *conn, void *arg, ft_error_t *err);
/* Completion on the loop that submitted, with work's status (or the acquire failure). */
typedef void (*ft_db_done_fn)(void *arg, int status, const ft_error_t *err);

/* Queues `work` on libuv's thread pool; `done` always runs, on `loop`'s thread. */
void ft_db_run(uv_loop_t *loop, ft_db_pool_t *pool, ft_db_work_fn work, ft_db_done_fn done, void *arg);

/* Fills err from a failed result (SQLSTATE and primary message) and returns FT_EDB, or
 * FT_EUNAVAILABLE when the connection itself is gone. Does not clear the result. */
int ft_db_error(PGconn *conn, const PGresult *res, ft_error_t *err, const char *what);

#endif
