/*
 * Loading one plugin file: copy it to a fresh path (glibc returns the cached image for a path
 * or inode it already has open), dlopen the copy with RTLD_NOW | RTLD_LOCAL, check the ABI
 * header, and deep-copy the descriptor.
 */
#ifndef FT_LOADER_H
#define FT_LOADER_H

#include "core/error.h"
#include "plugins/product.h"

typedef struct ft_loaded {
    void *handle;        /* dlopen handle */
    char *loaded_path;   /* the private copy (unlinked once mapped) */
    char file_hash[65];  /* SHA-256 of the file */
    ft_product_t *product;
} ft_loaded_t;

/* Loads `path`. `tag` makes the private copy's name unique (the generation number).
 * On failure nothing stays loaded and err says which check failed. */
int ft_plugin_load(const char *path, const char *runtime_dir, unsigned long long tag, ft_loaded_t *out, ft_error_t *err);
/* Checks a descriptor's ABI header, its required callbacks and product_code, and copies it into
 * *out as this host's ftp_plugin_t (what an older plugin's shorter descriptor lacks reads as
 * zero). FT_EINVAL with err saying which check failed. No dlopen: the fuzzer calls it too. */
int ft_plugin_descriptor_read(const ftp_plugin_t *raw, ftp_plugin_t *out, ft_error_t *err);

/* dlclose and free; the product must no longer be in use. */
void ft_plugin_unload(ft_loaded_t *l);

/* SHA-256 of a file, hex. */
int ft_file_sha256(const char *path, char out[65], ft_error_t *err);

#endif
