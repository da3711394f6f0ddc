/*
 * Whether a product action may run on an instance now: the one check behind a synchronous call,
 * the queuing of an action job and the run of that job (the product may have been reloaded,
 * the instance suspended or a feature switched off since it was queued).
 */
#ifndef FT_ACTION_RULES_H
#define FT_ACTION_RULES_H

#include <jansson.h>

#include "plugins/registry.h"

typedef enum {
    FT_ACTION_ALLOWED = 0,
    FT_ACTION_UNKNOWN,       /* the product has no action of that name */
    FT_ACTION_NOT_ACTIVE,    /* the instance is not active */
    FT_ACTION_BAD_INPUT,     /* the input does not satisfy the action's schema (see errors) */
    FT_ACTION_NOT_ENTITLED,  /* the instance's entitlements lack the action's required feature */
    FT_ACTION_LOOKUP_FAILED, /* the entitlement lookup failed; the caller's callback kept why */
} ft_action_verdict_t;

typedef struct ft_action_check {
    const ft_action_t *action; /* the action, found unless FT_ACTION_UNKNOWN */
    const char *feature;       /* FT_ACTION_NOT_ENTITLED: the feature it needs */
    json_t *errors;            /* FT_ACTION_BAD_INPUT: the violations; the caller releases them */
} ft_action_check_t;

/* 1: the feature is on, 0: off, negative: the lookup failed. */
typedef int (*ft_action_entitled_fn)(void *arg, const char *feature);

/* Checks, in this order: the action exists in g, the instance is active, input satisfies the
 * action's schema (defaults filled into input), the required feature is on (asked of entitled
 * only when the action needs one). Fills out; returns the first rule broken. */
ft_action_verdict_t ft_action_check(const ft_generation_t *g, const char *name, const char *instance_status, json_t *input,
                                    ft_action_entitled_fn entitled, void *arg, ft_action_check_t *out);

#endif
