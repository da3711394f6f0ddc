/*
 * JSON line logger. Lines are built with jansson (or, for the hot access line, from fields
 * known to need no escaping) and written whole, so lines from threads never interleave.
 */
#include "infra/log.h"

#include "core/append.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_BUF_SIZE (64 * 1024)

static int min_level = FT_LOG_INFO;
static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

typedef struct log_buf {
    size_t used;
    time_t cached_sec;
    char cached_prefix[32]; /* "2026-11-23T10:00:00" */
    char data[LOG_BUF_SIZE];
} log_buf_t;

static _Thread_local log_buf_t *tls_buf;

static int log_fd = STDOUT_FILENO;

void ft_log_init(int level)
{
    min_level = level;
}

void ft_log_to_stderr(void)
{
    log_fd = STDERR_FILENO;
}

int ft_log_enabled(int level)
{
    return level >= min_level;
}

static void write_all(const char *p, size_t n)
{
    pthread_mutex_lock(&write_mutex);
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w <= 0)
            break;
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_mutex);
}

void ft_log_flush(void)
{
    if (tls_buf != NULL && tls_buf->used != 0) {
        write_all(tls_buf->data, tls_buf->used);
        tls_buf->used = 0;
    }
}

void ft_log_buffer_begin(void)
{
    if (tls_buf == NULL)
        tls_buf = ft_mem_calloc(1, sizeof(*tls_buf));
}

void ft_log_buffer_end(void)
{
    ft_log_flush();
    free(tls_buf);
    tls_buf = NULL;
}

/* Emits one complete line: buffered on loop threads (errors flush at once), direct elsewhere. */
static void emit(int level, const char *line, size_t len)
{
    if (tls_buf == NULL) {
        write_all(line, len);
        return;
    }
    if (tls_buf->used + len > LOG_BUF_SIZE)
        ft_log_flush();
    if (len > LOG_BUF_SIZE) {
        write_all(line, len);
        return;
    }
    memcpy(tls_buf->data + tls_buf->used, line, len);
    tls_buf->used += len;
    if (level >= FT_LOG_ERROR)
        ft_log_flush();
}

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (at least 25 bytes). */
static void format_time(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char prefix[32];
    const char *p;
    if (tls_buf != NULL && tls_buf->cached_sec == ts.tv_sec) {
        p = tls_buf->cached_prefix;
    } else {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(prefix, sizeof(prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        if (tls_buf != NULL) {
            memcpy(tls_buf->cached_prefix, prefix, sizeof(prefix));
            tls_buf->cached_sec = ts.tv_sec;
        }
        p = prefix;
    }
    int ms = (int)(ts.tv_nsec / 1000000) % 1000;
    size_t n = strnlen(p, 19);
    if (len < n + 6) {
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

void ft_log_json(int level, json_t *fields)
{
    if (level < min_level) {
        json_decref(fields);
        return;
    }
    char ts[40];
    format_time(ts, sizeof(ts));
    json_t *line = json_pack("{s:s, s:s}", "time", ts, "level", level_names[level]);
    json_object_update(line, fields);
    json_decref(fields);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(line);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves the terminator; replace it and write n+1 bytes */
    emit(level, text, n + 1);
    free(text);
}

/* jansson only accepts UTF-8; a message that is not (bytes from a peer, say) gets '?' for each bad byte. */
static json_t *string_or_sanitized(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    char *copy = ft_mem_strdup(s);
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

void ft_log_line(int level, const char *request_id, const char *trace_id, const char *product, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *fields = json_object();
    json_object_set_new(fields, "msg", string_or_sanitized(msg));
    if (request_id != NULL)
        json_object_set_new(fields, "request_id", string_or_sanitized(request_id));
    if (trace_id != NULL)
        json_object_set_new(fields, "trace_id", string_or_sanitized(trace_id));
    if (product != NULL)
        json_object_set_new(fields, "product", string_or_sanitized(product));
    ft_log_json(level, fields);
}

/* The access line is built with ft_put (core/append.h): it is written for every request. */
void ft_log_access(const char *request_id, const char *trace_id, const char *method, const char *route, int status,
                   uint64_t duration_ns)
{
    if (FT_LOG_INFO < min_level)
        return;
    char ts[40], line[560];
    format_time(ts, sizeof(ts));
    if (strlen(request_id) + strlen(method) + strlen(route) > 300 || (trace_id != NULL && strlen(trace_id) > 32))
        return; /* cannot happen: all four are bounded by their producers */
    uint64_t us = duration_ns / 1000;
    char *o = line;
    o = ft_put(o, "{\"time\":\"", 9);
    o = ft_put_str(o, ts);
    o = ft_put_str(o, "\",\"level\":\"info\",\"msg\":\"request\",\"request_id\":\"");
    o = ft_put_str(o, request_id);
    if (trace_id != NULL) {
        o = ft_put_str(o, "\",\"trace_id\":\"");
        o = ft_put_str(o, trace_id);
    }
    o = ft_put_str(o, "\",\"method\":\"");
    o = ft_put_str(o, method);
    o = ft_put_str(o, "\",\"route\":\"");
    o = ft_put_str(o, route);
    o = ft_put_str(o, "\",\"status\":");
    o = ft_put_u64(o, status < 0 ? 0 : (uint64_t)status);
    o = ft_put_str(o, ",\"duration_ms\":");
    o = ft_put_u64(o, us / 1000);
    *o++ = '.';
    *o++ = (char)('0' + (us % 1000) / 100);
    *o++ = (char)('0' + (us % 100) / 10);
    *o++ = (char)('0' + us % 10);
    o = ft_put(o, "}\n", 2);
    emit(FT_LOG_INFO, line, (size_t)(o - line));
}
