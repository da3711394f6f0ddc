/*
 * Appending to a caller-sized buffer without printf: for the few texts built on every request
 * (the access log line, OFREP answers), where format parsing was a visible cost. The caller
 * sizes the buffer for the worst case; nothing here checks bounds.
 */
#ifndef FT_APPEND_H
#define FT_APPEND_H

#include <stdint.h>
#include <string.h>

static inline char *ft_put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static inline char *ft_put_str(char *o, const char *s)
{
    return ft_put(o, s, strlen(s));
}

static inline char *ft_put_u64(char *o, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *o++ = tmp[--n];
    return o;
}

static inline char *ft_put_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return ft_put_u64(o, (uint64_t)0 - (uint64_t)v);
    }
    return ft_put_u64(o, (uint64_t)v);
}

#endif
