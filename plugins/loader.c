/*
 * dlopen-side of the plugin runtime. The checks follow the ABI header's rules: magic, major
 * equal, minor not newer, the build signature, a descriptor at least as large as ABI 1.0's,
 * and the required callbacks present.
 */
#include "plugins/loader.h"

#include "core/mem.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hex(const unsigned char *d, unsigned n, char out[65])
{
    for (unsigned i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[64] = '\0';
}

/* Copies src to dst (created exclusively) while hashing it. */
static int copy_and_hash(const char *src, const char *dst, char hash[65], ft_error_t *err)
{
    int rc = FT_OK, in = -1, out = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = ft_error_set(err, FT_EIO, "cannot open %s: %s", src, strerror(errno));
        goto out;
    }
    if (dst != NULL && (out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0) {
        rc = ft_error_set(err, FT_EIO, "cannot create %s: %s", dst, strerror(errno));
        goto out;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0) {
            rc = ft_error_set(err, FT_EIO, "cannot read %s: %s", src, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
        for (ssize_t off = 0; out >= 0 && off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0) {
                rc = ft_error_set(err, FT_EIO, "cannot write %s: %s", dst, strerror(errno));
                goto out;
            }
            off += w;
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    hex(digest, dlen, hash);
out:
    EVP_MD_CTX_free(md);
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == FT_OK)
        rc = ft_error_set(err, FT_EIO, "cannot write %s: %s", dst, strerror(errno));
    if (rc != FT_OK && out >= 0)
        unlink(dst);
    return rc;
}

int ft_file_sha256(const char *path, char out[65], ft_error_t *err)
{
    return copy_and_hash(path, NULL, out, err);
}

static int check_header(const ftp_header_t *h, ft_error_t *err)
{
    if (h->magic != FTP_ABI_MAGIC)
        return ft_error_set(err, FT_EINVAL, "not a farutech plugin descriptor (bad magic 0x%08x)", h->magic);
    if (h->abi_major != FTP_ABI_MAJOR)
        return ft_error_set(err, FT_EINVAL, "built for ABI %u.%u; this host speaks ABI %d.x", h->abi_major, h->abi_minor,
                            FTP_ABI_MAJOR);
    if (h->abi_minor > FTP_ABI_MINOR)
        return ft_error_set(err, FT_EINVAL, "built for ABI %u.%u, newer than this host's %d.%d", h->abi_major, h->abi_minor,
                            FTP_ABI_MAJOR, FTP_ABI_MINOR);
    if (h->pointer_size != sizeof(void *) || h->byte_order != FTP_BYTE_ORDER)
        return ft_error_set(err, FT_EINVAL, "built for another platform (%u-byte pointers, byte order %u)", h->pointer_size,
                            h->byte_order);
    if (h->struct_size < FTP_PLUGIN_SIZE_1_0)
        return ft_error_set(err, FT_EINVAL, "descriptor is %u bytes, smaller than ABI 1.0's %zu", h->struct_size,
                            (size_t)FTP_PLUGIN_SIZE_1_0);
    /* every layout's size is a multiple of the pointer size: any other would cut a pointer in two */
    if (h->struct_size % sizeof(void *) != 0)
        return ft_error_set(err, FT_EINVAL, "descriptor is %u bytes, not a multiple of the pointer size", h->struct_size);
    return FT_OK;
}

int ft_plugin_descriptor_read(const ftp_plugin_t *raw, ftp_plugin_t *out, ft_error_t *err)
{
    int rc = check_header(&raw->header, err);
    if (rc != FT_OK)
        return rc;
    /* An older plugin's descriptor is shorter: what it lacks reads as zero. */
    memset(out, 0, sizeof(*out));
    memcpy(out, raw, raw->header.struct_size < sizeof(*out) ? raw->header.struct_size : sizeof(*out));
    if (out->init == NULL || out->fini == NULL)
        return ft_error_set(err, FT_EINVAL, "required callback %s is NULL", out->init == NULL ? "init" : "fini");
    if (out->product_code == NULL)
        return ft_error_set(err, FT_EINVAL, "product_code is NULL");
    return FT_OK;
}

int ft_plugin_load(const char *path, const char *runtime_dir, unsigned long long tag, ft_loaded_t *out, ft_error_t *err)
{
    memset(out, 0, sizeof(*out));
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    char *copy = ft_mem_asprintf("%s/%llu-%d-%s", runtime_dir, tag, (int)getpid(), base);
    int rc = copy_and_hash(path, copy, out->file_hash, err);
    if (rc != FT_OK) {
        free(copy);
        return rc;
    }
    void *h = dlopen(copy, RTLD_NOW | RTLD_LOCAL);
    unlink(copy); /* the mapping keeps the inode; nothing is left behind on a crash */
    if (h == NULL) {
        const char *why = dlerror();
        rc = ft_error_set(err, FT_EINVAL, "dlopen failed: %s", why != NULL ? why : "unknown error");
        free(copy);
        return rc;
    }
    ftp_entry_fn entry = (ftp_entry_fn)dlsym(h, FTP_ENTRY_SYMBOL);
    if (entry == NULL) {
        rc = ft_error_set(err, FT_EINVAL, "no %s symbol exported", FTP_ENTRY_SYMBOL);
        goto fail;
    }
    const ftp_plugin_t *raw = entry();
    if (raw == NULL) {
        rc = ft_error_set(err, FT_EINVAL, "%s returned NULL", FTP_ENTRY_SYMBOL);
        goto fail;
    }
    ftp_plugin_t desc;
    if ((rc = ft_plugin_descriptor_read(raw, &desc, err)) != FT_OK)
        goto fail;
    out->handle = h;
    out->loaded_path = copy;
    out->product = ft_product_copy(&desc);
    return FT_OK;
fail:
    dlclose(h);
    free(copy);
    return rc;
}

void ft_plugin_unload(ft_loaded_t *l)
{
    ft_product_free(l->product);
    l->product = NULL;
    if (l->handle != NULL)
        dlclose(l->handle);
    l->handle = NULL;
    free(l->loaded_path);
    l->loaded_path = NULL;
}
