/*
 * Audit from the HTTP layer: rows for requests that end without running their work (refused,
 * invalid), written off the loop (GET /api/v1/audit is in audit_log.c).
 */
#ifndef FT_HTTP_AUDIT_H
#define FT_HTTP_AUDIT_H

#include "http/request.h"

/* Records the request's route action with `result` ("success", "denied", "failure") and a
 * reason (reason_fmt may be NULL). At most one row per request. */
void ft_audit_request(ft_req_t *r, const char *result, const char *reason_fmt, ...) __attribute__((format(printf, 3, 4)));

/* The entity type of an action: the part before the first dot, into out. */
void ft_audit_entity_type(const char *action, char *out, size_t len);

#endif
