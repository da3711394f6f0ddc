/*
 * traceparent parsing and span ids (https://www.w3.org/TR/trace-context-1/).
 */
#include "domain/trace.h"

#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SAMPLED 0x01u

static int lower_hex(char c)
{
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Copies n lowercase hex digits into out (NUL-terminated); -1 when one is not, or all are zero. */
static int hex_field(const char *s, size_t n, char *out)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        if (lower_hex(s[i]) < 0)
            return -1;
        nonzero |= s[i] != '0';
        out[i] = s[i];
    }
    out[n] = '\0';
    return nonzero ? 0 : -1;
}

int ft_traceparent_parse(const char *s, size_t len, char trace_id[FT_TRACE_ID_LEN + 1], char parent_id[FT_SPAN_ID_LEN + 1],
                         unsigned *flags)
{
    /* version "-" trace-id "-" parent-id "-" flags, at fixed offsets */
    if (s == NULL || len < FT_TRACEPARENT_LEN)
        return -1;
    int v1 = lower_hex(s[0]), v2 = lower_hex(s[1]);
    if (v1 < 0 || v2 < 0 || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    unsigned version = (unsigned)(v1 * 16 + v2);
    if (version == 0xff)
        return -1;
    /* version 00 is exactly 55 characters; a later version may append fields after a dash, and
     * its first four fields are read as version 00's are (the spec's forward compatibility) */
    if (version == 0 ? len != FT_TRACEPARENT_LEN : len > FT_TRACEPARENT_LEN && s[FT_TRACEPARENT_LEN] != '-')
        return -1;
    int f1 = lower_hex(s[53]), f2 = lower_hex(s[54]);
    if (f1 < 0 || f2 < 0 || hex_field(s + 3, FT_TRACE_ID_LEN, trace_id) != 0 || hex_field(s + 36, FT_SPAN_ID_LEN, parent_id) != 0)
        return -1;
    *flags = (unsigned)(f1 * 16 + f2);
    return 0;
}

/* n random bytes as 2n lowercase hex digits, never all zero (an all-zero id is invalid). */
static void random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (RAND_bytes(b, (int)n) != 1) {
        /* ids need to be unique, not secret: a clock and a counter through splitmix64 */
        static atomic_uint_fast64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u;
        for (size_t i = 0; i < n; i++) {
            if (i % 8 == 0) {
                x += 0x9e3779b97f4a7c15u;
                x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
                x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
                x ^= x >> 31;
            }
            b[i] = (unsigned char)(x >> (i % 8 * 8));
        }
    }
    int nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero |= b[i] != 0;
    if (!nonzero)
        b[n - 1] = 1;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void ft_trace_begin(ft_trace_t *t, const char *parent, size_t len)
{
    char parent_id[FT_SPAN_ID_LEN + 1], span_id[FT_SPAN_ID_LEN + 1];
    unsigned flags;
    if (ft_traceparent_parse(parent, len, t->trace_id, parent_id, &flags) == 0) {
        /* the caller's sampling decision stands; version 00 defines no other flag, and flags it
         * does not define are passed on as zero */
        flags &= SAMPLED;
    } else {
        random_hex(t->trace_id, FT_TRACE_ID_LEN / 2);
        /* a root span decides: sampled, since the host records every request's events and log
         * lines, and a tracer downstream should keep the chain they start */
        flags = SAMPLED;
    }
    random_hex(span_id, FT_SPAN_ID_LEN / 2);
    snprintf(t->traceparent, sizeof(t->traceparent), "00-%s-%s-%02x", t->trace_id, span_id, flags);
}
