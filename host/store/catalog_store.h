/*
 * The catalog's SQL: mirroring a loaded generation into ft_products, ft_modules, ft_features,
 * ft_plans, ft_plan_versions and ft_plan_features, and recording load attempts.
 */
#ifndef FT_CATALOG_STORE_H
#define FT_CATALOG_STORE_H

#include <libpq-fe.h>

#include "core/error.h"
#include "plugins/registry.h"

/* Upserts the generation's catalog in one transaction; what it no longer declares is retired.
 * Refuses (FT_ECONFLICT) a plan version whose features differ from the ones recorded for it. */
int ft_catalog_store_sync(PGconn *conn, const ft_generation_t *gen, ft_error_t *err);

/* Appends a row to ft_plugin_loads. gen may be NULL (failed attempt). */
int ft_catalog_store_record_load(PGconn *conn, const char *product, const ft_generation_t *gen, const char *result,
                                 const char *reason, ft_error_t *err);

#endif
