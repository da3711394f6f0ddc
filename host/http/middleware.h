/*
 * The request pipeline. Every request gets a request id and a route (or a 404/405 problem).
 * Routes flagged FT_ROUTE_CHAIN then pass the stages in order: authenticate, rate limit,
 * decode the JSON body; then the handler; the audit stage sees every response.
 */
#ifndef FT_MIDDLEWARE_H
#define FT_MIDDLEWARE_H

#include "http/request.h"

typedef enum {
    FT_STAGE_NEXT, /* go on to the next stage */
    FT_STAGE_HALT, /* the stage answered, or will call ft_pipeline_next() when its deferred work is done */
} ft_stage_result_t;

typedef ft_stage_result_t (*ft_stage_fn)(ft_req_t *r);

/* Routes the request and runs its pipeline. */
void ft_pipeline_begin(ft_req_t *r);
/* Resumes the stages after a stage returned FT_STAGE_HALT without answering. */
void ft_pipeline_next(ft_req_t *r);
/* Called once, as the response status is fixed. */
void ft_middleware_on_response(ft_req_t *r);

#endif
