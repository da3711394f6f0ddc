/*
 * Catalog persistence. The generation is sent as one JSON document and spread into rows with
 * jsonb_to_recordset, so a sync is a handful of statements whatever the product's size.
 */
#include "store/catalog_store.h"

#include "core/mem.h"
#include "infra/db_pool.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *codes(char **c, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(c[i]));
    return a;
}

static char *document(const ft_product_t *p)
{
    json_t *modules = json_array(), *features = json_array(), *plans = json_array(), *items = json_array();
    for (size_t i = 0; i < p->nmodules; i++) {
        const ft_module_t *m = &p->modules[i];
        json_array_append_new(modules, json_pack("{s:s, s:s, s:s, s:o}", "code", m->code, "name", m->name, "description",
                                                 m->description ? m->description : "", "depends",
                                                 codes(m->depends, m->ndepends)));
    }
    for (size_t i = 0; i < p->nfeatures; i++) {
        const ft_feature_t *f = &p->features[i];
        json_array_append_new(features,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "code", f->code, "module", f->module, "name",
                                        f->name, "description", f->description ? f->description : "", "kind",
                                        f->kind == FTP_FEATURE_FLAG ? "flag" : "limit", "default_value",
                                        (json_int_t)f->default_value, "requires", codes(f->requires, f->nrequires), "unit",
                                        str_or_null(f->unit)));
    }
    for (size_t i = 0; i < p->nplans; i++) {
        const ft_plan_t *pl = &p->plans[i];
        json_array_append_new(plans, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "code", pl->code, "name", pl->name,
                                               "description", pl->description ? pl->description : "", "version",
                                               (int)pl->version, "trial_days", (int)pl->trial_days, "content_hash",
                                               pl->content_hash));
        for (size_t k = 0; k < pl->nitems; k++)
            json_array_append_new(items, json_pack("{s:s, s:i, s:s, s:I}", "plan", pl->code, "version", (int)pl->version,
                                                   "feature", pl->items[k].feature, "value", (json_int_t)pl->items[k].value));
    }
    json_t *doc = json_pack("{s:o, s:o, s:o, s:o}", "modules", modules, "features", features, "plans", plans, "plan_features",
                            items);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}

/* Runs one statement with text parameters; fills err with `what` on failure. */
static int run(PGconn *conn, const char *what, const char *sql, int n, const char *const *params, PGresult **out,
               ft_error_t *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int rc = ft_db_error(conn, res, err, what);
        PQclear(res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return FT_OK;
}

int ft_catalog_store_sync(PGconn *conn, const ft_generation_t *gen, ft_error_t *err)
{
    const ft_product_t *p = gen->product;
    char *doc = document(p);
    char generation[24], loaded_at[24], abi[16];
    snprintf(generation, sizeof(generation), "%llu", gen->number);
    snprintf(loaded_at, sizeof(loaded_at), "%lld", (long long)gen->loaded_at);
    snprintf(abi, sizeof(abi), "%u.%u", p->abi_major, p->abi_minor);
    int rc;
    PGresult *res = NULL;

    if ((rc = run(conn, "BEGIN", "BEGIN", 0, NULL, NULL, err)) != FT_OK)
        goto out;
    const char *prod[] = {p->code,   p->name,    p->description ? p->description : "", p->version, p->vendor, abi,
                          gen->loaded.file_hash, generation, p->settings_schema, loaded_at};
    if ((rc = run(conn, "upserting ft_products",
                  "INSERT INTO ft_products (code, name, description, plugin_version, vendor, abi, file_hash, generation,"
                  " settings_schema, loaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, to_timestamp($10))"
                  " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,"
                  " plugin_version = EXCLUDED.plugin_version, vendor = EXCLUDED.vendor, abi = EXCLUDED.abi,"
                  " file_hash = EXCLUDED.file_hash, generation = EXCLUDED.generation,"
                  " settings_schema = EXCLUDED.settings_schema, loaded_at = EXCLUDED.loaded_at, updated_at = now()",
                  10, prod, NULL, err)) != FT_OK)
        goto rollback;

    const char *pd[] = {p->code, doc};
    /* A plan version already recorded with other features means the plugin changed a plan
     * without bumping its version: subscriptions on that version would silently change. */
    if ((rc = run(conn, "checking plan versions",
                  "SELECT v.plan_code, v.version FROM ft_plan_versions v"
                  " JOIN jsonb_to_recordset($2::jsonb -> 'plans') AS x(code text, version int, content_hash text)"
                  "   ON x.code = v.plan_code AND x.version = v.version"
                  " WHERE v.product_code = $1 AND v.content_hash <> x.content_hash",
                  2, pd, &res, err)) != FT_OK)
        goto rollback;
    if (PQntuples(res) > 0) {
        rc = ft_error_set(err, FT_ECONFLICT,
                          "plan %s version %s already exists with other features; give the changed plan a new version",
                          PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
        PQclear(res);
        goto rollback;
    }
    PQclear(res);

    static const struct {
        const char *what, *sql;
    } steps[] = {
        {"upserting ft_modules",
         "INSERT INTO ft_modules (product_code, code, name, description, depends, retired_at)"
         " SELECT $1, m.code, m.name, m.description, m.depends, NULL"
         " FROM jsonb_to_recordset($2::jsonb -> 'modules') AS m(code text, name text, description text, depends text[])"
         " ON CONFLICT (product_code, code) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,"
         " depends = EXCLUDED.depends, retired_at = NULL"},
        {"retiring ft_modules",
         "UPDATE ft_modules SET retired_at = now() WHERE product_code = $1 AND retired_at IS NULL"
         " AND code NOT IN (SELECT m->>'code' FROM jsonb_array_elements($2::jsonb -> 'modules') AS m)"},
        {"upserting ft_features",
         "INSERT INTO ft_features (product_code, code, module_code, name, description, kind, default_value, requires, unit,"
         " retired_at)"
         " SELECT $1, f.code, f.module, f.name, f.description, f.kind, f.default_value, f.requires, f.unit, NULL"
         " FROM jsonb_to_recordset($2::jsonb -> 'features') AS f(code text, module text, name text, description text,"
         "  kind text, default_value bigint, requires text[], unit text)"
         " ON CONFLICT (product_code, code) DO UPDATE SET module_code = EXCLUDED.module_code, name = EXCLUDED.name,"
         " description = EXCLUDED.description, kind = EXCLUDED.kind, default_value = EXCLUDED.default_value,"
         " requires = EXCLUDED.requires, unit = EXCLUDED.unit, retired_at = NULL"},
        {"retiring ft_features",
         "UPDATE ft_features SET retired_at = now() WHERE product_code = $1 AND retired_at IS NULL"
         " AND code NOT IN (SELECT f->>'code' FROM jsonb_array_elements($2::jsonb -> 'features') AS f)"},
        {"upserting ft_plans",
         "INSERT INTO ft_plans (product_code, code, name, description, current_version, trial_days, retired_at)"
         " SELECT $1, p.code, p.name, p.description, p.version, p.trial_days, NULL"
         " FROM jsonb_to_recordset($2::jsonb -> 'plans') AS p(code text, name text, description text, version int,"
         "  trial_days int)"
         " ON CONFLICT (product_code, code) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,"
         " current_version = EXCLUDED.current_version, trial_days = EXCLUDED.trial_days, retired_at = NULL"},
        {"retiring ft_plans",
         "UPDATE ft_plans SET retired_at = now() WHERE product_code = $1 AND retired_at IS NULL"
         " AND code NOT IN (SELECT p->>'code' FROM jsonb_array_elements($2::jsonb -> 'plans') AS p)"},
        {"recording ft_plan_versions",
         "INSERT INTO ft_plan_versions (product_code, plan_code, version, content_hash)"
         " SELECT $1, p.code, p.version, p.content_hash"
         " FROM jsonb_to_recordset($2::jsonb -> 'plans') AS p(code text, version int, content_hash text)"
         " ON CONFLICT DO NOTHING"},
        {"recording ft_plan_features",
         "INSERT INTO ft_plan_features (product_code, plan_code, version, feature_code, value)"
         " SELECT $1, i.plan, i.version, i.feature, i.value"
         " FROM jsonb_to_recordset($2::jsonb -> 'plan_features') AS i(plan text, version int, feature text, value bigint)"
         " ON CONFLICT DO NOTHING"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if ((rc = run(conn, steps[i].what, steps[i].sql, 2, pd, NULL, err)) != FT_OK)
            goto rollback;
    rc = run(conn, "COMMIT", "COMMIT", 0, NULL, NULL, err);
    goto out;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
out:
    free(doc);
    return rc;
}

int ft_catalog_store_record_load(PGconn *conn, const char *product, const ft_generation_t *gen, const char *result,
                                 const char *reason, ft_error_t *err)
{
    char generation[24];
    snprintf(generation, sizeof(generation), "%llu", gen != NULL ? gen->number : 0ULL);
    const char *params[] = {product, gen != NULL ? generation : NULL, gen != NULL ? gen->product->version : NULL,
                            gen != NULL ? gen->loaded.file_hash : NULL, result, reason};
    return run(conn, "recording the plugin load",
               "INSERT INTO ft_plugin_loads (product_code, generation, plugin_version, file_hash, result, reason)"
               " VALUES ($1, $2, $3, $4, $5, $6)",
               6, params, NULL, err);
}
