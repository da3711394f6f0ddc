/*
 * The four products' lifecycle steps against a real PostgreSQL, through the same runtime the
 * host uses: provision twice (idempotent) for two Standard tenants in one shared database and
 * for an Enterprise instance in its own database; row-level security keeps the tenants apart;
 * suspend, resume and features-changed run; deprovision removes one tenant and nothing else.
 *
 * Needs FT_TEST_DATABASE_URL (a superuser URL) and FT_TEST_PRODUCTS_DIR.
 */
#include "ft_test.h"
#include "infra/db_pool.h"
#include "plugins/invoke.h"
#include "plugins/loader.h"
#include "plugins/validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *tenant_a = "0a0a0a0a-0000-4000-8000-00000000000a";
static const char *tenant_b = "0b0b0b0b-0000-4000-8000-00000000000b";
static const char *silo_id = "05105105-0000-4000-8000-000000000051";

/* Entitlements: everything the product's last (largest) plan grants. */
static int plan_entitlement(void *arg, const char *code, int64_t *value)
{
    const ft_product_t *p = arg;
    const ft_plan_t *plan = &p->plans[p->nplans - 1];
    for (size_t i = 0; i < plan->nitems; i++) {
        if (strcmp(plan->items[i].feature, code) == 0) {
            *value = plan->items[i].value;
            return 1;
        }
    }
    return 0;
}

static PGconn *connect_db(const char *dbname)
{
    char url[512];
    const char *base = getenv("FT_TEST_DATABASE_URL");
    const char *slash = strrchr(base, '/');
    snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - base), base, dbname);
    ft_error_t err = {0};
    PGconn *c = ft_db_connect(url, "test_products", &err);
    if (c == NULL)
        fprintf(stderr, "  %s\n", err.message);
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "  SQL failed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    CHECK(ok);
}

static long scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atol(PQgetvalue(r, 0, 0)) : -1;
    if (v < 0)
        fprintf(stderr, "  query failed: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

static int run_lifecycle(const ft_product_t *p, PGconn *conn, int tier, const char *instance, uint32_t lifecycle)
{
    char settings[256];
    snprintf(settings, sizeof(settings), "{\"admin_email\":\"admin-%.8s@example.test\",\"admin_name\":\"Ada Admin\"}", instance);
    ft_invocation_t inv = {.product = p,
                           .conn = conn,
                           .instance_id = instance,
                           .instance_code = "main",
                           .customer_id = "c0c0c0c0-0000-4000-8000-0000000000c0",
                           .tier = tier,
                           .settings_json = settings,
                           .entitlement = plan_entitlement,
                           .entitlement_arg = (void *)p,
                           .log_id = "test"};
    int steps = 0;
    for (size_t i = 0; i < p->nsteps; i++) {
        if (p->steps[i].lifecycle != lifecycle)
            continue;
        ft_error_t err = {0};
        int rc = ft_invoke_step(&inv, &p->steps[i], &err);
        if (rc != FTP_OK)
            fprintf(stderr, "  %s %s step %s: %d %s\n", p->code, ft_lifecycle_name(lifecycle), p->steps[i].name, rc, err.message);
        json_decref(inv.events);
        inv.events = NULL;
        CHECK_INT(FTP_OK, rc);
        steps++;
    }
    return steps;
}

/* Rows of `tenant` across every table of the product schema, as `session_tenant` under RLS
 * (session_tenant NULL: as the superuser, no RLS). */
static long tenant_rows(PGconn *c, const char *schema, const char *tenant, const char *session_tenant)
{
    char sql[4096];
    snprintf(sql, sizeof(sql),
             "SELECT string_agg(format('SELECT count(*) AS n FROM %%I.%%I WHERE tenant_id = %%L', table_schema, table_name,"
             " '%s'), ' UNION ALL ') FROM information_schema.columns WHERE table_schema = '%s' AND column_name = 'tenant_id'",
             tenant, schema);
    PGresult *r = PQexec(c, sql);
    CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
    char *unions = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    CHECK(strlen(unions) > 0);
    exec_ok(c, "BEGIN");
    if (session_tenant != NULL) {
        snprintf(sql, sizeof(sql), "SET LOCAL farutech.tenant_id = '%s'; SET LOCAL ROLE " FT_TENANT_ROLE, session_tenant);
        exec_ok(c, sql);
    }
    char *q = malloc(strlen(unions) + 64);
    sprintf(q, "SELECT sum(n) FROM (%s) t", unions);
    long n = scalar(c, q);
    exec_ok(c, "COMMIT");
    free(q);
    free(unions);
    return n;
}

static void product_lifecycle(const char *code)
{
    const char *dir = getenv("FT_TEST_PRODUCTS_DIR");
    CHECK(dir != NULL && getenv("FT_TEST_DATABASE_URL") != NULL);
    char path[1024], runtime[] = "/tmp/ft_test_products_XXXXXX";
    snprintf(path, sizeof(path), "%s/%s.so", dir, code);
    CHECK(mkdtemp(runtime) != NULL);

    ft_loaded_t loaded;
    ft_error_t err = {0};
    CHECK_INT(FT_OK, ft_plugin_load(path, runtime, 1, &loaded, &err));
    const ft_product_t *p = loaded.product;
    CHECK_INT(FT_OK, ft_product_validate(p, path, &err));
    CHECK_INT(FTP_OK, p->init(ft_host_api()));

    /* databases of our own: a shared (pooled) one and an Enterprise one */
    PGconn *admin = connect_db("farutech");
    CHECK(admin != NULL);
    char pooled_db[64], silo_db[64], sql[256];
    snprintf(pooled_db, sizeof(pooled_db), "pooled_%s_%d", code, (int)getpid());
    snprintf(silo_db, sizeof(silo_db), "silo_%s_%d", code, (int)getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pooled_db);
    exec_ok(admin, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", silo_db);
    exec_ok(admin, sql);

    PGconn *pooled = connect_db(pooled_db);
    CHECK(pooled != NULL);
    CHECK_INT(FT_OK, ft_tenant_db_prepare(pooled, &err));
    for (int round = 0; round < 2; round++) { /* twice: steps are idempotent */
        CHECK(run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_a, FTP_LIFECYCLE_PROVISION) >= 3);
        run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_b, FTP_LIFECYCLE_PROVISION);
    }
    long a_rows = tenant_rows(pooled, code, tenant_a, NULL);
    long b_rows = tenant_rows(pooled, code, tenant_b, NULL);
    CHECK(a_rows >= 3); /* admin, state, reference data */
    CHECK_INT(a_rows, b_rows);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.users WHERE tenant_id = '%s' AND role = 'admin'", code, tenant_a);
    CHECK_INT(1, scalar(pooled, sql));
    /* row-level security: tenant B's session sees none of A's rows, A's sees all of them */
    CHECK_INT(0, tenant_rows(pooled, code, tenant_a, tenant_b));
    CHECK_INT(a_rows, tenant_rows(pooled, code, tenant_a, tenant_a));

    CHECK(run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_a, FTP_LIFECYCLE_SUSPEND) >= 1);
    CHECK(run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_a, FTP_LIFECYCLE_RESUME) >= 1);
    CHECK(run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_a, FTP_LIFECYCLE_FEATURES_CHANGED) >= 1);
    for (int round = 0; round < 2; round++)
        CHECK(run_lifecycle(p, pooled, FTP_TIER_STANDARD, tenant_a, FTP_LIFECYCLE_DEPROVISION) >= 1);
    CHECK_INT(0, tenant_rows(pooled, code, tenant_a, NULL));
    CHECK(tenant_rows(pooled, code, tenant_b, NULL) >= b_rows);
    PQfinish(pooled);

    PGconn *silo = connect_db(silo_db);
    CHECK(silo != NULL);
    CHECK_INT(FT_OK, ft_tenant_db_prepare(silo, &err));
    for (int round = 0; round < 2; round++)
        CHECK(run_lifecycle(p, silo, FTP_TIER_ENTERPRISE, silo_id, FTP_LIFECYCLE_PROVISION) >= 3);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.users WHERE role = 'admin'", code);
    CHECK_INT(1, scalar(silo, sql));
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM information_schema.columns WHERE table_schema = '%s' AND column_name = 'tenant_id'", code);
    CHECK_INT(0, scalar(silo, sql));
    CHECK(run_lifecycle(p, silo, FTP_TIER_ENTERPRISE, silo_id, FTP_LIFECYCLE_FEATURES_CHANGED) >= 1);
    CHECK(run_lifecycle(p, silo, FTP_TIER_ENTERPRISE, silo_id, FTP_LIFECYCLE_DEPROVISION) >= 1);
    PQfinish(silo);

    snprintf(sql, sizeof(sql), "DROP DATABASE %s", pooled_db);
    exec_ok(admin, sql);
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", silo_db);
    exec_ok(admin, sql);
    PQfinish(admin);
    p->fini();
    ft_plugin_unload(&loaded);
    rmdir(runtime);
}

TEST(vet_lifecycle_in_both_tiers)
{
    product_lifecycle("vet");
}

TEST(erp_lifecycle_in_both_tiers)
{
    product_lifecycle("erp");
}

TEST(crm_lifecycle_in_both_tiers)
{
    product_lifecycle("crm");
}

TEST(pos_lifecycle_in_both_tiers)
{
    product_lifecycle("pos");
}

RUN_TESTS(TEST_ENTRY(vet_lifecycle_in_both_tiers), TEST_ENTRY(erp_lifecycle_in_both_tiers), TEST_ENTRY(crm_lifecycle_in_both_tiers),
          TEST_ENTRY(pos_lifecycle_in_both_tiers))
