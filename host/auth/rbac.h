/*
 * Roles and the permissions they grant. A permission is "resource:action"; every /api route
 * names the one it needs. Roles are a bit set so that a principal's check is one table walk
 * with no allocation. What a role reaches is narrowed further by the credential's scope (its
 * customer, its instance), which the stores enforce in SQL.
 */
#ifndef FT_RBAC_H
#define FT_RBAC_H

#include <stddef.h>

typedef enum {
    FT_ROLE_PLATFORM_ADMIN = 1u << 0,  /* everything */
    FT_ROLE_OPERATOR = 1u << 1,        /* runs the platform: customers, instances, jobs, DLQ, plugins */
    FT_ROLE_PRODUCT_MANAGER = 1u << 2, /* the catalogue and feature exceptions */
    FT_ROLE_CUSTOMER_ADMIN = 1u << 3,  /* one customer's own data, users and keys */
    FT_ROLE_CUSTOMER_VIEWER = 1u << 4, /* one customer's own data, read only */
    FT_ROLE_CHILD_APP = 1u << 5,       /* one instance's entitlements */
} ft_role_t;

#define FT_ROLES_STAFF (FT_ROLE_PLATFORM_ADMIN | FT_ROLE_OPERATOR | FT_ROLE_PRODUCT_MANAGER)
#define FT_ROLES_CUSTOMER (FT_ROLE_CUSTOMER_ADMIN | FT_ROLE_CUSTOMER_VIEWER)

/* The role named `name` ("platform-admin"), or 0. */
unsigned ft_role_parse(const char *name);
const char *ft_role_name(unsigned role);
/* Every role, in declaration order, for iteration: *n receives the count. */
const unsigned *ft_roles_all(size_t *n);

/* 1 when one of `roles` grants `permission`. */
int ft_rbac_allows(unsigned roles, const char *permission);
/* 1 when `permission` is one the table knows (routes are checked against it at start). */
int ft_rbac_known(const char *permission);

#endif
