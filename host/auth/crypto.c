/*
 * Random bytes and tokens, base64url, SHA-256, constant-time comparison and argon2id password
 * hashing, over OpenSSL and libargon2. No primitive is implemented here; base64url is only a codec.
 */
#include "auth/crypto.h"

#include <argon2.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * argon2id costs: OWASP's Password Storage Cheat Sheet recommends "a minimum configuration of
 * 19 MiB of memory, an iteration count of 2, and 1 degree of parallelism" for argon2id, with a
 * 16-byte salt and a 32-byte hash (the lengths RFC 9106 §4 recommends). Raising them later is
 * safe: verification reads the costs from each stored string.
 */
enum {
    FT_ARGON2_M_COST_KIB = 19456,
    FT_ARGON2_T_COST = 2,
    FT_ARGON2_PARALLELISM = 1,
    FT_ARGON2_SALT_LEN = 16,
    FT_ARGON2_HASH_LEN = 32,
};

/* Costs a stored string may ask of ft_password_verify: far above ours, far below harmful. */
enum {
    FT_ARGON2_VERIFY_MAX_M_KIB = 256 * 1024,
    FT_ARGON2_VERIFY_MAX_T = 16,
    FT_ARGON2_VERIFY_MAX_P = 16,
    FT_ARGON2_VERIFY_MAX_ENCODED = 256,
};

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ft_random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
        if (RAND_bytes(p, chunk) != 1)
            return FT_EIO;
        p += chunk;
        len -= (size_t)chunk;
    }
    return FT_OK;
}

size_t ft_base64url_encode(const void *in, size_t len, char *out, size_t outcap)
{
    const unsigned char *s = in;
    if (len > (SIZE_MAX - 8) / 4 * 3 || out == NULL || outcap < FT_BASE64URL_LEN(len)) {
        if (out != NULL && outcap > 0)
            out[0] = '\0';
        return 0;
    }
    size_t i = 0, j = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[j++] = b64url_alphabet[v >> 18];
        out[j++] = b64url_alphabet[(v >> 12) & 63];
        out[j++] = b64url_alphabet[(v >> 6) & 63];
        out[j++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        out[j++] = b64url_alphabet[s[i] >> 2];
        out[j++] = b64url_alphabet[(s[i] & 3) << 4];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 8 | s[i + 1];
        out[j++] = b64url_alphabet[v >> 10];
        out[j++] = b64url_alphabet[(v >> 4) & 63];
        out[j++] = b64url_alphabet[(v & 15) << 2];
    }
    out[j] = '\0';
    return j;
}

/* The 6-bit value of a base64url character, or -1 (padding '=' included). */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int ft_base64url_decode(const char *in, size_t len, void *out, size_t outcap, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *o = out;
    size_t rem = len % 4, need = len / 4 * 3 + (rem == 0 ? 0 : rem - 1), i = 0, j = 0;

    if (outlen != NULL)
        *outlen = 0;
    if (rem == 1 || need > outcap || (len > 0 && (in == NULL || out == NULL)))
        return FT_EINVAL;
    for (; i + 4 <= len; i += 4) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]), c = b64url_value(s[i + 2]), d = b64url_value(s[i + 3]);
        if ((a | b | c | d) < 0)
            return FT_EINVAL;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        o[j++] = (unsigned char)(v >> 16);
        o[j++] = (unsigned char)(v >> 8);
        o[j++] = (unsigned char)v;
    }
    if (rem == 2) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]);
        if ((a | b) < 0 || (b & 15) != 0) /* 12 bits carry 8: the last 4 must be zero */
            return FT_EINVAL;
        o[j++] = (unsigned char)(a << 2 | b >> 4);
    } else if (rem == 3) {
        int a = b64url_value(s[i]), b = b64url_value(s[i + 1]), c = b64url_value(s[i + 2]);
        if ((a | b | c) < 0 || (c & 3) != 0) /* 18 bits carry 16: the last 2 must be zero */
            return FT_EINVAL;
        uint32_t v = (uint32_t)a << 12 | (uint32_t)b << 6 | (uint32_t)c;
        o[j++] = (unsigned char)(v >> 10);
        o[j++] = (unsigned char)(v >> 2);
    }
    if (outlen != NULL)
        *outlen = j;
    return FT_OK;
}

/* SHA-256 fetched once: an implicit fetch (EVP_sha256() in EVP_Digest) looks the algorithm up
 * in OpenSSL's shared store, under its lock, on every call — on every API key check. The
 * fetched method is kept for the life of the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void ft_sha256(const void *data, size_t len, unsigned char out[32])
{
    pthread_once(&sha256_once, fetch_sha256);
    /* EVP_Digest can only fail to allocate: treated like any allocation failure. */
    if (sha256_md == NULL || EVP_Digest(data, len, out, NULL, sha256_md, NULL) != 1)
        abort();
}

void ft_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    ft_sha256(data, len, md);
    for (size_t i = 0; i < sizeof(md); i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int ft_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int ft_random_token(char *out, size_t outcap, size_t nbytes)
{
    /* Drawn and encoded 48 bytes at a time: a multiple of 3, so the pieces concatenate. */
    unsigned char buf[48];
    size_t j = 0;

    if (out == NULL || nbytes > (SIZE_MAX - 8) / 4 * 3 || outcap < FT_BASE64URL_LEN(nbytes)) {
        if (out != NULL && outcap > 0)
            out[0] = '\0';
        return FT_EINVAL;
    }
    out[0] = '\0';
    while (nbytes > 0) {
        size_t n = nbytes < sizeof(buf) ? nbytes : sizeof(buf);
        if (ft_random_bytes(buf, n) != FT_OK) {
            OPENSSL_cleanse(buf, sizeof(buf));
            out[0] = '\0';
            return FT_EIO;
        }
        j += ft_base64url_encode(buf, n, out + j, outcap - j);
        nbytes -= n;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return FT_OK;
}

int ft_password_hash(const char *password, char *out, size_t outcap, ft_error_t *err)
{
    unsigned char salt[FT_ARGON2_SALT_LEN];

    if (out != NULL && outcap > 0)
        out[0] = '\0';
    if (password == NULL)
        return ft_error_set(err, FT_EINVAL, "password missing");
    size_t pwlen = strnlen(password, FT_PASSWORD_MAX_LEN + 1);
    if (pwlen > FT_PASSWORD_MAX_LEN)
        return ft_error_set(err, FT_EINVAL, "password is longer than %d bytes", FT_PASSWORD_MAX_LEN);
    size_t need = argon2_encodedlen(FT_ARGON2_T_COST, FT_ARGON2_M_COST_KIB, FT_ARGON2_PARALLELISM, FT_ARGON2_SALT_LEN,
                                    FT_ARGON2_HASH_LEN, Argon2_id);
    if (out == NULL || outcap < need)
        return ft_error_set(err, FT_EINVAL, "password hash buffer holds %zu bytes, %zu needed", outcap, need);
    if (ft_random_bytes(salt, sizeof(salt)) != FT_OK)
        return ft_error_set(err, FT_EIO, "random generator failed");
    int rc = argon2id_hash_encoded(FT_ARGON2_T_COST, FT_ARGON2_M_COST_KIB, FT_ARGON2_PARALLELISM, password, pwlen, salt,
                                   sizeof(salt), FT_ARGON2_HASH_LEN, out, outcap);
    if (rc != ARGON2_OK) {
        out[0] = '\0';
        return ft_error_set(err, FT_EIO, "argon2id failed: %s", argon2_error_message(rc));
    }
    return FT_OK;
}

/* Reads a decimal without sign or leading zero at *p, at most max; advances *p. 0 when malformed. */
static int parse_cost(const char **p, unsigned long max, unsigned long *out)
{
    const char *s = *p;
    unsigned long v = 0;
    if (*s < '1' || *s > '9')
        return 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return 0;
    }
    *p = s;
    *out = v;
    return 1;
}

static int expect(const char **p, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*p, lit, n) != 0)
        return 0;
    *p += n;
    return 1;
}

int ft_password_verify(const char *encoded, const char *password)
{
    unsigned long m, t, par;

    if (encoded == NULL || password == NULL)
        return 0;
    size_t pwlen = strnlen(password, FT_PASSWORD_MAX_LEN + 1);
    if (pwlen > FT_PASSWORD_MAX_LEN || strnlen(encoded, FT_ARGON2_VERIFY_MAX_ENCODED + 1) > FT_ARGON2_VERIFY_MAX_ENCODED)
        return 0;
    /* The costs are checked here, before libargon2 allocates m KiB and runs t passes. */
    const char *p = encoded;
    if (!expect(&p, "$argon2id$v=19$m=") || !parse_cost(&p, FT_ARGON2_VERIFY_MAX_M_KIB, &m) || !expect(&p, ",t=") ||
        !parse_cost(&p, FT_ARGON2_VERIFY_MAX_T, &t) || !expect(&p, ",p=") || !parse_cost(&p, FT_ARGON2_VERIFY_MAX_P, &par) ||
        *p != '$')
        return 0;
    return argon2id_verify(encoded, password, pwlen) == ARGON2_OK;
}
