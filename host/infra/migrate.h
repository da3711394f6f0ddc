/*
 * Control-plane schema migrations: migrations/NNNN_name.sql, applied in order, each in its
 * own transaction, recorded in ft_schema_migrations, serialized across hosts by an advisory lock.
 */
#ifndef FT_MIGRATE_H
#define FT_MIGRATE_H

#include <libpq-fe.h>

#include "core/error.h"

typedef struct ft_migration {
    int version;
    char *name;     /* "0001_catalog" */
    char *path;
    char checksum[65]; /* hex SHA-256 of the file */
    char *sql;
} ft_migration_t;

typedef struct ft_migration_set {
    ft_migration_t *items;
    size_t count;
} ft_migration_set_t;

/* Reads and checks every *.sql in dir. A misnamed file or a repeated version is an error. */
int ft_migrations_load(const char *dir, ft_migration_set_t *set, ft_error_t *err);
void ft_migrations_free(ft_migration_set_t *set);

/* Applies what is pending. Blocking; *applied gets how many ran. On failure nothing of the
 * failing migration remains and err names it, with the line of the error when known. */
int ft_migrations_apply(PGconn *conn, const ft_migration_set_t *set, int *applied, ft_error_t *err);

/* FT_OK when every migration of the set is recorded as applied, FT_ESTATE otherwise. */
int ft_migrations_check(PGconn *conn, const ft_migration_set_t *set, ft_error_t *err);

#endif
