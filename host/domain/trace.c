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

/* The next 64 bits of this thread's generator: splitmix64 over a counter whose start is drawn
 * from the system's random source once per thread. Ids need to be unique and unguessable enough
 * to not collide, not secret: one RAND_bytes per id (two per request, each taking a lock and a
 * getpid in OpenSSL) cost more than the rest of a cached entitlement read. */
static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        if (RAND_bytes((unsigned char *)&state, sizeof(state)) != 1) {
            /* a clock and a process-wide counter: distinct per thread all the same */
            static atomic_uint_fast64_t counter;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u;
        }
        seeded = 1;
    }
    uint64_t x = (state += 0x9e3779b97f4a7c15u);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* n random bytes (n <= 16) as 2n lowercase hex digits, never all zero (an all-zero id is invalid). */
static void random_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            x = next_random();
        b[i] = (unsigned char)(x >> (i % 8 * 8));
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
    /* "00-<trace id>-<span id>-<flags>", put together by hand: it is built on every request */
    static const char hex[] = "0123456789abcdef";
    _Static_assert(sizeof(t->traceparent) >= FT_TRACEPARENT_LEN + 1, "traceparent fits");
    char *o = t->traceparent;
    memcpy(o, "00-", 3);
    memcpy(o + 3, t->trace_id, FT_TRACE_ID_LEN);
    o[3 + FT_TRACE_ID_LEN] = '-';
    memcpy(o + 4 + FT_TRACE_ID_LEN, span_id, FT_SPAN_ID_LEN);
    o[4 + FT_TRACE_ID_LEN + FT_SPAN_ID_LEN] = '-';
    o[5 + FT_TRACE_ID_LEN + FT_SPAN_ID_LEN] = hex[flags >> 4 & 15];
    o[6 + FT_TRACE_ID_LEN + FT_SPAN_ID_LEN] = hex[flags & 15];
    o[FT_TRACEPARENT_LEN] = '\0';
}
