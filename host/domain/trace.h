/*
 * W3C Trace Context (Level 1) for the host's spans: reading a traceparent and starting a span
 * in its trace, or in a new trace when there is none. A request is one span; each attempt of a
 * job is another, a child of the request's. Plain C: no SQL, no HTTP.
 */
#ifndef FT_TRACE_H
#define FT_TRACE_H

#include <stddef.h>

#define FT_TRACE_ID_LEN 32    /* hex digits of a trace id */
#define FT_SPAN_ID_LEN 16     /* hex digits of a span (parent) id */
#define FT_TRACEPARENT_LEN 55 /* "00-" trace id "-" span id "-" flags */

typedef struct ft_trace {
    char trace_id[FT_TRACE_ID_LEN + 1];
    char traceparent[FT_TRACEPARENT_LEN + 1]; /* "00-<trace_id>-<this span's id>-<flags>": what the span passes on */
} ft_trace_t;

/* Reads a traceparent value of len bytes (no terminator needed). 0 with the trace id, the parent
 * id (NUL-terminated lowercase hex) and the flags filled; -1 when the value is not valid: version
 * ff, uppercase or non-hex digits, an all-zero id, a version-00 value of another length, or a
 * later version whose first four fields do not read as version 00's do. */
int ft_traceparent_parse(const char *s, size_t len, char trace_id[FT_TRACE_ID_LEN + 1], char parent_id[FT_SPAN_ID_LEN + 1],
                         unsigned *flags);

/* Starts a span with a fresh random id: in the trace of `parent` (a traceparent value of len
 * bytes) when it is valid, else at the root of a new random trace. parent may be NULL. */
void ft_trace_begin(ft_trace_t *t, const char *parent, size_t len);

#endif
