/*
 * Tenant databases: creation, connection, archive (pg_dump for a whole Enterprise database,
 * COPY for a Standard tenant's rows) and removal.
 */
#define _XOPEN_SOURCE 700
#include "infra/tenant_db.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "plugins/invoke.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void ft_tenant_db_name(const char *instance_id, char out[40])
{
    size_t o = 0;
    memcpy(out, "ft_", 3);
    o = 3;
    for (const char *p = instance_id; *p != '\0' && o < 39; p++)
        if (*p != '-')
            out[o++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    out[o] = '\0';
}

/* The parts of a URL or conninfo string this file needs; each NULL when absent. */
typedef struct conn_parts {
    PQconninfoOption *opts; /* owns the strings; PQconninfoFree */
    const char *host, *port, *user, *password, *dbname;
} conn_parts_t;

/* 0, or -1 when url does not parse (p is then empty). */
static int parts_of(const char *url, conn_parts_t *p)
{
    memset(p, 0, sizeof(*p));
    p->opts = url != NULL ? PQconninfoParse(url, NULL) : NULL;
    for (PQconninfoOption *o = p->opts; o != NULL && o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && p->host == NULL))
            p->host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            p->port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            p->user = o->val;
        else if (strcmp(o->keyword, "password") == 0)
            p->password = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            p->dbname = o->val;
    }
    return p->opts != NULL ? 0 : -1;
}

/* The database name in a URL or conninfo (into out). */
static void dbname_of(const char *url, char *out, size_t len)
{
    conn_parts_t p;
    parts_of(url, &p);
    snprintf(out, len, "%s", p.dbname != NULL ? p.dbname : "postgres");
    PQconninfoFree(p.opts);
}

static int exists(PGconn *admin, const char *db, int *yes, ft_error_t *err)
{
    const char *p[] = {db};
    PGresult *r = PQexecParams(admin, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? FT_OK : ft_db_error(admin, r, err, "looking up a database");
    *yes = rc == FT_OK && PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int create_db(PGconn *admin, const char *db, ft_error_t *err)
{
    char *q = PQescapeIdentifier(admin, db, strlen(db));
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", q);
    PQfreemem(q);
    PGresult *r = PQexec(admin, sql);
    int rc = FT_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        /* another worker created it meanwhile: fine */
        if (state == NULL || (strcmp(state, "42P04") != 0 && strcmp(state, "23505") != 0))
            rc = ft_db_error(admin, r, err, "creating a tenant database");
    }
    PQclear(r);
    return rc;
}

int ft_tenant_db_bootstrap(const ft_tenant_db_config_t *cfg, ft_error_t *err)
{
    char db[128];
    dbname_of(cfg->shared_url, db, sizeof(db));
    PGconn *admin = ft_db_connect_to(cfg->shared_url, "postgres", "farutech-worker", err);
    if (admin == NULL)
        return err->code;
    int yes = 0, rc = exists(admin, db, &yes, err);
    if (rc == FT_OK && !yes)
        rc = create_db(admin, db, err);
    if (rc == FT_OK)
        rc = ft_tenant_db_prepare(admin, err);
    PQfinish(admin);
    if (cfg->archive_dir != NULL && mkdir(cfg->archive_dir, 0700) != 0 && errno != EEXIST)
        return ft_error_set(err, FT_EIO, "archive directory %s: %s", cfg->archive_dir, strerror(errno));
    return rc;
}

int ft_tenant_db_open(const ft_tenant_db_config_t *cfg, const char *tier, const char *instance_id, const char *product,
                      const char *pooled_url, int create, PGconn **out, json_t **location, ft_error_t *err)
{
    char db[128];
    int rc = FT_OK, enterprise = strcmp(tier, "enterprise") == 0;
    const char *url = enterprise || pooled_url == NULL ? cfg->shared_url : pooled_url;
    if (enterprise)
        ft_tenant_db_name(instance_id, db);
    else
        dbname_of(url, db, sizeof(db));
    if (out != NULL) {
        *out = NULL;
        if (enterprise) {
            PGconn *admin = ft_db_connect_to(url, "postgres", "farutech-worker", err);
            if (admin == NULL)
                return err->code;
            int yes = 0;
            rc = exists(admin, db, &yes, err);
            if (rc == FT_OK && !yes)
                rc = create ? create_db(admin, db, err) : ft_error_set(err, FT_ENOTFOUND, "database %s does not exist", db);
            PQfinish(admin);
            if (rc != FT_OK)
                return rc;
        }
        /* a pooled database on another server needs the tenant role there too: checked on each
         * new connection (cheap, and connections are kept between jobs) */
        *out = ft_db_connect_to(url, db, "farutech-worker", err);
        if (*out == NULL)
            return err->code;
        if ((rc = ft_tenant_db_prepare(*out, err)) != FT_OK) {
            PQfinish(*out);
            *out = NULL;
            return rc;
        }
    }
    if (location != NULL)
        *location = json_pack("{s:s, s:s, s:s}", "tier", tier, "database", db, "schema", product);
    return FT_OK;
}

int ft_tenant_db_display_url(const char *url, char *out, size_t len)
{
    conn_parts_t p;
    /* only a postgresql:// URL or key=value pairs: libpq takes a bare word for a database name */
    if (url == NULL || (strstr(url, "://") == NULL && strchr(url, '=') == NULL) || parts_of(url, &p) != 0)
        return -1;
    int ipv6 = p.host != NULL && strchr(p.host, ':') != NULL && strchr(p.host, ',') == NULL;
    snprintf(out, len, "postgresql://%s%s%s%s%s%s%s/%s", p.user != NULL ? p.user : "", p.user != NULL ? "@" : "", ipv6 ? "[" : "",
             p.host != NULL ? p.host : "", ipv6 ? "]" : "", p.port != NULL ? ":" : "", p.port != NULL ? p.port : "",
             p.dbname != NULL ? p.dbname : "");
    PQconninfoFree(p.opts);
    return 0;
}

/* Replaces each occurrence of the URL's password in err's message with "***". */
static void redact_password(const char *url, ft_error_t *err)
{
    conn_parts_t p;
    parts_of(url, &p);
    char *at, out[sizeof(err->message)];
    size_t n = p.password != NULL ? strlen(p.password) : 0;
    while (n > 0 && (at = strstr(err->message, p.password)) != NULL) {
        snprintf(out, sizeof(out), "%.*s***%s", (int)(at - err->message), err->message, at + n);
        snprintf(err->message, sizeof(err->message), "%s", out);
    }
    PQconninfoFree(p.opts);
}

int ft_tenant_db_probe(const char *url, ft_error_t *err)
{
    PGconn *c = ft_db_connect(url, "farutech-api", err);
    int rc = c != NULL ? ft_tenant_db_prepare(c, err) : err->code;
    PQfinish(c);
    if (rc != FT_OK)
        redact_password(url, err);
    return rc;
}

/* Runs pg_dump -Fc of db into path; the password travels in the environment, not argv. */
static int dump(const ft_tenant_db_config_t *cfg, const char *db, const char *path, ft_error_t *err)
{
    conn_parts_t p;
    parts_of(cfg->shared_url, &p);
    pid_t pid = fork();
    if (pid == 0) {
        if (p.password != NULL)
            setenv("PGPASSWORD", p.password, 1);
        const char *argv[] = {"pg_dump", "-Fc", "-h", p.host != NULL ? p.host : "127.0.0.1", "-p", p.port != NULL ? p.port : "5432",
                              "-U", p.user != NULL ? p.user : "postgres", "-f", path, db, NULL};
        execvp("pg_dump", (char *const *)argv);
        _exit(127);
    }
    PQconninfoFree(p.opts);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return ft_error_set(err, FT_EIO, "cannot run pg_dump: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ft_error_set(err, FT_EIO, "pg_dump of %s exited with %d", db, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return FT_OK;
}

static void stamp(char *out, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y%m%dT%H%M%SZ", &tm);
}

int ft_tenant_db_drop(const ft_tenant_db_config_t *cfg, const char *instance_id, ft_error_t *err)
{
    char db[40];
    ft_tenant_db_name(instance_id, db);
    PGconn *admin = ft_db_connect_to(cfg->shared_url, "postgres", "farutech-worker", err);
    if (admin == NULL)
        return err->code;
    int yes = 0, rc = exists(admin, db, &yes, err);
    if (rc == FT_OK && yes && cfg->archive_dir != NULL) {
        char when[32], path[1024];
        stamp(when, sizeof(when));
        snprintf(path, sizeof(path), "%s/ft-archive-%s-%s.dump", cfg->archive_dir, instance_id, when);
        rc = dump(cfg, db, path, err);
        if (rc == FT_OK)
            ft_log(FT_LOG_INFO, NULL, "tenant %s: database %s archived to %s", instance_id, db, path);
    }
    if (rc == FT_OK && yes) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        PGresult *r = PQexec(admin, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = ft_db_error(admin, r, err, "dropping a tenant database");
        PQclear(r);
    }
    PQfinish(admin);
    return rc;
}

int ft_tenant_db_archive_rows(const ft_tenant_db_config_t *cfg, PGconn *c, const char *schema, const char *instance_id,
                              ft_error_t *err)
{
    if (cfg->archive_dir == NULL)
        return FT_OK;
    char when[32], dir[1024];
    stamp(when, sizeof(when));
    snprintf(dir, sizeof(dir), "%s/ft-archive-%s-%s", cfg->archive_dir, instance_id, when);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ft_error_set(err, FT_EIO, "archive directory %s: %s", dir, strerror(errno));
    const char *p[] = {schema};
    PGresult *r = PQexecParams(c,
                               "SELECT format('%I.%I', table_schema, table_name), table_name FROM information_schema.columns"
                               " WHERE table_schema = $1 AND column_name = 'tenant_id' ORDER BY table_name",
                               1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        int rc = ft_db_error(c, r, err, "listing tables to archive");
        PQclear(r);
        return rc;
    }
    int rc = FT_OK;
    for (int i = 0; i < PQntuples(r) && rc == FT_OK; i++) {
        char path[1400], sql[512];
        snprintf(path, sizeof(path), "%s/%s.csv", dir, PQgetvalue(r, i, 1));
        char *lit = PQescapeLiteral(c, instance_id, strlen(instance_id));
        snprintf(sql, sizeof(sql), "COPY (SELECT * FROM %s WHERE tenant_id = %s) TO STDOUT WITH (FORMAT csv, HEADER)",
                 PQgetvalue(r, i, 0), lit);
        PQfreemem(lit);
        FILE *fp = fopen(path, "w");
        if (fp == NULL) {
            rc = ft_error_set(err, FT_EIO, "cannot write %s: %s", path, strerror(errno));
            break;
        }
        PGresult *cr = PQexec(c, sql);
        if (PQresultStatus(cr) != PGRES_COPY_OUT) {
            rc = ft_db_error(c, cr, err, "archiving a table");
        } else {
            char *buf;
            int n;
            while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
                fwrite(buf, 1, (size_t)n, fp);
                PQfreemem(buf);
            }
            PGresult *end;
            while ((end = PQgetResult(c)) != NULL) {
                if (PQresultStatus(end) != PGRES_COMMAND_OK && rc == FT_OK)
                    rc = ft_db_error(c, end, err, "archiving a table");
                PQclear(end);
            }
        }
        PQclear(cr);
        fclose(fp);
    }
    PQclear(r);
    if (rc == FT_OK)
        ft_log(FT_LOG_INFO, NULL, "tenant %s: rows of schema %s archived to %s", instance_id, schema, dir);
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    remove(path); /* FTW_DEPTH: a directory's files go first */
    return 0;
}

void ft_tenant_db_prune_archives(const ft_tenant_db_config_t *cfg)
{
    if (cfg->archive_dir == NULL)
        return;
    time_t before = time(NULL) - (time_t)cfg->retention_days * 86400;
    DIR *d = opendir(cfg->archive_dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "ft-archive-", 11) != 0)
            continue;
        char path[1024];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", cfg->archive_dir, de->d_name);
        if (lstat(path, &st) != 0 || st.st_mtime >= before)
            continue;
        if (S_ISDIR(st.st_mode))
            nftw(path, remove_one, 8, FTW_DEPTH | FTW_PHYS);
        else
            unlink(path);
        ft_log(FT_LOG_INFO, NULL, "archive %s removed (older than %u days)", path, cfg->retention_days);
    }
    closedir(d);
}
