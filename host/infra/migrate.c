/*
 * Migration runner. The advisory lock makes concurrent starts take turns; each file runs
 * inside BEGIN/COMMIT together with its bookkeeping row, so a failure leaves no trace.
 */
#include "infra/migrate.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_lock key: "ftmigrat" as a 64-bit big-endian integer. */
#define MIGRATION_LOCK_KEY "7382939087411290484"

static int cmp_migration(const void *a, const void *b)
{
    return ((const ft_migration_t *)a)->version - ((const ft_migration_t *)b)->version;
}

/* NNNN_name.sql with a lowercase name: returns the version or -1. */
static int parse_name(const char *file)
{
    size_t n = strlen(file);
    if (n < 10 || strcmp(file + n - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)file[i]))
            return -1;
    if (file[4] != '_')
        return -1;
    for (size_t i = 5; i < n - 4; i++)
        if (!(islower((unsigned char)file[i]) || isdigit((unsigned char)file[i]) || file[i] == '_'))
            return -1;
    return atoi(file) > 0 ? atoi(file) : -1;
}

static int read_file(const char *path, char **out, ft_error_t *err)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return ft_error_set(err, FT_EIO, "cannot read %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = ft_mem_realloc(buf, cap);
        }
        size_t r = fread(buf + len, 1, cap - len - 1, fp);
        len += r;
        if (r == 0)
            break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return ft_error_set(err, FT_EIO, "cannot read %s", path);
    }
    buf[len] = '\0';
    *out = buf;
    return FT_OK;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(out + i * 2, 3, "%02x", md[i]);
    out[64] = '\0';
}

int ft_migrations_load(const char *dir, ft_migration_set_t *set, ft_error_t *err)
{
    memset(set, 0, sizeof(*set));
    DIR *d = opendir(dir);
    if (d == NULL)
        return ft_error_set(err, FT_EIO, "migrations directory %s: %s", dir, strerror(errno));
    int rc = FT_OK;
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *f = de->d_name;
        size_t n = strlen(f);
        if (n < 4 || strcmp(f + n - 4, ".sql") != 0)
            continue;
        int version = parse_name(f);
        if (version < 0) {
            rc = ft_error_set(err, FT_EINVAL, "migration file %s/%s: name must be NNNN_lowercase_name.sql", dir, f);
            goto out;
        }
        if (set->count == cap) {
            cap = cap ? cap * 2 : 16;
            set->items = ft_mem_realloc(set->items, cap * sizeof(*set->items));
        }
        ft_migration_t *m = &set->items[set->count];
        memset(m, 0, sizeof(*m));
        m->version = version;
        m->name = ft_mem_strndup(f, n - 4);
        m->path = ft_mem_asprintf("%s/%s", dir, f);
        set->count++;
        if ((rc = read_file(m->path, &m->sql, err)) != FT_OK)
            goto out;
        sha256_hex(m->sql, strlen(m->sql), m->checksum);
    }
    if (set->count > 1)
        qsort(set->items, set->count, sizeof(*set->items), cmp_migration);
    for (size_t i = 1; i < set->count; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            rc = ft_error_set(err, FT_EINVAL, "migrations %s and %s share version %04d", set->items[i - 1].name,
                              set->items[i].name, set->items[i].version);
            goto out;
        }
    }
out:
    closedir(d);
    if (rc != FT_OK)
        ft_migrations_free(set);
    return rc;
}

void ft_migrations_free(ft_migration_set_t *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].name);
        free(set->items[i].path);
        free(set->items[i].sql);
    }
    free(set->items);
    memset(set, 0, sizeof(*set));
}

static int exec_ok(PGconn *conn, const char *sql, ft_error_t *err, const char *what)
{
    PGresult *r = PQexec(conn, sql);
    int rc = FT_OK;
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = ft_db_error(conn, r, err, what);
    PQclear(r);
    return rc;
}

/* 1-based line of a 1-based character position in sql (PostgreSQL counts characters). */
static int line_of(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80 && ++chars >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

static int apply_one(PGconn *conn, const ft_migration_t *m, ft_error_t *err)
{
    int rc;
    if ((rc = exec_ok(conn, "BEGIN", err, "BEGIN")) != FT_OK)
        return rc;
    PGresult *r = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *pos = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (PQstatus(conn) != CONNECTION_OK)
            rc = ft_error_set(err, FT_EUNAVAILABLE, "migration %s: the database connection was lost", m->name);
        else if (pos != NULL)
            rc = ft_error_set(err, FT_EDB, "migration %s failed at line %d: %s (SQLSTATE %s)", m->name, line_of(m->sql, atol(pos)),
                              msg ? msg : "error", state ? state : "?");
        else
            rc = ft_error_set(err, FT_EDB, "migration %s failed: %s (SQLSTATE %s)", m->name, msg ? msg : PQerrorMessage(conn),
                              state ? state : "?");
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
    }
    PQclear(r);
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        return ft_error_set(err, FT_EINVAL,
                            "migration %s ended the transaction itself; migration files must not contain BEGIN, COMMIT or "
                            "ROLLBACK (what it did before its COMMIT stays applied and unrecorded)",
                            m->name);
    }
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = {version, m->name, m->checksum};
    r = PQexecParams(conn, "INSERT INTO ft_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3, NULL, params,
                     NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = ft_db_error(conn, r, err, "recording migration");
        PQclear(r);
        PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
    }
    PQclear(r);
    return exec_ok(conn, "COMMIT", err, "COMMIT");
}

int ft_migrations_apply(PGconn *conn, const ft_migration_set_t *set, int *applied, ft_error_t *err)
{
    int rc;
    *applied = 0;
    if ((rc = exec_ok(conn, "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", err, "taking the migration lock")) != FT_OK)
        return rc;
    rc = exec_ok(conn,
                 "CREATE TABLE IF NOT EXISTS ft_schema_migrations ("
                 " version integer PRIMARY KEY,"
                 " name text NOT NULL,"
                 " checksum text NOT NULL,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, "creating ft_schema_migrations");
    if (rc != FT_OK)
        goto out;

    PGresult *r = PQexec(conn, "SELECT version, name, checksum FROM ft_schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = ft_db_error(conn, r, err, "reading ft_schema_migrations");
        PQclear(r);
        goto out;
    }
    int nrows = PQntuples(r);
    for (size_t i = 0; i < set->count && rc == FT_OK; i++) {
        const ft_migration_t *m = &set->items[i];
        int done = 0;
        for (int row = 0; row < nrows; row++) {
            if (atoi(PQgetvalue(r, row, 0)) != m->version)
                continue;
            done = 1;
            if (strcmp(PQgetvalue(r, row, 2), m->checksum) != 0)
                rc = ft_error_set(err, FT_ESTATE,
                                  "migration %s was changed after it was applied (checksum differs); add a new migration instead",
                                  m->name);
        }
        if (done || rc != FT_OK)
            continue;
        if ((rc = apply_one(conn, m, err)) == FT_OK) {
            ++*applied;
            ft_log(FT_LOG_INFO, NULL, "applied migration %s", m->name);
        }
    }
    PQclear(r);
out:;
    ft_error_t ignored;
    exec_ok(conn, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", &ignored, "releasing the migration lock");
    return rc;
}

int ft_migrations_check(PGconn *conn, const ft_migration_set_t *set, ft_error_t *err)
{
    PGresult *r = PQexec(conn, "SELECT version FROM ft_schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        int rc = (state != NULL && strcmp(state, "42P01") == 0) /* undefined_table */
                     ? ft_error_set(err, FT_ESTATE, "no migrations applied yet")
                     : ft_db_error(conn, r, err, "reading ft_schema_migrations");
        PQclear(r);
        return rc;
    }
    int rc = FT_OK;
    for (size_t i = 0; i < set->count && rc == FT_OK; i++) {
        int found = 0;
        for (int row = 0; row < PQntuples(r) && !found; row++)
            found = atoi(PQgetvalue(r, row, 0)) == set->items[i].version;
        if (!found)
            rc = ft_error_set(err, FT_ESTATE, "migration %s is not applied", set->items[i].name);
    }
    PQclear(r);
    return rc;
}
