/*
 * The pooled tenant databases (ft_tenant_databases) and the placement of Standard instances on
 * them. Their URLs carry credentials: they are read only to connect (ft_tenant_database_url_of)
 * and never appear in a representation, which shows display_url instead.
 */
#ifndef FT_TENANT_DATABASE_STORE_H
#define FT_TENANT_DATABASE_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "domain/placement.h"

/* The name of the pooled database of FT_TENANT_DATABASE_URL. */
#define FT_TENANT_DATABASE_DEFAULT "default"

/* At start: writes the default database's row from the configuration (URL and capacity) and
 * places the Standard instances that have no placement yet (created before pooled databases
 * existed, or written by hand) there, in one statement; *placed says how many. Idempotent;
 * blocking. Does nothing in a schema without ft_tenant_databases. */
int ft_tenant_database_register_default(PGconn *c, const char *url, const char *display_url, unsigned capacity, unsigned long long *placed,
                                        ft_error_t *err);

/* Each returns FT_OK with *out (json_decref) or a negative code with `problem` filled for what
 * the caller caused, or `err` for internal failures. */
int ft_tenant_database_list(PGconn *c, const char *policy, json_t **out, ft_error_t *err);
int ft_tenant_database_get(PGconn *c, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_tenant_database_create(PGconn *c, const char *name, const char *url, const char *display_url, long long capacity,
                              json_t **out, ft_problem_t *problem, ft_error_t *err);
/* capacity < 0 and status NULL leave them as they are. */
int ft_tenant_database_update(PGconn *c, const char *id, long long capacity, const char *status, json_t **out,
                              ft_problem_t *problem, ft_error_t *err);
int ft_tenant_database_delete(PGconn *c, const char *id, ft_problem_t *problem, ft_error_t *err);

/* Inside the caller's transaction: locks every open pooled database (so concurrent placements
 * take turns and cannot both take a last slot; the locks last until the caller's commit), reads
 * their live instance counts, picks one by the policy and places the instance there (as
 * {"database_id", "database_name"} in *placement, json_decref). All full (or none open): 409
 * pooled-capacity-exhausted naming each open database's load. */
int ft_tenant_database_place(PGconn *c, const char *instance_id, ft_placement_policy_t policy, json_t **placement,
                             ft_problem_t *problem, ft_error_t *err);

/* The URL (with credentials) of the pooled database an instance is placed on, in *url
 * (free()), or NULL when it has none (Enterprise, or not placed yet: the default database). */
int ft_tenant_database_url_of(PGconn *c, const char *instance_id, char **url, ft_error_t *err);

#endif
