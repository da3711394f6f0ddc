/*
 * The role table. Kept in code, not in the database: a role's meaning is part of the release
 * that enforces it, reviewed with the routes that name the permissions.
 */
#include "auth/rbac.h"

#include <string.h>

typedef struct role_def {
    unsigned role;
    const char *name;
    const char *const *grants; /* NULL-terminated; "*" grants everything */
} role_def_t;

static const char *const platform_admin[] = {"*", NULL};
static const char *const operator_[] = {
    "catalog:read",   "plugins:read",      "plugins:reload",      "hosts:read",      "customers:read",    "customers:create", "customers:update",
    "instances:read", "instances:create",  "instances:delete",    "subscriptions:read", "subscriptions:write",
    "subscriptions:manage", "actions:run", "overrides:read", "overrides:write",   "entitlements:read",   "jobs:read",         "dlq:read",         "dlq:write",
    "audit:read",     "users:read",        "api-keys:read",       "self:read",        "tenant-databases:read", NULL};
static const char *const product_manager[] = {"catalog:read",   "plugins:read",       "hosts:read",       "customers:read",    "instances:read",
                                              "subscriptions:read", "overrides:read", "overrides:write", "entitlements:read",
                                              "jobs:read",      "self:read",         NULL};
static const char *const customer_admin[] = {"catalog:read",       "customers:read",      "customers:update", "instances:read",
                                             "instances:create",   "instances:delete",    "subscriptions:read",
                                             "subscriptions:write", "overrides:read",     "entitlements:read", "jobs:read",
                                             "audit:read",         "users:read",          "users:write",      "api-keys:read",
                                             "api-keys:write",     "self:read",            "actions:run",      NULL};
static const char *const customer_viewer[] = {"catalog:read",       "customers:read", "instances:read", "subscriptions:read",
                                              "overrides:read",     "entitlements:read", "jobs:read",   "self:read", NULL};
static const char *const child_app[] = {"entitlements:read", "actions:run", "jobs:read", "self:read", NULL};

static const role_def_t roles[] = {
    {FT_ROLE_PLATFORM_ADMIN, "platform-admin", platform_admin},
    {FT_ROLE_OPERATOR, "operator", operator_},
    {FT_ROLE_PRODUCT_MANAGER, "product-manager", product_manager},
    {FT_ROLE_CUSTOMER_ADMIN, "customer-admin", customer_admin},
    {FT_ROLE_CUSTOMER_VIEWER, "customer-viewer", customer_viewer},
    {FT_ROLE_CHILD_APP, "child-app", child_app},
};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* Permissions routes may name (beyond those some role grants): staff-only ones held through "*". */
static const char *const admin_only[] = {"customers:delete", "users:write", "api-keys:write", "signing-keys:read",
                                         "signing-keys:write", "dev:use", "tenant-databases:write", NULL};

unsigned ft_role_parse(const char *name)
{
    for (size_t i = 0; name != NULL && i < NROLES; i++)
        if (strcmp(roles[i].name, name) == 0)
            return roles[i].role;
    return 0;
}

const char *ft_role_name(unsigned role)
{
    for (size_t i = 0; i < NROLES; i++)
        if (roles[i].role == role)
            return roles[i].name;
    return NULL;
}

const unsigned *ft_roles_all(size_t *n)
{
    static const unsigned all[] = {FT_ROLE_PLATFORM_ADMIN, FT_ROLE_OPERATOR,        FT_ROLE_PRODUCT_MANAGER,
                                   FT_ROLE_CUSTOMER_ADMIN, FT_ROLE_CUSTOMER_VIEWER, FT_ROLE_CHILD_APP};
    *n = sizeof(all) / sizeof(all[0]);
    return all;
}

static int listed(const char *const *list, const char *permission)
{
    for (; *list != NULL; list++)
        if (strcmp(*list, "*") == 0 || strcmp(*list, permission) == 0)
            return 1;
    return 0;
}

int ft_rbac_allows(unsigned held, const char *permission)
{
    if (permission == NULL)
        return 0;
    for (size_t i = 0; i < NROLES; i++)
        if ((held & roles[i].role) && listed(roles[i].grants, permission))
            return 1;
    return 0;
}

int ft_rbac_known(const char *permission)
{
    for (size_t i = 1; i < NROLES; i++) /* the admin's "*" would match anything */
        if (listed(roles[i].grants, permission))
            return 1;
    for (const char *const *p = admin_only; *p != NULL; p++)
        if (strcmp(*p, permission) == 0)
            return 1;
    return 0;
}
