/*
 * JSON line logging to stdout. Threads that run an event loop buffer their lines and flush
 * on a timer (ft_log_flush), so a request costs no write(2); other threads write through.
 */
#ifndef FT_LOG_H
#define FT_LOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "infra/config.h" /* FT_LOG_* levels */

void ft_log_init(int min_level);
/* Sends log lines to standard error (commands whose standard output is their result). */
void ft_log_to_stderr(void);
int ft_log_enabled(int level);

/* One line {"time","level","msg"[,"request_id"][,"trace_id"][,"product"]}: request_id, trace_id
 * (32 hex digits) and product (a plugin's product code) may each be NULL. */
void ft_log_line(int level, const char *request_id, const char *trace_id, const char *product, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A line outside any trace and product: ft_log(level, request_id, fmt, ...). */
#define ft_log(level, request_id, ...) ft_log_line(level, request_id, NULL, NULL, __VA_ARGS__)
/* A line in a trace. */
#define ft_log_traced(level, request_id, trace_id, ...) ft_log_line(level, request_id, trace_id, NULL, __VA_ARGS__)
/* A line about a product. */
#define ft_log_product(level, request_id, product, ...) ft_log_line(level, request_id, NULL, product, __VA_ARGS__)

/* One line made of `fields` (the reference is stolen) plus "time" and "level". */
void ft_log_json(int level, json_t *fields);

/* The access line for one request. `method` must already be a safe token; trace_id (32 hex
 * digits) may be NULL. */
void ft_log_access(const char *request_id, const char *trace_id, const char *method, const char *route, int status,
                   uint64_t duration_ns);

/* Loop threads call begin once at start, flush from a timer and end before they exit. */
void ft_log_buffer_begin(void);
void ft_log_flush(void);
void ft_log_buffer_end(void);

#endif
