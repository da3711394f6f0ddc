/*
 * Entitlements for a request: from this process's cache when a fresh record is there (on the
 * loop thread, no database), otherwise resolved by one of the entitlement readers (the lane of
 * FT_ENTITLEMENT_READERS threads, each with its own connection; the request pool when 0). Shared by the REST
 * entitlements route and OFREP.
 */
#ifndef FT_ENT_LOOKUP_H
#define FT_ENT_LOOKUP_H

#include "core/problem.h"
#include "domain/entitlements.h"
#include "http/request.h"
#include "store/scope.h"

/* Called once, on the request's thread, only while the request is alive. The record is
 * released after found returns. */
typedef void (*ft_ent_found_fn)(ft_req_t *r, ft_entitlements_t *e, void *arg);
/* problem->status is 0 for internal failures (then err says why). */
typedef void (*ft_ent_failed_fn)(ft_req_t *r, ft_problem_t *problem, const ft_error_t *err, void *arg);

/* arg (malloc'd or NULL) is freed with free() after found or failed. */
void ft_ent_lookup(ft_req_t *r, const char *instance_id, ft_ent_found_fn found, ft_ent_failed_fn failed, void *arg);

/* The caller as the stores see it (principal, scope, request id); strings borrowed from r. */
void ft_req_call(ft_req_t *r, ft_call_t *call);
/* 1 when If-None-Match names etag (or is *). */
int ft_etag_matches(ft_req_t *r, const char *etag);
int64_t ft_now_us(void);

#endif
