/*
 * Where tenant data lives. Standard tier: pooled databases (FT_TENANT_DATABASE_URL, the default
 * one, and those an operator registers, possibly on other servers), where each product's schema
 * holds the rows of every Standard tenant placed there under row-level security.
 * Enterprise tier: a database per instance on the default one's server, named ft_<instance id>.
 * Also archiving a tenant's data before it is removed (FT_ARCHIVE_DIR) and the retention of
 * those archives.
 */
#ifndef FT_TENANT_DB_H
#define FT_TENANT_DB_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"

typedef struct ft_tenant_db_config {
    const char *shared_url;  /* the default pooled database; its server holds Enterprise databases */
    const char *archive_dir; /* NULL: no archive before removal */
    unsigned retention_days; /* archives older than this are deleted */
} ft_tenant_db_config_t;

/* Creates the shared tenant database and the tenant role if missing. Blocking. */
int ft_tenant_db_bootstrap(const ft_tenant_db_config_t *cfg, ft_error_t *err);

/* The enterprise database name of an instance ("ft_" and the id's 32 hex digits). */
void ft_tenant_db_name(const char *instance_id, char out[40]);

/* A connection to the instance's database: for a Standard instance, the pooled database at
 * pooled_url (NULL: the default one), prepared for tenants (ft_tenant_db_prepare) on each new
 * connection. create: make an Enterprise database if missing. *location (may be NULL) receives
 * where the data lives, without credentials. FT_ENOTFOUND when an Enterprise database does not
 * exist and create is 0. The caller PQfinish()es. With out NULL, only fills *location. */
int ft_tenant_db_open(const ft_tenant_db_config_t *cfg, const char *tier, const char *instance_id, const char *product,
                      const char *pooled_url, int create, PGconn **out, json_t **location, ft_error_t *err);

/* url without its password, as postgresql://user@host:port/dbname: what may be shown. -1 when
 * url is not a PostgreSQL URL or conninfo string. */
int ft_tenant_db_display_url(const char *url, char *out, size_t len);

/* Checks that a pooled database about to be registered can serve: it is reachable with the
 * URL's credentials and the tenant role exists on its server (created if missing). Blocking.
 * The message in err never holds the password. */
int ft_tenant_db_probe(const char *url, ft_error_t *err);

/* Archives then drops an Enterprise instance's database (if it exists). */
int ft_tenant_db_drop(const ft_tenant_db_config_t *cfg, const char *instance_id, ft_error_t *err);

/* Archives a Standard instance's rows of `schema` (one CSV per table). Before its deprovision steps. */
int ft_tenant_db_archive_rows(const ft_tenant_db_config_t *cfg, PGconn *c, const char *schema, const char *instance_id,
                              ft_error_t *err);

/* Deletes archives older than the retention. */
void ft_tenant_db_prune_archives(const ft_tenant_db_config_t *cfg);

#endif
