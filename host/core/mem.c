/*
 * Allocation wrappers that abort on failure, so callers never test for NULL.
 */
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die_oom(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", size);
    if (write(STDERR_FILENO, msg, (size_t)n) < 0) {
        /* nothing left to do */
    }
    abort();
}

void *ft_mem_alloc(size_t size)
{
    void *p = malloc(size == 0 ? 1 : size);
    if (p == NULL)
        die_oom(size);
    return p;
}

void *ft_mem_calloc_aligned(size_t align, size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, align, size == 0 ? align : size) != 0)
        die_oom(size);
    memset(p, 0, size);
    return p;
}

void *ft_mem_calloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL)
        die_oom(n * size);
    return p;
}

void *ft_mem_realloc(void *p, size_t size)
{
    void *q = realloc(p, size == 0 ? 1 : size);
    if (q == NULL)
        die_oom(size);
    return q;
}

char *ft_mem_strdup(const char *s)
{
    return ft_mem_strndup(s, strlen(s));
}

char *ft_mem_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = ft_mem_alloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *ft_mem_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        die_oom(0);
    return out;
}
