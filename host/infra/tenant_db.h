/*
 * Where tenant data lives. Standard tier: one shared database (FT_TENANT_DATABASE_URL) where
 * each product's schema holds every Standard tenant's rows under row-level security.
 * Enterprise tier: a database per instance on the same server, named ft_<instance id>.
 * Also archiving a tenant's data before it is removed (FT_ARCHIVE_DIR) and the retention of
 * those archives.
 */
#ifndef FT_TENANT_DB_H
#define FT_TENANT_DB_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"

typedef struct ft_tenant_db_config {
    const char *shared_url;  /* the Standard tier's database */
    const char *archive_dir; /* NULL: no archive before removal */
    unsigned retention_days; /* archives older than this are deleted */
} ft_tenant_db_config_t;

/* Creates the shared tenant database and the tenant role if missing. Blocking. */
int ft_tenant_db_bootstrap(const ft_tenant_db_config_t *cfg, ft_error_t *err);

/* The enterprise database name of an instance ("ft_" and the id's 32 hex digits). */
void ft_tenant_db_name(const char *instance_id, char out[40]);

/* A connection to the instance's database. create: make an Enterprise database if missing.
 * *location (may be NULL) receives where the data lives, without credentials. FT_ENOTFOUND when
 * an Enterprise database does not exist and create is 0. The caller PQfinish()es. With out NULL,
 * only fills *location. */
int ft_tenant_db_open(const ft_tenant_db_config_t *cfg, const char *tier, const char *instance_id, const char *product, int create,
                      PGconn **out, json_t **location, ft_error_t *err);

/* Archives then drops an Enterprise instance's database (if it exists). */
int ft_tenant_db_drop(const ft_tenant_db_config_t *cfg, const char *instance_id, ft_error_t *err);

/* Archives a Standard instance's rows of `schema` (one CSV per table). Before its deprovision steps. */
int ft_tenant_db_archive_rows(const ft_tenant_db_config_t *cfg, PGconn *c, const char *schema, const char *instance_id,
                              ft_error_t *err);

/* Deletes archives older than the retention. */
void ft_tenant_db_prune_archives(const ft_tenant_db_config_t *cfg);

#endif
