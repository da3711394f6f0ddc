/*
 * Who is calling a store, and what they may reach. Every store query that reads or writes
 * tenant data filters by the scope in SQL, so a handler that forgets a check still cannot
 * reach another customer's rows. actor and correlation_id go into events and the audit log,
 * traceparent into events and jobs.
 */
#ifndef FT_SCOPE_H
#define FT_SCOPE_H

typedef struct ft_call {
    const char *customer_id;    /* NULL: every customer (platform staff) */
    const char *instance_id;    /* NULL: every instance the customer has */
    const char *actor;          /* "user:<id>", "key:<id>", "anonymous" */
    const char *correlation_id; /* the request id */
    const char *traceparent;    /* the request's span (W3C trace context), or NULL */
} ft_call_t;

#endif
