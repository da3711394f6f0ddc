/*
 * JWS compact JWTs: keys parsed once into EVP_PKEYs, immutable refcounted keyrings, signing and
 * verification with OpenSSL EVP. Verification follows RFC 8725: the algorithm comes from the
 * keyring, never from the token, and is checked before any key is touched.
 */
#include "auth/jwt.h"

#include "auth/crypto.h"
#include "core/mem.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FT_JWT_RSA_MIN_BITS 2048
#define FT_JWT_RSA_MAX_BITS 8192 /* bounds signature buffers (1024 bytes) and the cost of one verify */
#define FT_JWT_KID_MAX 128
#define FT_JWT_MAX_SIG 1024      /* RSA 8192 */
#define FT_JWT_ES256_COORD 32    /* bytes in each of r, s, x and y on P-256 */
#define FT_JWT_ED25519_LEN 32    /* bytes in an Ed25519 public key */
#define FT_JWT_RAW_SIG_LEN 64    /* ES256 r||s and Ed25519 signatures */
#define FT_JWT_STACK_DECODE 2048 /* tokens whose decoded parts fit here decode without allocating */

struct ft_jwt_key {
    ft_jwt_alg_t alg;
    int can_sign;
    char *kid;
    EVP_PKEY *pkey;
    EVP_MD *md;  /* SHA-256 fetched once for RS256 and ES256; NULL for EdDSA, which hashes itself */
    json_t *jwk; /* the public JWK, built at load; handed out as deep copies */
};

struct ft_jwt_keyring {
    atomic_uint refs;
    ft_jwt_alg_t alg;
    ft_jwt_key_t **keys;
    size_t n;
    const ft_jwt_key_t *signing;
    char *header_b64; /* the signing header, base64url-encoded once */
    size_t header_b64_len;
};

/* OpenSSL only fails these allocations when memory is exhausted: die as ft_mem_alloc does. */
static void *ossl_check_alloc(void *p)
{
    if (p == NULL)
        abort();
    return p;
}

/* The first queued OpenSSL error as text in buf; the thread's error queue is left empty. */
static const char *ossl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

int ft_jwt_alg_parse(const char *name, ft_jwt_alg_t *out)
{
    static const ft_jwt_alg_t all[] = {FT_JWT_RS256, FT_JWT_ES256, FT_JWT_EDDSA};
    if (name == NULL || out == NULL)
        return FT_EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(name, ft_jwt_alg_name(all[i])) == 0) {
            *out = all[i];
            return FT_OK;
        }
    }
    return FT_EINVAL;
}

const char *ft_jwt_alg_name(ft_jwt_alg_t alg)
{
    switch (alg) {
    case FT_JWT_RS256:
        return "RS256";
    case FT_JWT_ES256:
        return "ES256";
    case FT_JWT_EDDSA:
        return "EdDSA";
    }
    return "?";
}

int ft_jwt_key_generate(ft_jwt_alg_t alg, char **private_pem, ft_error_t *err)
{
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char reason[256];
    int rc = FT_OK;

    if (private_pem == NULL)
        return ft_error_set(err, FT_EINVAL, "no place for the key");
    *private_pem = NULL;
    switch (alg) {
    case FT_JWT_RS256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)FT_JWT_RSA_BITS);
        break;
    case FT_JWT_ES256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case FT_JWT_EDDSA:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    default:
        return ft_error_set(err, FT_EINVAL, "unknown JWT algorithm");
    }
    if (pkey == NULL) {
        rc = ft_error_set(err, FT_EIO, "%s key generation failed: %s", ft_jwt_alg_name(alg), ossl_reason(reason, sizeof(reason)));
        goto out;
    }
    /* secmem: the BIO's buffer is wiped when freed. PEM_write_bio_PrivateKey writes PKCS#8. */
    bio = ossl_check_alloc(BIO_new(BIO_s_secmem()));
    if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = ft_error_set(err, FT_EIO, "writing the %s key failed: %s", ft_jwt_alg_name(alg), ossl_reason(reason, sizeof(reason)));
        goto out;
    }
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    *private_pem = ft_mem_alloc((size_t)n + 1);
    memcpy(*private_pem, data, (size_t)n);
    (*private_pem)[n] = '\0';
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return rc;
}

/* Refuses to ask for a passphrase: an encrypted PEM fails to load instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

static EVP_PKEY *read_pem(const char *pem, int *is_private)
{
    BIO *bio = ossl_check_alloc(BIO_new_mem_buf(pem, -1));
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    *is_private = pkey != NULL;
    if (pkey == NULL) {
        ERR_clear_error();
        bio = ossl_check_alloc(BIO_new_mem_buf(pem, -1));
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    return pkey;
}

/* Checks that pkey is the kind of key alg needs; FT_OK or FT_EINVAL with err filled. */
static int check_key_type(ft_jwt_alg_t alg, EVP_PKEY *pkey, ft_error_t *err)
{
    char group[64];
    switch (alg) {
    case FT_JWT_RS256: {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return ft_error_set(err, FT_EINVAL, "RS256 needs an RSA key");
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < FT_JWT_RSA_MIN_BITS || bits > FT_JWT_RSA_MAX_BITS)
            return ft_error_set(err, FT_EINVAL, "RS256 needs an RSA key of %d to %d bits, this one has %d", FT_JWT_RSA_MIN_BITS,
                                FT_JWT_RSA_MAX_BITS, bits);
        return FT_OK;
    }
    case FT_JWT_ES256:
        if (!EVP_PKEY_is_a(pkey, "EC"))
            return ft_error_set(err, FT_EINVAL, "ES256 needs an EC key on P-256");
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 || strcmp(group, SN_X9_62_prime256v1) != 0) {
            ERR_clear_error();
            return ft_error_set(err, FT_EINVAL, "ES256 needs an EC key on P-256");
        }
        return FT_OK;
    case FT_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            return ft_error_set(err, FT_EINVAL, "EdDSA needs an Ed25519 key");
        return FT_OK;
    }
    return ft_error_set(err, FT_EINVAL, "unknown JWT algorithm");
}

/* A big-endian byte string as a base64url JSON string. */
static json_t *b64_string(const unsigned char *bytes, size_t len)
{
    char out[FT_BASE64URL_LEN(FT_JWT_MAX_SIG)];
    ft_base64url_encode(bytes, len, out, sizeof(out));
    return ossl_check_alloc(json_string(out));
}

/* The BIGNUM parameter name of pkey in base64url, left-padded to pad bytes (0: minimal). */
static json_t *bn_param(EVP_PKEY *pkey, const char *name, int pad)
{
    unsigned char bytes[FT_JWT_MAX_SIG];
    BIGNUM *bn = NULL;
    json_t *s = NULL;
    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
        return NULL;
    int len = pad > 0 ? pad : BN_num_bytes(bn);
    if (len > 0 && len <= (int)sizeof(bytes) && BN_bn2binpad(bn, bytes, len) == len)
        s = b64_string(bytes, (size_t)len);
    BN_free(bn);
    return s;
}

/* The public JWK of a checked key, or NULL when OpenSSL cannot export a member. */
static json_t *build_jwk(ft_jwt_alg_t alg, const char *kid, EVP_PKEY *pkey)
{
    unsigned char raw[FT_JWT_ED25519_LEN];
    size_t rawlen = 0;
    json_t *a = NULL, *b = NULL, *jwk = NULL;

    switch (alg) {
    case FT_JWT_RS256:
        a = bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
        b = bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        if (a != NULL && b != NULL)
            jwk = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O}", "kty", "RSA", "kid", kid, "use", "sig", "alg", "RS256", "n", a, "e", b);
        break;
    case FT_JWT_ES256:
        a = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, FT_JWT_ES256_COORD);
        b = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, FT_JWT_ES256_COORD);
        if (a != NULL && b != NULL)
            jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O,s:O}", "kty", "EC", "kid", kid, "use", "sig", "alg", "ES256", "crv", "P-256",
                            "x", a, "y", b);
        break;
    case FT_JWT_EDDSA:
        if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw), &rawlen) == 1 &&
            rawlen == sizeof(raw)) {
            a = b64_string(raw, rawlen);
            jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O}", "kty", "OKP", "kid", kid, "use", "sig", "alg", "EdDSA", "crv", "Ed25519",
                            "x", a);
        }
        break;
    }
    json_decref(a);
    json_decref(b);
    ERR_clear_error();
    return jwk;
}

static int kid_ok(const char *kid)
{
    size_t n = kid == NULL ? 0 : strnlen(kid, FT_JWT_KID_MAX + 1);
    if (n == 0 || n > FT_JWT_KID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (kid[i] < 0x21 || kid[i] > 0x7e)
            return 0;
    }
    return 1;
}

ft_jwt_key_t *ft_jwt_key_load(ft_jwt_alg_t alg, const char *kid, const char *pem, ft_error_t *err)
{
    int is_private = 0;
    EVP_PKEY *pkey = NULL;
    json_t *jwk = NULL;
    ft_jwt_key_t *key = NULL;

    if (!kid_ok(kid)) {
        ft_error_set(err, FT_EINVAL, "key id must be 1 to %d printable ASCII characters", FT_JWT_KID_MAX);
        goto out;
    }
    if (pem == NULL || (pkey = read_pem(pem, &is_private)) == NULL) {
        ft_error_set(err, FT_EINVAL, "key %s: not a readable unencrypted PEM private or public key", kid);
        goto out;
    }
    if (check_key_type(alg, pkey, err) != FT_OK)
        goto out;
    if ((jwk = build_jwk(alg, kid, pkey)) == NULL) {
        ft_error_set(err, FT_EINVAL, "key %s: its public parameters cannot be exported", kid);
        goto out;
    }
    key = ft_mem_calloc(1, sizeof(*key));
    key->alg = alg;
    key->can_sign = is_private;
    key->kid = ft_mem_strdup(kid);
    key->pkey = pkey;
    key->jwk = jwk;
    if (alg != FT_JWT_EDDSA)
        key->md = ossl_check_alloc(EVP_MD_fetch(NULL, "SHA256", NULL));
    pkey = NULL;
    jwk = NULL;
out:
    EVP_PKEY_free(pkey);
    json_decref(jwk);
    return key;
}

void ft_jwt_key_free(ft_jwt_key_t *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    EVP_MD_free(key->md);
    json_decref(key->jwk);
    free(key->kid);
    free(key);
}

const char *ft_jwt_key_kid(const ft_jwt_key_t *key)
{
    return key->kid;
}

ft_jwt_alg_t ft_jwt_key_alg(const ft_jwt_key_t *key)
{
    return key->alg;
}

int ft_jwt_key_can_sign(const ft_jwt_key_t *key)
{
    return key->can_sign;
}

json_t *ft_jwt_key_jwk(const ft_jwt_key_t *key)
{
    return key == NULL ? NULL : ossl_check_alloc(json_deep_copy(key->jwk));
}

ft_jwt_keyring_t *ft_jwt_keyring_new(ft_jwt_alg_t alg)
{
    ft_jwt_keyring_t *ring = ft_mem_calloc(1, sizeof(*ring));
    atomic_init(&ring->refs, 1);
    ring->alg = alg;
    return ring;
}

ft_jwt_alg_t ft_jwt_keyring_alg(const ft_jwt_keyring_t *ring)
{
    return ring->alg;
}

const ft_jwt_key_t *ft_jwt_keyring_find(const ft_jwt_keyring_t *ring, const char *kid)
{
    if (ring == NULL || kid == NULL)
        return NULL;
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i]->kid, kid) == 0)
            return ring->keys[i];
    }
    return NULL;
}

int ft_jwt_keyring_add(ft_jwt_keyring_t *ring, ft_jwt_key_t *key, int signing, ft_error_t *err)
{
    int rc = FT_OK;
    if (ring == NULL || key == NULL) {
        ft_jwt_key_free(key);
        return ft_error_set(err, FT_EINVAL, "no keyring or no key");
    }
    if (atomic_load(&ring->refs) > 1)
        rc = ft_error_set(err, FT_ESTATE, "the keyring is shared and can no longer change");
    else if (key->alg != ring->alg)
        rc = ft_error_set(err, FT_EINVAL, "key %s is for %s, the keyring for %s", key->kid, ft_jwt_alg_name(key->alg),
                          ft_jwt_alg_name(ring->alg));
    else if (signing && !key->can_sign)
        rc = ft_error_set(err, FT_EINVAL, "key %s has no private key and cannot sign", key->kid);
    else if (ft_jwt_keyring_find(ring, key->kid) != NULL)
        rc = ft_error_set(err, FT_ECONFLICT, "key id %s is already in the keyring", key->kid);
    else if (signing && ring->signing != NULL)
        rc = ft_error_set(err, FT_ECONFLICT, "the keyring already has a signing key (%s)", ring->signing->kid);
    if (rc != FT_OK) {
        ft_jwt_key_free(key);
        return rc;
    }
    ring->keys = ft_mem_realloc(ring->keys, (ring->n + 1) * sizeof(ring->keys[0]));
    ring->keys[ring->n++] = key;
    if (signing) {
        json_t *h = ossl_check_alloc(json_pack("{s:s,s:s,s:s}", "alg", ft_jwt_alg_name(ring->alg), "typ", "JWT", "kid", key->kid));
        char *text = ossl_check_alloc(json_dumps(h, JSON_COMPACT));
        size_t len = strlen(text);
        ring->header_b64 = ft_mem_alloc(FT_BASE64URL_LEN(len));
        ring->header_b64_len = ft_base64url_encode(text, len, ring->header_b64, FT_BASE64URL_LEN(len));
        ring->signing = key;
        free(text);
        json_decref(h);
    }
    return FT_OK;
}

json_t *ft_jwt_keyring_jwks(const ft_jwt_keyring_t *ring)
{
    json_t *keys = ossl_check_alloc(json_array());
    for (size_t i = 0; ring != NULL && i < ring->n; i++)
        json_array_append_new(keys, ft_jwt_key_jwk(ring->keys[i]));
    return ossl_check_alloc(json_pack("{s:o}", "keys", keys));
}

ft_jwt_keyring_t *ft_jwt_keyring_ref(ft_jwt_keyring_t *ring)
{
    atomic_fetch_add_explicit(&ring->refs, 1, memory_order_relaxed);
    return ring;
}

void ft_jwt_keyring_unref(ft_jwt_keyring_t *ring)
{
    if (ring == NULL || atomic_fetch_sub_explicit(&ring->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ring->n; i++)
        ft_jwt_key_free(ring->keys[i]);
    free(ring->keys);
    free(ring->header_b64);
    free(ring);
}

void ft_jwt_keyring_free(ft_jwt_keyring_t *ring)
{
    ft_jwt_keyring_unref(ring);
}

/* Signs tbs with key; ES256 comes back as raw r||s. 1 on success. */
static int sign_bytes(const ft_jwt_key_t *key, const void *tbs, size_t n, unsigned char *sig, size_t *siglen)
{
    unsigned char der[FT_JWT_MAX_SIG];
    size_t derlen = sizeof(der);
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX *ctx = ossl_check_alloc(EVP_MD_CTX_new());
    int ok = EVP_DigestSignInit(ctx, NULL, key->md, NULL, key->pkey) == 1;
    if (ok && key->alg == FT_JWT_ES256) {
        const unsigned char *p = der;
        const BIGNUM *r, *s;
        ok = EVP_DigestSign(ctx, der, &derlen, tbs, n) == 1 && (es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) != NULL;
        if (ok) {
            ECDSA_SIG_get0(es, &r, &s);
            ok = BN_bn2binpad(r, sig, FT_JWT_ES256_COORD) == FT_JWT_ES256_COORD &&
                 BN_bn2binpad(s, sig + FT_JWT_ES256_COORD, FT_JWT_ES256_COORD) == FT_JWT_ES256_COORD;
            *siglen = FT_JWT_RAW_SIG_LEN;
        }
    } else if (ok) {
        ok = EVP_DigestSign(ctx, sig, siglen, tbs, n) == 1;
    }
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(ctx);
    return ok;
}

int ft_jwt_sign(const ft_jwt_keyring_t *ring, const json_t *claims, char **token, ft_error_t *err)
{
    unsigned char sig[FT_JWT_MAX_SIG];
    size_t siglen = sizeof(sig);
    char reason[256];

    if (token != NULL)
        *token = NULL;
    if (ring == NULL || token == NULL || !json_is_object(claims))
        return ft_error_set(err, FT_EINVAL, "claims must be a JSON object");
    if (ring->signing == NULL)
        return ft_error_set(err, FT_ESTATE, "the keyring has no signing key");
    char *payload = json_dumps(claims, JSON_COMPACT);
    if (payload == NULL)
        return ft_error_set(err, FT_EINVAL, "claims cannot be serialised");
    size_t plen = strlen(payload);
    size_t cap = ring->header_b64_len + 1 + FT_BASE64URL_LEN(plen) + FT_BASE64URL_LEN(FT_JWT_MAX_SIG);
    char *t = ft_mem_alloc(cap);
    size_t n = ring->header_b64_len;
    memcpy(t, ring->header_b64, n);
    t[n++] = '.';
    n += ft_base64url_encode(payload, plen, t + n, cap - n);
    free(payload);
    if (!sign_bytes(ring->signing, t, n, sig, &siglen)) {
        free(t);
        return ft_error_set(err, FT_EIO, "signing with key %s failed: %s", ring->signing->kid, ossl_reason(reason, sizeof(reason)));
    }
    t[n++] = '.';
    ft_base64url_encode(sig, siglen, t + n, cap - n);
    *token = t;
    return FT_OK;
}

/* Checks sig over tbs with key; 1 when it verifies. Clears the OpenSSL errors a failure queues. */
static int verify_bytes(const ft_jwt_key_t *key, const void *tbs, size_t n, const unsigned char *sig, size_t siglen)
{
    unsigned char der[2 * (FT_JWT_ES256_COORD + 3) + 3];
    int ok = 1;

    switch (key->alg) {
    case FT_JWT_RS256:
        ok = siglen == (size_t)EVP_PKEY_get_size(key->pkey);
        break;
    case FT_JWT_EDDSA:
        ok = siglen == FT_JWT_RAW_SIG_LEN;
        break;
    case FT_JWT_ES256: {
        /* JOSE sends r||s (RFC 7518 §3.4); EVP wants DER. Anything but 64 bytes is refused. */
        if (siglen != FT_JWT_RAW_SIG_LEN)
            return 0;
        ECDSA_SIG *es = ossl_check_alloc(ECDSA_SIG_new());
        BIGNUM *r = ossl_check_alloc(BN_bin2bn(sig, FT_JWT_ES256_COORD, NULL));
        BIGNUM *s = ossl_check_alloc(BN_bin2bn(sig + FT_JWT_ES256_COORD, FT_JWT_ES256_COORD, NULL));
        ECDSA_SIG_set0(es, r, s);
        int derlen = i2d_ECDSA_SIG(es, NULL);
        ok = derlen > 0 && (size_t)derlen <= sizeof(der);
        if (ok) {
            unsigned char *p = der;
            derlen = i2d_ECDSA_SIG(es, &p);
            sig = der;
            siglen = (size_t)derlen;
        }
        ECDSA_SIG_free(es);
        break;
    }
    }
    if (ok) {
        EVP_MD_CTX *ctx = ossl_check_alloc(EVP_MD_CTX_new());
        ok = EVP_DigestVerifyInit(ctx, NULL, key->md, NULL, key->pkey) == 1 && EVP_DigestVerify(ctx, sig, siglen, tbs, n) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (!ok)
        ERR_clear_error();
    return ok;
}

/* alg as it may be quoted in a 401 answer: short and plain, else not quoted at all. */
static int alg_quotable(const json_t *alg)
{
    const char *s = json_string_value(alg);
    size_t n = json_string_length(alg);
    if (s == NULL || n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '+'))
            return 0;
    }
    return 1;
}

/* A NumericDate claim: 0 absent, 1 a number (in *out), -1 present but not a number. */
static int numeric_claim(const json_t *payload, const char *name, double *out)
{
    const json_t *v = json_object_get(payload, name);
    if (v == NULL)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 1;
}

static int audience_matches(const json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    if (json_is_array(aud)) {
        for (size_t i = 0; i < json_array_size(aud); i++) {
            const json_t *a = json_array_get(aud, i);
            if (json_is_string(a) && strcmp(json_string_value(a), audience) == 0)
                return 1;
        }
    }
    return 0;
}

/* The registered claims of a payload whose signature verified. FT_OK, FT_EEXPIRED or FT_EAUTH. */
static int check_claims(const json_t *payload, const ft_jwt_verify_opts_t *o, ft_error_t *err)
{
    double now = (double)(o != NULL && o->now != 0 ? o->now : (int64_t)time(NULL));
    double leeway = o != NULL ? (double)o->leeway_s : 0, exp = 0, nbf = 0, iat = 0;

    int has = numeric_claim(payload, "exp", &exp);
    if (has == 0)
        return ft_error_set(err, FT_EAUTH, "exp claim missing");
    if (has < 0)
        return ft_error_set(err, FT_EAUTH, "exp claim is not a number");
    if (!(now < exp + leeway))
        return ft_error_set(err, FT_EEXPIRED, "token expired");
    has = numeric_claim(payload, "nbf", &nbf);
    if (has < 0)
        return ft_error_set(err, FT_EAUTH, "nbf claim is not a number");
    if (has > 0 && !(now >= nbf - leeway))
        return ft_error_set(err, FT_EAUTH, "token not valid yet");
    if (numeric_claim(payload, "iat", &iat) < 0)
        return ft_error_set(err, FT_EAUTH, "iat claim is not a number");
    if (o != NULL && o->issuer != NULL) {
        const char *iss = json_string_value(json_object_get(payload, "iss"));
        if (iss == NULL || strcmp(iss, o->issuer) != 0)
            return ft_error_set(err, FT_EAUTH, "issuer does not match");
    }
    if (o != NULL && o->audience != NULL && !audience_matches(json_object_get(payload, "aud"), o->audience))
        return ft_error_set(err, FT_EAUTH, "audience does not match");
    return FT_OK;
}

int ft_jwt_verify(const ft_jwt_keyring_t *ring, const char *token, size_t len, const ft_jwt_verify_opts_t *o, json_t **claims,
                  ft_error_t *err)
{
    unsigned char stackbuf[FT_JWT_STACK_DECODE], *buf = stackbuf;
    json_t *header = NULL, *payload = NULL;
    size_t max_len = o != NULL && o->max_len != 0 ? o->max_len : FT_JWT_DEFAULT_MAX_LEN;
    int rc = FT_EAUTH;

    if (claims != NULL)
        *claims = NULL;
    if (ring == NULL || claims == NULL)
        return ft_error_set(err, FT_EINVAL, "no keyring or no place for the claims");
    if (token == NULL || len == 0)
        return ft_error_set(err, FT_EAUTH, "token missing");
    if (len > max_len)
        return ft_error_set(err, FT_EAUTH, "token is too long");

    /* header.payload.signature: exactly two dots, three non-empty parts. */
    const char *end = token + len, *d1 = memchr(token, '.', len);
    const char *d2 = d1 == NULL ? NULL : memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (d2 == NULL || d1 == token || d2 == d1 + 1 || d2 + 1 == end || memchr(d2 + 1, '.', (size_t)(end - d2 - 1)) != NULL)
        return ft_error_set(err, FT_EAUTH, "token is not three base64url parts");
    size_t hlen64 = (size_t)(d1 - token), plen64 = (size_t)(d2 - d1 - 1), slen64 = (size_t)(end - d2 - 1);
    size_t hcap = hlen64 / 4 * 3 + 2, pcap = plen64 / 4 * 3 + 2, scap = slen64 / 4 * 3 + 2, hlen, plen, slen;
    if (hcap + pcap + scap > sizeof(stackbuf))
        buf = ft_mem_alloc(hcap + pcap + scap);
    unsigned char *hdr = buf, *pay = buf + hcap, *sig = pay + pcap;
    if (ft_base64url_decode(token, hlen64, hdr, hcap, &hlen) != FT_OK ||
        ft_base64url_decode(d1 + 1, plen64, pay, pcap, &plen) != FT_OK ||
        ft_base64url_decode(d2 + 1, slen64, sig, scap, &slen) != FT_OK) {
        ft_error_set(err, FT_EAUTH, "token is not three base64url parts");
        goto out;
    }

    /* The header decides nothing but which ring key to try: alg must be the ring's own. */
    header = json_loadb((const char *)hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(header)) {
        ft_error_set(err, FT_EAUTH, "token header is not a JSON object");
        goto out;
    }
    const json_t *alg = json_object_get(header, "alg");
    const char *expected = ft_jwt_alg_name(ring->alg);
    if (!json_is_string(alg)) {
        ft_error_set(err, FT_EAUTH, "token header has no alg");
        goto out;
    }
    if (json_string_length(alg) != strlen(expected) || strcmp(json_string_value(alg), expected) != 0) {
        if (alg_quotable(alg))
            ft_error_set(err, FT_EAUTH, "algorithm %s is not accepted (expected %s)", json_string_value(alg), expected);
        else
            ft_error_set(err, FT_EAUTH, "algorithm is not accepted (expected %s)", expected);
        goto out;
    }
    if (json_object_get(header, "crit") != NULL) {
        ft_error_set(err, FT_EAUTH, "crit header is not supported");
        goto out;
    }
    const char *kid = json_string_value(json_object_get(header, "kid"));
    if (kid == NULL) {
        ft_error_set(err, FT_EAUTH, "token header has no kid");
        goto out;
    }
    const ft_jwt_key_t *key = ft_jwt_keyring_find(ring, kid);
    if (key == NULL) {
        ft_error_set(err, FT_EAUTH, "unknown signing key id");
        goto out;
    }
    if (!verify_bytes(key, token, (size_t)(d2 - token), sig, slen)) {
        ft_error_set(err, FT_EAUTH, "signature does not verify");
        goto out;
    }

    payload = json_loadb((const char *)pay, plen, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(payload)) {
        ft_error_set(err, FT_EAUTH, "token payload is not a JSON object");
        goto out;
    }
    if ((rc = check_claims(payload, o, err)) != FT_OK)
        goto out;
    *claims = payload;
    payload = NULL;
    rc = FT_OK;
out:
    json_decref(header);
    json_decref(payload);
    if (buf != stackbuf)
        free(buf);
    return rc;
}
