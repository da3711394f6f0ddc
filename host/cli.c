/*
 * create-admin and create-api-key. Both write through the same stores as the API, with the
 * audit row in the same transaction, the actor being "cli:<login name>".
 */
#include "cli.h"

#include "auth/crypto.h"
#include "auth/identity.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "domain/trace.h"
#include "infra/db_pool.h"
#include "store/audit_store.h"
#include "store/credential_store.h"
#include "store/sql.h"
#include "store/user_store.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *value_of(int argc, char **argv, int *i, const char *flag)
{
    size_t n = strlen(flag);
    if (strcmp(argv[*i], flag) == 0 && *i + 1 < argc)
        return argv[++*i];
    if (strncmp(argv[*i], flag, n) == 0 && argv[*i][n] == '=')
        return argv[*i] + n + 1;
    return NULL;
}

static void actor_name(char *out, size_t len)
{
    struct passwd *pw = getpwuid(getuid());
    snprintf(out, len, "cli:%s", pw != NULL ? pw->pw_name : "unknown");
}

static PGconn *connect_db(ft_app_t *app)
{
    ft_error_t err = {0};
    PGconn *c = ft_db_connect(app->config.database_url, "farutech-cli", &err);
    if (c == NULL)
        fprintf(stderr, "farutech-host: %s\n", err.message);
    return c;
}

static int audit_and_commit(PGconn *c, const char *actor, const char *action, const char *type, const char *id, const char *customer,
                            ft_error_t *err)
{
    ft_audit_entry_t e = {.actor = actor, .action = action, .entity_type = type, .entity_id = id, .customer_id = customer,
                          .result = "success"};
    int rc = ft_audit_write(c, &e, err);
    if (rc == FT_OK)
        rc = ft_sql_outer_end(c, 1, err);
    else
        ft_sql_outer_end(c, 0, err);
    return rc;
}

int ft_cli_create_admin(ft_app_t *app, int argc, char **argv)
{
    const char *email = NULL, *name = NULL, *v;
    for (int i = 0; i < argc; i++) {
        if ((v = value_of(argc, argv, &i, "--email")) != NULL)
            email = v;
        else if ((v = value_of(argc, argv, &i, "--name")) != NULL)
            name = v;
        else {
            fprintf(stderr, "farutech-host create-admin: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (email == NULL || strchr(email, '@') == NULL) {
        fprintf(stderr, "farutech-host create-admin: --email ADDRESS is required\n");
        return 2;
    }
    char password[1100] = "";
    const char *env = getenv("FT_ADMIN_PASSWORD");
    if (env != NULL) {
        snprintf(password, sizeof(password), "%s", env);
    } else if (fgets(password, sizeof(password), stdin) != NULL) {
        password[strcspn(password, "\r\n")] = '\0';
    }
    if (strlen(password) < 12 || strlen(password) > 1024) {
        fprintf(stderr, "farutech-host create-admin: the password (FT_ADMIN_PASSWORD or the first line of standard input) must "
                        "have 12 to 1024 characters\n");
        return 2;
    }
    ft_error_t err = {0};
    char hash[FT_PASSWORD_HASH_MAX], actor[96];
    if (ft_password_hash(password, hash, sizeof(hash), &err) != FT_OK) {
        fprintf(stderr, "farutech-host create-admin: %s\n", err.message);
        return 1;
    }
    memset(password, 0, sizeof(password));
    actor_name(actor, sizeof(actor));
    PGconn *c = connect_db(app);
    if (c == NULL)
        return 1;
    ft_trace_t trace; /* the command is the root of its own trace */
    ft_trace_begin(&trace, NULL, 0);
    ft_call_t call = {.actor = actor, .correlation_id = "cli", .traceparent = trace.traceparent};
    json_t *in = json_pack("{s:s, s:s?, s:[s]}", "email", email, "display_name", name, "roles", "platform-admin");
    json_t *out = NULL;
    ft_problem_t problem = {0};
    int rc = ft_sql_outer_begin(c, &err);
    if (rc == FT_OK)
        rc = ft_user_create(c, &call, in, hash, &out, &problem, &err);
    if (rc == FT_OK)
        rc = audit_and_commit(c, actor, "user.create", "user", json_string_value(json_object_get(out, "id")), NULL, &err);
    else
        ft_sql_outer_end(c, 0, &err);
    if (rc == FT_OK)
        printf("created platform admin %s (%s)\n", email, json_string_value(json_object_get(out, "id")));
    else
        fprintf(stderr, "farutech-host create-admin: %s\n", problem.status ? problem.detail : err.message);
    json_decref(in);
    json_decref(out);
    ft_problem_clear(&problem);
    PQfinish(c);
    return rc == FT_OK ? 0 : 1;
}

int ft_cli_create_api_key(ft_app_t *app, int argc, char **argv)
{
    const char *name = NULL, *customer = NULL, *instance = NULL, *v;
    json_t *roles = json_array();
    for (int i = 0; i < argc; i++) {
        if ((v = value_of(argc, argv, &i, "--name")) != NULL)
            name = v;
        else if ((v = value_of(argc, argv, &i, "--role")) != NULL)
            json_array_append_new(roles, json_string(v));
        else if ((v = value_of(argc, argv, &i, "--customer")) != NULL)
            customer = v;
        else if ((v = value_of(argc, argv, &i, "--instance")) != NULL)
            instance = v;
        else {
            fprintf(stderr, "farutech-host create-api-key: unknown argument %s\n", argv[i]);
            json_decref(roles);
            return 2;
        }
    }
    if (name == NULL || ft_roles_from_json(roles) == 0 || (customer != NULL && !ft_uuid_valid(customer)) ||
        (instance != NULL && !ft_uuid_valid(instance))) {
        fprintf(stderr, "farutech-host create-api-key: --name NAME and at least one known --role are required; --customer and "
                        "--instance take UUIDs\n");
        json_decref(roles);
        return 2;
    }
    char *full = NULL, prefix[FT_API_KEY_PREFIX_LEN + 1], actor[96];
    unsigned char hash[32];
    ft_error_t err = {0};
    if (ft_api_key_make(&full, prefix, hash, &err) != FT_OK) {
        fprintf(stderr, "farutech-host create-api-key: %s\n", err.message);
        json_decref(roles);
        return 1;
    }
    actor_name(actor, sizeof(actor));
    PGconn *c = connect_db(app);
    if (c == NULL) {
        free(full);
        json_decref(roles);
        return 1;
    }
    ft_trace_t trace; /* the command is the root of its own trace */
    ft_trace_begin(&trace, NULL, 0);
    ft_call_t call = {.actor = actor, .correlation_id = "cli", .traceparent = trace.traceparent};
    json_t *in = json_pack("{s:s, s:o, s:s?, s:s?}", "name", name, "roles", roles, "customer_id", customer, "instance_id", instance);
    json_t *out = NULL;
    ft_problem_t problem = {0};
    int rc = ft_sql_outer_begin(c, &err);
    if (rc == FT_OK)
        rc = ft_api_key_create(c, &call, in, prefix, hash, &out, &problem, &err);
    if (rc == FT_OK)
        rc = audit_and_commit(c, actor, "api_key.create", "api_key", json_string_value(json_object_get(out, "id")),
                              json_string_value(json_object_get(out, "customer_id")), &err);
    else
        ft_sql_outer_end(c, 0, &err);
    if (rc == FT_OK)
        printf("%s\n", full);
    else
        fprintf(stderr, "farutech-host create-api-key: %s\n", problem.status ? problem.detail : err.message);
    memset(full, 0, strlen(full));
    free(full);
    json_decref(in);
    json_decref(out);
    ft_problem_clear(&problem);
    PQfinish(c);
    return rc == FT_OK ? 0 : 1;
}
