/*
 * Allocation that never returns NULL: the process dies on allocation failure, as h2o_mem_alloc
 * and Redis' zmalloc do. Everything returned here is freed with free().
 */
#ifndef FT_MEM_H
#define FT_MEM_H

#include <stddef.h>

void *ft_mem_alloc(size_t size);
void *ft_mem_calloc(size_t n, size_t size);
void *ft_mem_realloc(void *p, size_t size);
/* size bytes aligned to `align` (a power of two, a multiple of sizeof(void *)), zeroed. */
void *ft_mem_calloc_aligned(size_t align, size_t size);
char *ft_mem_strdup(const char *s);
char *ft_mem_strndup(const char *s, size_t n);
/* printf into a fresh allocation; the caller frees. */
char *ft_mem_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
