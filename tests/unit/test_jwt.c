/*
 * JWTs: sign/verify round trips and JWKs for RS256, ES256 and EdDSA, keyring rules, the attacks
 * RFC 8725 lists (alg none, HS/RS confusion, swapped alg, foreign keys, bad claims, malformed
 * tokens), and interoperability with the openssl command line in both directions.
 */
#include "auth/crypto.h"
#include "auth/jwt.h"
#include "core/mem.h"
#include "ft_test.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/wait.h>

#define NOW 1700000000
#define ISS "https://id.farutech.test"
#define AUD "farutech-api"
#define GOOD_CLAIMS "{\"sub\":\"u1\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1700000000,\"exp\":1700000600}"
#define RS256_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"

static const ft_jwt_alg_t all_algs[] = {FT_JWT_RS256, FT_JWT_ES256, FT_JWT_EDDSA};
#define FOR_EACH_ALG(a) for (size_t a##_i = 0; a##_i < 3 && ((a) = all_algs[a##_i], 1); a##_i++)

/* ---- helpers */

/* Two private keys per algorithm, generated once (RSA generation is slow); reachable until exit. */
static char *pems[3][2];

static const char *pem_for(ft_jwt_alg_t alg, int slot)
{
    if (pems[alg][slot] == NULL) {
        ft_error_t err = {0};
        if (ft_jwt_key_generate(alg, &pems[alg][slot], &err) != FT_OK)
            FT_FAIL_("generating a %s key: %s", ft_jwt_alg_name(alg), err.message);
    }
    return pems[alg][slot];
}

static EVP_PKEY *read_private(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (k == NULL)
        FT_FAIL_("test PEM does not parse");
    return k;
}

/* A key as PEM: private (PKCS#8, optionally encrypted) or public (SPKI). The caller frees. */
static char *pem_of(EVP_PKEY *k, int private, const char *passphrase)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int ok = private ? PEM_write_bio_PrivateKey(bio, k, passphrase ? EVP_aes_256_cbc() : NULL, (const unsigned char *)passphrase,
                                                passphrase ? (int)strlen(passphrase) : 0, NULL, NULL)
                     : PEM_write_bio_PUBKEY(bio, k);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *s = ok ? ft_mem_strndup(data, (size_t)n) : NULL;
    BIO_free(bio);
    if (s == NULL)
        FT_FAIL_("writing a test PEM failed");
    return s;
}

static char *public_pem(const char *private_pem)
{
    EVP_PKEY *k = read_private(private_pem);
    char *s = pem_of(k, 0, NULL);
    EVP_PKEY_free(k);
    return s;
}

static ft_jwt_key_t *load(ft_jwt_alg_t alg, const char *kid, const char *pem)
{
    ft_error_t err = {0};
    ft_jwt_key_t *k = ft_jwt_key_load(alg, kid, pem, &err);
    if (k == NULL)
        FT_FAIL_("loading key %s: %s", kid, err.message);
    return k;
}

/* A keyring whose signing key is generated key `slot` of alg, under kid. */
static ft_jwt_keyring_t *signing_ring(ft_jwt_alg_t alg, const char *kid, int slot)
{
    ft_jwt_keyring_t *ring = ft_jwt_keyring_new(alg);
    ft_error_t err = {0};
    if (ft_jwt_keyring_add(ring, load(alg, kid, pem_for(alg, slot)), 1, &err) != FT_OK)
        FT_FAIL_("adding key %s: %s", kid, err.message);
    return ring;
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *x = json_loads(text, 0, &jerr);
    if (x == NULL)
        FT_FAIL_("bad test JSON %s: %s", text, jerr.text);
    return x;
}

static char *sign_claims(const ft_jwt_keyring_t *ring, const char *claims_json)
{
    json_t *claims = parse(claims_json);
    char *token = NULL;
    ft_error_t err = {0};
    int rc = ft_jwt_sign(ring, claims, &token, &err);
    json_decref(claims);
    if (rc != FT_OK)
        FT_FAIL_("signing %s: %s", claims_json, err.message);
    return token;
}

static ft_jwt_verify_opts_t default_opts(void)
{
    return (ft_jwt_verify_opts_t){.issuer = ISS, .audience = AUD, .now = NOW};
}

static int verify(const ft_jwt_keyring_t *ring, const char *token, const ft_jwt_verify_opts_t *o, ft_error_t *err)
{
    json_t *claims = json_null(); /* must be replaced */
    int rc = ft_jwt_verify(ring, token, strlen(token), o, &claims, err);
    if (rc == FT_OK && !json_is_object(claims))
        FT_FAIL_("verified without claims");
    if (rc != FT_OK && claims != NULL)
        FT_FAIL_("refused but claims were returned");
    json_decref(claims);
    return rc;
}

#define CHECK_REFUSED_AS(want, ring, token, o, reason)                                                                             \
    do {                                                                                                                           \
        ft_error_t verr_ = {0};                                                                                                    \
        CHECK_INT(want, verify(ring, token, o, &verr_));                                                                           \
        CHECK_INT(want, verr_.code);                                                                                               \
        CHECK_STR(reason, verr_.message);                                                                                          \
    } while (0)
#define CHECK_REFUSED(ring, token, o, reason) CHECK_REFUSED_AS(FT_EAUTH, ring, token, o, reason)

#define CHECK_ACCEPTED(ring, token, o)                                                                                             \
    do {                                                                                                                           \
        ft_error_t verr_ = {0};                                                                                                    \
        if (verify(ring, token, o, &verr_) != FT_OK)                                                                               \
            FT_FAIL_("token refused: %s", verr_.message);                                                                          \
    } while (0)

static char *b64(const void *data, size_t len)
{
    char *out = ft_mem_alloc(FT_BASE64URL_LEN(len));
    ft_base64url_encode(data, len, out, FT_BASE64URL_LEN(len));
    return out;
}

static char *b64s(const char *text)
{
    return b64(text, strlen(text));
}

/* Decodes a base64url segment into a fresh NUL-terminated buffer; *len gets its size. */
static unsigned char *unb64(const char *seg, size_t seglen, size_t *len)
{
    unsigned char *out = ft_mem_alloc(seglen + 1);
    if (ft_base64url_decode(seg, seglen, out, seglen, len) != FT_OK)
        FT_FAIL_("segment %.*s does not decode", (int)seglen, seg);
    out[*len] = '\0';
    return out;
}

/* The i-th dot-separated segment of token (0, 1 or 2), decoded. The caller frees. */
static unsigned char *segment(const char *token, int i, size_t *len)
{
    const char *s = token;
    for (int k = 0; k < i; k++)
        s = strchr(s, '.') + 1;
    const char *e = strchr(s, '.');
    return unb64(s, e != NULL ? (size_t)(e - s) : strlen(s), len);
}

/* Replaces segment i of token with seg (already base64url). The caller frees. */
static char *replace_segment(const char *token, int i, const char *seg)
{
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    if (i == 0)
        return ft_mem_asprintf("%s%s", seg, d1);
    if (i == 1)
        return ft_mem_asprintf("%.*s.%s%s", (int)(d1 - token), token, seg, d2);
    return ft_mem_asprintf("%.*s.%s", (int)(d2 - token), token, seg);
}

static void der_to_raw(const unsigned char *der, size_t derlen, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (es == NULL)
        FT_FAIL_("not a DER ECDSA signature");
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(s, raw + 32, 32);
    ECDSA_SIG_free(es);
}

static size_t raw_to_der(const unsigned char raw[64], unsigned char *der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *p = der;
    int n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);
    return (size_t)n;
}

/*
 * Signs tbs with EVP directly, outside jwt.c: RS256 PKCS#1 v1.5, ES256 DER (raw r||s when
 * raw_ecdsa), EdDSA pure Ed25519. sig holds 1024 bytes; returns its length.
 */
static size_t evp_sign(ft_jwt_alg_t alg, const char *pem, const char *tbs, unsigned char *sig, int raw_ecdsa)
{
    EVP_PKEY *k = read_private(pem);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 1024;
    int ok = EVP_DigestSignInit(ctx, NULL, alg == FT_JWT_EDDSA ? NULL : EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSign(ctx, sig, &len, (const unsigned char *)tbs, strlen(tbs)) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    if (!ok)
        FT_FAIL_("EVP signing failed");
    if (alg == FT_JWT_ES256 && raw_ecdsa) {
        unsigned char raw[64];
        der_to_raw(sig, len, raw);
        memcpy(sig, raw, 64);
        len = 64;
    }
    return len;
}

/* A token for any header and payload, signed by generated key `slot` of alg. The caller frees. */
static char *token_signed(ft_jwt_alg_t alg, int slot, const char *header, const char *payload)
{
    unsigned char sig[1024];
    char *h = b64s(header), *p = b64s(payload);
    char *tbs = ft_mem_asprintf("%s.%s", h, p);
    size_t n = evp_sign(alg, pem_for(alg, slot), tbs, sig, 1);
    char *s = b64(sig, n);
    char *t = ft_mem_asprintf("%s.%s", tbs, s);
    free(h);
    free(p);
    free(tbs);
    free(s);
    return t;
}

static char *header_for(ft_jwt_alg_t alg, const char *kid)
{
    return ft_mem_asprintf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}", ft_jwt_alg_name(alg), kid);
}

/* ---- the openssl command line, in a private temporary directory */

static char tmpdir[64];

static void tmp_open(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ft-test-jwt-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        FT_FAIL_("mkdtemp failed");
    if (system("openssl version >/dev/null 2>&1") != 0)
        FT_FAIL_("the openssl command is needed for the interoperability tests");
}

static void tmp_close(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        FT_FAIL_("%s failed", cmd);
}

/* Runs a shell command (%D stands for the temporary directory); returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tmp_write(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        FT_FAIL_("cannot write %s", path);
}

static unsigned char *tmp_read(const char *name, size_t *len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        FT_FAIL_("cannot read %s", path);
    unsigned char *buf = ft_mem_alloc(8192);
    *len = fread(buf, 1, 8191, f);
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* ---- names */

TEST(alg_names_parse_exactly)
{
    ft_jwt_alg_t a;
    CHECK_INT(FT_OK, ft_jwt_alg_parse("RS256", &a));
    CHECK_INT(FT_JWT_RS256, a);
    CHECK_INT(FT_OK, ft_jwt_alg_parse("ES256", &a));
    CHECK_INT(FT_JWT_ES256, a);
    CHECK_INT(FT_OK, ft_jwt_alg_parse("EdDSA", &a));
    CHECK_INT(FT_JWT_EDDSA, a);
    static const char *const bad[] = {"rs256", "RS256 ", "EDDSA", "Ed25519", "HS256", "none", "RS384", "PS256", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_INT(FT_EINVAL, ft_jwt_alg_parse(bad[i], &a));
    CHECK_INT(FT_EINVAL, ft_jwt_alg_parse(NULL, &a));
    CHECK_STR("RS256", ft_jwt_alg_name(FT_JWT_RS256));
    CHECK_STR("ES256", ft_jwt_alg_name(FT_JWT_ES256));
    CHECK_STR("EdDSA", ft_jwt_alg_name(FT_JWT_EDDSA));
}

/* ---- keys and keyrings */

TEST(key_generate_writes_pkcs8_pem)
{
    ft_jwt_alg_t alg;
    FOR_EACH_ALG(alg)
    {
        const char *pem = pem_for(alg, 0);
        CHECK(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
        CHECK_CONTAINS(pem, "-----END PRIVATE KEY-----");
        ft_jwt_key_t *k = load(alg, "k", pem);
        CHECK_INT(1, ft_jwt_key_can_sign(k));
        CHECK_INT(alg, ft_jwt_key_alg(k));
        CHECK_STR("k", ft_jwt_key_kid(k));
        ft_jwt_key_free(k);
    }
    EVP_PKEY *rsa = read_private(pem_for(FT_JWT_RS256, 0));
    CHECK_INT(FT_JWT_RSA_BITS, EVP_PKEY_get_bits(rsa));
    EVP_PKEY_free(rsa);
    CHECK(strcmp(pem_for(FT_JWT_ES256, 0), pem_for(FT_JWT_ES256, 1)) != 0);
}

TEST(key_load_refuses_a_key_that_does_not_fit_the_algorithm)
{
    static const struct {
        ft_jwt_alg_t alg, key_of;
        const char *message;
    } cases[] = {
        {FT_JWT_ES256, FT_JWT_RS256, "ES256 needs an EC key on P-256"},
        {FT_JWT_EDDSA, FT_JWT_RS256, "EdDSA needs an Ed25519 key"},
        {FT_JWT_RS256, FT_JWT_ES256, "RS256 needs an RSA key"},
        {FT_JWT_EDDSA, FT_JWT_ES256, "EdDSA needs an Ed25519 key"},
        {FT_JWT_RS256, FT_JWT_EDDSA, "RS256 needs an RSA key"},
        {FT_JWT_ES256, FT_JWT_EDDSA, "ES256 needs an EC key on P-256"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ft_error_t err = {0};
        char *pub = public_pem(pem_for(cases[i].key_of, 0));
        CHECK(ft_jwt_key_load(cases[i].alg, "k", pem_for(cases[i].key_of, 0), &err) == NULL);
        CHECK_INT(FT_EINVAL, err.code);
        CHECK_STR(cases[i].message, err.message);
        CHECK(ft_jwt_key_load(cases[i].alg, "k", pub, &err) == NULL);
        CHECK_STR(cases[i].message, err.message);
        free(pub);
    }
}

TEST(key_load_refuses_rsa_under_2048_bits_and_other_curves)
{
    ft_error_t err = {0};
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    EVP_PKEY *pss = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);
    CHECK(pctx != NULL && EVP_PKEY_keygen_init(pctx) == 1 && EVP_PKEY_CTX_set_rsa_keygen_bits(pctx, 2048) == 1 &&
          EVP_PKEY_keygen(pctx, &pss) == 1);
    EVP_PKEY_CTX_free(pctx);
    CHECK(small != NULL && p384 != NULL && x25519 != NULL && pss != NULL);
    char *small_pem = pem_of(small, 1, NULL), *p384_pem = pem_of(p384, 1, NULL), *x_pem = pem_of(x25519, 1, NULL);
    char *pss_pem = pem_of(pss, 1, NULL);
    EVP_PKEY_free(small);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(x25519);
    EVP_PKEY_free(pss);

    CHECK(ft_jwt_key_load(FT_JWT_RS256, "k", small_pem, &err) == NULL);
    CHECK_STR("RS256 needs an RSA key of 2048 to 8192 bits, this one has 1024", err.message);
    CHECK(ft_jwt_key_load(FT_JWT_RS256, "k", pss_pem, &err) == NULL);
    CHECK_STR("RS256 needs an RSA key", err.message);
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", p384_pem, &err) == NULL);
    CHECK_STR("ES256 needs an EC key on P-256", err.message);
    CHECK(ft_jwt_key_load(FT_JWT_EDDSA, "k", x_pem, &err) == NULL);
    CHECK_STR("EdDSA needs an Ed25519 key", err.message);
    free(small_pem);
    free(p384_pem);
    free(x_pem);
    free(pss_pem);
}

TEST(key_load_refuses_garbage_encrypted_pem_and_bad_kids)
{
    ft_error_t err = {0};
    const char *pem = pem_for(FT_JWT_ES256, 0);
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", "not a key", &err) == NULL);
    CHECK_CONTAINS(err.message, "not a readable unencrypted PEM");
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", "", &err) == NULL);
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", NULL, &err) == NULL);
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &err) == NULL);

    EVP_PKEY *k = read_private(pem);
    char *encrypted = pem_of(k, 1, "passphrase");
    EVP_PKEY_free(k);
    CHECK_CONTAINS(encrypted, "ENCRYPTED");
    CHECK(ft_jwt_key_load(FT_JWT_ES256, "k", encrypted, &err) == NULL);
    CHECK_CONTAINS(err.message, "not a readable unencrypted PEM");
    free(encrypted);

    char long_kid[130];
    memset(long_kid, 'k', 129);
    long_kid[129] = '\0';
    static const char *const bad_kids[] = {"", "has space", "tab\t", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_kids) / sizeof(bad_kids[0]); i++) {
        CHECK(ft_jwt_key_load(FT_JWT_ES256, bad_kids[i], pem, &err) == NULL);
        CHECK_STR("key id must be 1 to 128 printable ASCII characters", err.message);
    }
    CHECK(ft_jwt_key_load(FT_JWT_ES256, NULL, pem, &err) == NULL);
    CHECK(ft_jwt_key_load(FT_JWT_ES256, long_kid, pem, &err) == NULL);
    long_kid[128] = '\0';
    ft_jwt_key_free(load(FT_JWT_ES256, long_kid, pem));
}

TEST(keyring_add_enforces_its_rules)
{
    ft_error_t err = {0};
    const char *pem = pem_for(FT_JWT_ES256, 0);
    char *pub = public_pem(pem_for(FT_JWT_ES256, 1));
    ft_jwt_keyring_t *ring = ft_jwt_keyring_new(FT_JWT_ES256);
    CHECK_INT(FT_JWT_ES256, ft_jwt_keyring_alg(ring));

    CHECK_INT(FT_EINVAL, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "pub", pub), 1, &err));
    CHECK_STR("key pub has no private key and cannot sign", err.message);
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "pub", pub), 0, &err));
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "k1", pem), 1, &err));
    CHECK_INT(FT_ECONFLICT, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "k1", pem), 0, &err));
    CHECK_STR("key id k1 is already in the keyring", err.message);
    CHECK_INT(FT_ECONFLICT, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "k2", pem), 1, &err));
    CHECK_STR("the keyring already has a signing key (k1)", err.message);
    CHECK_INT(FT_EINVAL, ft_jwt_keyring_add(ring, load(FT_JWT_EDDSA, "k3", pem_for(FT_JWT_EDDSA, 0)), 0, &err));
    CHECK_STR("key k3 is for EdDSA, the keyring for ES256", err.message);
    CHECK_INT(FT_EINVAL, ft_jwt_keyring_add(ring, NULL, 0, &err));
    CHECK_INT(FT_EINVAL, ft_jwt_keyring_add(NULL, load(FT_JWT_ES256, "k4", pem), 0, NULL));

    CHECK(ft_jwt_keyring_find(ring, "k1") != NULL);
    CHECK_STR("pub", ft_jwt_key_kid(ft_jwt_keyring_find(ring, "pub")));
    CHECK(ft_jwt_keyring_find(ring, "k2") == NULL);
    CHECK(ft_jwt_keyring_find(ring, "K1") == NULL);
    CHECK(ft_jwt_keyring_find(ring, NULL) == NULL);

    /* once shared, it is immutable */
    ft_jwt_keyring_t *shared = ft_jwt_keyring_ref(ring);
    CHECK(shared == ring);
    CHECK_INT(FT_ESTATE, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "k5", pem), 0, &err));
    ft_jwt_keyring_unref(shared);
    ft_jwt_keyring_free(ring);
    free(pub);
}

TEST(keyring_references_keep_it_alive)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "k1", 0);
    char *token = sign_claims(ring, GOOD_CLAIMS);
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *held = ft_jwt_keyring_ref(ring);
    ft_jwt_keyring_free(ring); /* the creator lets go; the request still holds it */
    CHECK_ACCEPTED(held, token, &o);
    ft_jwt_keyring_unref(held); /* the last reference frees it (ASan reports a leak or a double free) */
    ft_jwt_keyring_unref(NULL);
    free(token);
}

TEST(sign_refuses_non_object_claims_and_a_ring_without_signing_key)
{
    ft_error_t err = {0};
    char *token = (char *)"unchanged";
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_ES256, "k1", 0);
    json_t *arr = json_array();
    CHECK_INT(FT_EINVAL, ft_jwt_sign(ring, arr, &token, &err));
    CHECK(token == NULL);
    CHECK_INT(FT_EINVAL, ft_jwt_sign(ring, NULL, &token, &err));
    json_decref(arr);
    ft_jwt_keyring_free(ring);

    char *pub = public_pem(pem_for(FT_JWT_ES256, 0));
    ring = ft_jwt_keyring_new(FT_JWT_ES256);
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "k1", pub), 0, &err));
    json_t *claims = parse(GOOD_CLAIMS);
    CHECK_INT(FT_ESTATE, ft_jwt_sign(ring, claims, &token, &err));
    CHECK_STR("the keyring has no signing key", err.message);
    json_decref(claims);
    ft_jwt_keyring_free(ring);
    free(pub);
}

/* ---- round trips */

static void round_trip(ft_jwt_alg_t alg, size_t siglen)
{
    ft_jwt_keyring_t *ring = signing_ring(alg, "key-2024", 0);
    char *token = sign_claims(ring, GOOD_CLAIMS);
    size_t len;
    unsigned char *header = segment(token, 0, &len), *payload = segment(token, 1, &len), *sig = segment(token, 2, &len);
    char *expected_header = header_for(alg, "key-2024");
    CHECK_STR(expected_header, (char *)header);
    CHECK_STR(GOOD_CLAIMS, (char *)payload); /* compact, in insertion order */
    CHECK_INT(siglen, len);

    json_t *claims = NULL, *want = parse(GOOD_CLAIMS);
    ft_jwt_verify_opts_t o = default_opts();
    ft_error_t err = {0};
    CHECK_INT(FT_OK, ft_jwt_verify(ring, token, strlen(token), &o, &claims, &err));
    CHECK(json_equal(claims, want));
    json_decref(claims);

    /* a verify-only ring holding just the public key accepts it too */
    char *pub = public_pem(pem_for(alg, 0));
    ft_jwt_keyring_t *verifier = ft_jwt_keyring_new(alg);
    ft_jwt_key_t *k = load(alg, "key-2024", pub);
    CHECK_INT(0, ft_jwt_key_can_sign(k));
    CHECK_INT(FT_OK, ft_jwt_keyring_add(verifier, k, 0, &err));
    CHECK_ACCEPTED(verifier, token, &o);

    /* no options: no iss/aud checks, the real clock (the token is from 2023, so expired) */
    CHECK_REFUSED_AS(FT_EEXPIRED, ring, token, NULL, "token expired");

    ft_jwt_keyring_free(verifier);
    ft_jwt_keyring_free(ring);
    json_decref(want);
    free(pub);
    free(expected_header);
    free(header);
    free(payload);
    free(sig);
    free(token);
}

TEST(rs256_round_trip)
{
    round_trip(FT_JWT_RS256, FT_JWT_RSA_BITS / 8);
}

TEST(es256_round_trip_uses_raw_64_byte_signatures)
{
    round_trip(FT_JWT_ES256, 64);
}

TEST(eddsa_round_trip)
{
    round_trip(FT_JWT_EDDSA, 64);
}

TEST(tokens_signed_outside_jwt_c_verify)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        char *header = header_for(alg, "k1");
        char *token = token_signed(alg, 0, header, GOOD_CLAIMS);
        CHECK_ACCEPTED(ring, token, &o);
        free(token);
        free(header);
        ft_jwt_keyring_free(ring);
    }
}

TEST(rotation_old_tokens_verify_after_a_new_signing_key)
{
    ft_error_t err = {0};
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *old_ring = signing_ring(FT_JWT_ES256, "old", 0);
    char *old_token = sign_claims(old_ring, GOOD_CLAIMS);

    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_ES256, "new", 1);
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, load(FT_JWT_ES256, "old", pem_for(FT_JWT_ES256, 0)), 0, &err));
    char *new_token = sign_claims(ring, GOOD_CLAIMS);
    size_t len;
    unsigned char *h = segment(new_token, 0, &len);
    CHECK_CONTAINS((char *)h, "\"kid\":\"new\"");
    CHECK_ACCEPTED(ring, old_token, &o);
    CHECK_ACCEPTED(ring, new_token, &o);
    CHECK_REFUSED(old_ring, new_token, &o, "unknown signing key id");
    free(h);
    free(old_token);
    free(new_token);
    ft_jwt_keyring_free(ring);
    ft_jwt_keyring_free(old_ring);
}

/* ---- JWKs */

static void check_b64_member(const json_t *jwk, const char *name, size_t expected_len, unsigned char *out)
{
    const char *v = json_string_value(json_object_get(jwk, name));
    if (v == NULL)
        FT_FAIL_("JWK member %s missing", name);
    unsigned char *raw;
    size_t len;
    raw = unb64(v, strlen(v), &len);
    CHECK_INT(expected_len, len);
    if (out != NULL)
        memcpy(out, raw, len);
    free(raw);
}

static void check_public_only(const json_t *jwk, size_t members)
{
    static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
    for (size_t i = 0; i < sizeof(private_members) / sizeof(private_members[0]); i++)
        if (json_object_get(jwk, private_members[i]) != NULL)
            FT_FAIL_("JWK has the private member %s", private_members[i]);
    CHECK_INT(members, json_object_size(jwk));
    CHECK_STR("sig", json_string_value(json_object_get(jwk, "use")));
}

TEST(jwks_rs256_has_n_and_e)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "r1", 0);
    json_t *jwks = ft_jwt_keyring_jwks(ring);
    CHECK_INT(1, json_array_size(json_object_get(jwks, "keys")));
    json_t *jwk = json_array_get(json_object_get(jwks, "keys"), 0);
    CHECK_STR("RSA", json_string_value(json_object_get(jwk, "kty")));
    CHECK_STR("r1", json_string_value(json_object_get(jwk, "kid")));
    CHECK_STR("RS256", json_string_value(json_object_get(jwk, "alg")));
    CHECK_STR("AQAB", json_string_value(json_object_get(jwk, "e")));
    unsigned char n[FT_JWT_RSA_BITS / 8];
    check_b64_member(jwk, "n", sizeof(n), n);
    CHECK(n[0] & 0x80); /* full length, no leading zero octet */
    check_public_only(jwk, 6);
    json_decref(jwks);
    ft_jwt_keyring_free(ring);
}

TEST(jwks_es256_has_p256_coordinates)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_ES256, "e1", 0);
    json_t *jwk = ft_jwt_key_jwk(ft_jwt_keyring_find(ring, "e1"));
    CHECK_STR("EC", json_string_value(json_object_get(jwk, "kty")));
    CHECK_STR("P-256", json_string_value(json_object_get(jwk, "crv")));
    CHECK_STR("ES256", json_string_value(json_object_get(jwk, "alg")));
    CHECK_STR("e1", json_string_value(json_object_get(jwk, "kid")));
    check_b64_member(jwk, "x", 32, NULL);
    check_b64_member(jwk, "y", 32, NULL);
    check_public_only(jwk, 7);
    json_decref(jwk);
    ft_jwt_keyring_free(ring);
}

TEST(jwks_es256_pads_short_coordinates_to_32_bytes)
{
    /* About 1 key in 128 has an x or y below 2^248: find one, its JWK must still carry 32 bytes. */
    EVP_PKEY *k = NULL;
    for (int i = 0; i < 5000 && k == NULL; i++) {
        EVP_PKEY *c = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        BIGNUM *x = NULL, *y = NULL;
        CHECK(c != NULL && EVP_PKEY_get_bn_param(c, "qx", &x) == 1 && EVP_PKEY_get_bn_param(c, "qy", &y) == 1);
        if (BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32)
            k = c;
        else
            EVP_PKEY_free(c);
        BN_free(x);
        BN_free(y);
    }
    CHECK(k != NULL);
    char *pem = pem_of(k, 1, NULL);
    EVP_PKEY_free(k);
    ft_jwt_key_t *key = load(FT_JWT_ES256, "short", pem);
    json_t *jwk = ft_jwt_key_jwk(key);
    unsigned char x[32], y[32];
    check_b64_member(jwk, "x", 32, x);
    check_b64_member(jwk, "y", 32, y);
    CHECK(x[0] == 0 || y[0] == 0);
    /* and it signs and verifies like any other */
    ft_jwt_keyring_t *ring = ft_jwt_keyring_new(FT_JWT_ES256);
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, key, 1, NULL));
    char *token = sign_claims(ring, GOOD_CLAIMS);
    ft_jwt_verify_opts_t o = default_opts();
    CHECK_ACCEPTED(ring, token, &o);
    free(token);
    ft_jwt_keyring_free(ring);
    json_decref(jwk);
    free(pem);
}

TEST(jwks_eddsa_has_okp_x)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "o1", 0);
    json_t *jwk = ft_jwt_key_jwk(ft_jwt_keyring_find(ring, "o1"));
    CHECK_STR("OKP", json_string_value(json_object_get(jwk, "kty")));
    CHECK_STR("Ed25519", json_string_value(json_object_get(jwk, "crv")));
    CHECK_STR("EdDSA", json_string_value(json_object_get(jwk, "alg")));
    check_b64_member(jwk, "x", 32, NULL);
    check_public_only(jwk, 6);
    json_decref(jwk);
    ft_jwt_keyring_free(ring);
}

TEST(jwks_lists_every_key_in_order_and_copies)
{
    ft_error_t err = {0};
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "new", 1);
    CHECK_INT(FT_OK, ft_jwt_keyring_add(ring, load(FT_JWT_EDDSA, "old", pem_for(FT_JWT_EDDSA, 0)), 0, &err));
    json_t *jwks = ft_jwt_keyring_jwks(ring);
    json_t *keys = json_object_get(jwks, "keys");
    CHECK_INT(2, json_array_size(keys));
    CHECK_STR("new", json_string_value(json_object_get(json_array_get(keys, 0), "kid")));
    CHECK_STR("old", json_string_value(json_object_get(json_array_get(keys, 1), "kid")));
    /* the caller owns a copy: changing it changes nothing in the ring */
    json_object_set_new(json_array_get(keys, 0), "kid", json_string("mutated"));
    json_t *again = ft_jwt_keyring_jwks(ring);
    CHECK_STR("new", json_string_value(json_object_get(json_array_get(json_object_get(again, "keys"), 0), "kid")));
    json_decref(again);
    json_decref(jwks);
    ft_jwt_keyring_free(ring);
}

TEST(jwk_matches_the_rfc8037_ed25519_vector)
{
    /* RFC 8037 appendix A.1 (private d) and A.2 (public x). */
    size_t len;
    unsigned char *d = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A", 43, &len);
    CHECK_INT(32, len);
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, len);
    CHECK(k != NULL);
    char *pem = pem_of(k, 1, NULL);
    EVP_PKEY_free(k);
    ft_jwt_key_t *key = load(FT_JWT_EDDSA, "rfc8037", pem);
    json_t *jwk = ft_jwt_key_jwk(key);
    CHECK_STR("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", json_string_value(json_object_get(jwk, "x")));
    json_decref(jwk);
    ft_jwt_key_free(key);
    free(pem);
    free(d);
}

/* ---- attacks and malformed tokens: each must be refused with a 401-safe reason */

TEST(refuses_alg_none)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        char *h = b64s("{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"k1\"}"), *p = b64s(GOOD_CLAIMS);
        char *unsigned_token = ft_mem_asprintf("%s.%s.", h, p);
        char *with_junk = ft_mem_asprintf("%s.%s.AAAA", h, p);
        char *why = ft_mem_asprintf("algorithm none is not accepted (expected %s)", ft_jwt_alg_name(alg));
        CHECK_REFUSED(ring, unsigned_token, &o, "token is not three base64url parts");
        CHECK_REFUSED(ring, with_junk, &o, why);
        free(why);
        free(with_junk);
        free(unsigned_token);
        free(h);
        free(p);
        ft_jwt_keyring_free(ring);
    }
}

TEST(refuses_hs256_signed_with_the_rsa_public_key)
{
    /* The HS/RS confusion: a verifier that trusted alg would HMAC with the public key as secret. */
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    char *pub = public_pem(pem_for(FT_JWT_RS256, 0));
    char *h = b64s("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"), *p = b64s(GOOD_CLAIMS);
    char *tbs = ft_mem_asprintf("%s.%s", h, p);
    unsigned char mac[32];
    size_t maclen = 0;
    CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pub, strlen(pub), (const unsigned char *)tbs, strlen(tbs), mac, sizeof(mac),
                    &maclen) != NULL);
    CHECK_INT(32, maclen);
    char *s = b64(mac, maclen);
    char *token = ft_mem_asprintf("%s.%s", tbs, s);
    ft_jwt_verify_opts_t o = default_opts();
    CHECK_REFUSED(ring, token, &o, "algorithm HS256 is not accepted (expected RS256)");
    free(token);
    free(s);
    free(tbs);
    free(h);
    free(p);
    free(pub);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_a_changed_alg)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    char *token = sign_claims(ring, GOOD_CLAIMS);
    static const struct {
        const char *header, *reason;
    } cases[] = {
        {"{\"alg\":\"RS512\",\"typ\":\"JWT\",\"kid\":\"k1\"}", "algorithm RS512 is not accepted (expected RS256)"},
        {"{\"alg\":\"rs256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", "algorithm rs256 is not accepted (expected RS256)"},
        {"{\"alg\":\"PS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", "algorithm PS256 is not accepted (expected RS256)"},
        {"{\"alg\":\"RS256 \",\"typ\":\"JWT\",\"kid\":\"k1\"}", "algorithm is not accepted (expected RS256)"},
        {"{\"alg\":\"<script>\",\"kid\":\"k1\"}", "algorithm is not accepted (expected RS256)"},
        {"{\"alg\":\"RS256\\u0000\",\"kid\":\"k1\"}", "token header is not a JSON object"},
        {"{\"alg\":[\"RS256\"],\"kid\":\"k1\"}", "token header has no alg"},
        {"{\"alg\":null,\"kid\":\"k1\"}", "token header has no alg"},
        {"{\"typ\":\"JWT\",\"kid\":\"k1\"}", "token header has no alg"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *h = b64s(cases[i].header), *t = replace_segment(token, 0, h);
        CHECK_REFUSED(ring, t, &o, cases[i].reason);
        free(t);
        free(h);
    }
    free(token);
    ft_jwt_keyring_free(ring);

    /* an EdDSA-signed token offered to an ES256 ring, under a kid the ring knows */
    ring = signing_ring(FT_JWT_ES256, "k1", 0);
    char *h = header_for(FT_JWT_EDDSA, "k1");
    token = token_signed(FT_JWT_EDDSA, 0, h, GOOD_CLAIMS);
    CHECK_REFUSED(ring, token, &o, "algorithm EdDSA is not accepted (expected ES256)");
    free(token);
    free(h);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_a_tampered_payload)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        char *token = sign_claims(ring, GOOD_CLAIMS);
        char *p = b64s("{\"sub\":\"admin\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"iat\":1700000000,\"exp\":1700000600}");
        char *t = replace_segment(token, 1, p);
        CHECK_REFUSED(ring, t, &o, "signature does not verify");
        free(t);
        /* and one flipped signature bit */
        size_t n = strlen(token);
        token[n - 5] = token[n - 5] == 'A' ? 'B' : 'A';
        CHECK_REFUSED(ring, token, &o, "signature does not verify");
        free(p);
        free(token);
        ft_jwt_keyring_free(ring);
    }
}

TEST(refuses_a_signature_from_another_key_with_the_same_kid)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0), *attacker = signing_ring(alg, "k1", 1);
        char *token = sign_claims(attacker, GOOD_CLAIMS);
        CHECK_REFUSED(ring, token, &o, "signature does not verify");
        free(token);
        ft_jwt_keyring_free(attacker);
        ft_jwt_keyring_free(ring);
    }
}

TEST(refuses_unknown_or_missing_kid)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    static const struct {
        const char *header, *reason;
    } cases[] = {
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k2\"}", "unknown signing key id"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"\"}", "unknown signing key id"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\"}", "token header has no kid"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":1}", "token header has no kid"},
        {"{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":[\"k1\"]}", "token header has no kid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* signed for real, so only the kid is at fault */
        char *token = token_signed(FT_JWT_RS256, 0, cases[i].header, GOOD_CLAIMS);
        CHECK_REFUSED(ring, token, &o, cases[i].reason);
        free(token);
    }
    ft_jwt_keyring_free(ring);
}

/* Signs claims with a fresh EdDSA ring and checks the verdict under o: accepted when reason is
 * NULL, else refused with code and that reason. */
static void check_claims_as(int code, const char *claims, const ft_jwt_verify_opts_t *o, const char *reason)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "k1", 0);
    char *token = sign_claims(ring, claims);
    ft_error_t err = {0};
    int rc = verify(ring, token, o, &err);
    free(token);
    ft_jwt_keyring_free(ring);
    if (reason == NULL && rc != FT_OK)
        FT_FAIL_("claims %s refused: %s", claims, err.message);
    if (reason != NULL && (rc != code || err.code != code || strcmp(err.message, reason) != 0))
        FT_FAIL_("claims %s: expected %d \"%s\", got %d \"%s\"", claims, code, reason, rc, rc == FT_OK ? "" : err.message);
}

static void check_claims(const char *claims, const ft_jwt_verify_opts_t *o, const char *reason)
{
    check_claims_as(FT_EAUTH, claims, o, reason);
}

TEST(refuses_an_expired_token)
{
    ft_jwt_verify_opts_t o = default_opts();
    check_claims_as(FT_EEXPIRED, "{\"exp\":1699999999}", &o, "token expired");
    check_claims_as(FT_EEXPIRED, "{\"exp\":1700000000}", &o, "token expired"); /* exp is exclusive */
    check_claims("{\"exp\":1700000001}", &(ft_jwt_verify_opts_t){.now = NOW}, NULL);
    check_claims_as(FT_EEXPIRED, "{\"exp\":1699999999.5}", &(ft_jwt_verify_opts_t){.now = NOW}, "token expired");
    check_claims("{\"exp\":1699999999}", &(ft_jwt_verify_opts_t){.now = NOW, .leeway_s = 5}, NULL);
    check_claims_as(FT_EEXPIRED, "{\"exp\":1699999995}", &(ft_jwt_verify_opts_t){.now = NOW, .leeway_s = 5}, "token expired");
    check_claims_as(FT_EEXPIRED, "{\"exp\":-1}", &(ft_jwt_verify_opts_t){.now = NOW}, "token expired");
    check_claims("{\"exp\":9223372036854775807}", &(ft_jwt_verify_opts_t){.now = NOW}, NULL);
}

TEST(refuses_a_token_not_valid_yet)
{
    ft_jwt_verify_opts_t o = {.now = NOW};
    check_claims("{\"exp\":1700000600,\"nbf\":1700000010}", &o, "token not valid yet");
    check_claims("{\"exp\":1700000600,\"nbf\":1700000000}", &o, NULL); /* nbf is inclusive */
    check_claims("{\"exp\":1700000600,\"nbf\":1700000010}", &(ft_jwt_verify_opts_t){.now = NOW, .leeway_s = 10}, NULL);
    check_claims("{\"exp\":1700000600,\"nbf\":1700000011}", &(ft_jwt_verify_opts_t){.now = NOW, .leeway_s = 10},
                 "token not valid yet");
}

TEST(refuses_time_claims_that_are_not_numbers)
{
    ft_jwt_verify_opts_t o = {.now = NOW};
    check_claims("{\"sub\":\"u1\"}", &o, "exp claim missing");
    check_claims("{\"exp\":\"1700000600\"}", &o, "exp claim is not a number");
    check_claims("{\"exp\":null}", &o, "exp claim is not a number");
    check_claims("{\"exp\":true}", &o, "exp claim is not a number");
    check_claims("{\"exp\":[1700000600]}", &o, "exp claim is not a number");
    check_claims("{\"exp\":1700000600,\"nbf\":\"0\"}", &o, "nbf claim is not a number");
    check_claims("{\"exp\":1700000600,\"iat\":\"1700000000\"}", &o, "iat claim is not a number");
    check_claims("{\"exp\":1700000600.25,\"nbf\":1699999999.5,\"iat\":1700000000}", &o, NULL);
}

TEST(refuses_a_wrong_issuer)
{
    ft_jwt_verify_opts_t o = {.now = NOW, .issuer = ISS};
    check_claims("{\"exp\":1700000600,\"iss\":\"https://evil.test\"}", &o, "issuer does not match");
    check_claims("{\"exp\":1700000600,\"iss\":\"" ISS "/\"}", &o, "issuer does not match");
    check_claims("{\"exp\":1700000600}", &o, "issuer does not match");
    check_claims("{\"exp\":1700000600,\"iss\":[\"" ISS "\"]}", &o, "issuer does not match");
    check_claims("{\"exp\":1700000600,\"iss\":\"" ISS "\"}", &o, NULL);
    check_claims("{\"exp\":1700000600,\"iss\":\"anyone\"}", &(ft_jwt_verify_opts_t){.now = NOW}, NULL);
}

TEST(refuses_a_wrong_audience)
{
    ft_jwt_verify_opts_t o = {.now = NOW, .audience = AUD};
    check_claims("{\"exp\":1700000600,\"aud\":\"other-api\"}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600,\"aud\":[\"a\",\"b\"]}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600,\"aud\":[]}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600,\"aud\":[[\"" AUD "\"]]}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600,\"aud\":7}", &o, "audience does not match");
    check_claims("{\"exp\":1700000600,\"aud\":\"" AUD "\"}", &o, NULL);
    check_claims("{\"exp\":1700000600,\"aud\":[\"a\",\"" AUD "\"]}", &o, NULL);
    check_claims("{\"exp\":1700000600,\"aud\":\"other\"}", &(ft_jwt_verify_opts_t){.now = NOW}, NULL);
}

TEST(refuses_tokens_that_are_not_three_base64url_parts)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_ES256, "k1", 0);
    char *token = sign_claims(ring, GOOD_CLAIMS);
    CHECK_ACCEPTED(ring, token, &o);
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    char *variants[] = {
        ft_mem_asprintf("%s.AAAA", token),                            /* four segments */
        ft_mem_asprintf("%.*s", (int)(d2 - token), token),            /* two */
        ft_mem_asprintf("%.*s.", (int)(d2 - token), token),           /* empty signature */
        ft_mem_asprintf("%s", d1),                                    /* empty header */
        ft_mem_asprintf("%.*s.%s", (int)(d1 - token), token, d2),     /* empty payload */
        ft_mem_asprintf("%s=", token),                                /* padding */
        ft_mem_asprintf("%.*s=%s", (int)(d2 - token), token, d2),     /* padding in the payload */
        ft_mem_asprintf("%s ", token),                                /* trailing space */
        ft_mem_asprintf(" %s", token),                                /* leading space */
        ft_mem_asprintf("%.*s+%s", (int)(d1 - token - 1), token, d1), /* standard base64 character */
        ft_mem_asprintf("%s..", token),
        ft_mem_asprintf(".."),
        ft_mem_asprintf("."),
        ft_mem_asprintf("abc"),
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
        ft_error_t e = {0};
        if (verify(ring, variants[i], &o, &e) != FT_EAUTH || strcmp(e.message, "token is not three base64url parts") != 0)
            FT_FAIL_("variant %zu (%s): got \"%s\"", i, variants[i], e.message);
        free(variants[i]);
    }
    CHECK_REFUSED(ring, "", &o, "token missing");
    json_t *claims = NULL;
    ft_error_t err = {0};
    CHECK_INT(FT_EAUTH, ft_jwt_verify(ring, NULL, 0, &o, &claims, &err));
    CHECK_INT(FT_EINVAL, ft_jwt_verify(NULL, token, strlen(token), &o, &claims, &err));
    CHECK_INT(FT_EINVAL, ft_jwt_verify(ring, token, strlen(token), &o, NULL, &err));
    /* only len bytes count: the token followed by garbage verifies when len stops before it */
    char *padded = ft_mem_asprintf("%s.garbage", token);
    CHECK_INT(FT_OK, ft_jwt_verify(ring, padded, strlen(token), &o, &claims, &err));
    json_decref(claims);
    free(padded);
    free(token);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_an_es256_der_signature)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_ES256, "k1", 0);
    char *h = b64s("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\"}"), *p = b64s(GOOD_CLAIMS);
    char *tbs = ft_mem_asprintf("%s.%s", h, p);
    unsigned char der[1024], raw[64];
    size_t derlen = evp_sign(FT_JWT_ES256, pem_for(FT_JWT_ES256, 0), tbs, der, 0);
    CHECK(derlen >= 8 && derlen <= 72 && der[0] == 0x30);
    der_to_raw(der, derlen, raw);

    char *s_der = b64(der, derlen), *s_raw = b64(raw, 64), *s_short = b64(raw, 63);
    char *t_der = ft_mem_asprintf("%s.%s", tbs, s_der), *t_raw = ft_mem_asprintf("%s.%s", tbs, s_raw);
    char *t_short = ft_mem_asprintf("%s.%s", tbs, s_short);
    CHECK_REFUSED(ring, t_der, &o, "signature does not verify");
    CHECK_ACCEPTED(ring, t_raw, &o); /* the same signature as r||s */
    CHECK_REFUSED(ring, t_short, &o, "signature does not verify");

    unsigned char zero[64] = {0};
    char *s_zero = b64(zero, 64), *t_zero = ft_mem_asprintf("%s.%s", tbs, s_zero);
    CHECK_REFUSED(ring, t_zero, &o, "signature does not verify");
    memset(zero, 0xff, sizeof(zero)); /* r, s >= the group order */
    char *s_ff = b64(zero, 64), *t_ff = ft_mem_asprintf("%s.%s", tbs, s_ff);
    CHECK_REFUSED(ring, t_ff, &o, "signature does not verify");

    free(s_ff);
    free(t_ff);
    free(s_zero);
    free(t_zero);
    free(s_der);
    free(s_raw);
    free(s_short);
    free(t_der);
    free(t_raw);
    free(t_short);
    free(tbs);
    free(h);
    free(p);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_signatures_of_the_wrong_length)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        char *token = sign_claims(ring, GOOD_CLAIMS);
        size_t len;
        unsigned char *sig = segment(token, 2, &len);
        char *longer_sig = ft_mem_alloc(len + 1);
        memcpy(longer_sig, sig, len);
        longer_sig[len] = 0;
        char *s_short = b64(sig, len - 1), *s_long = b64(longer_sig, len + 1);
        char *t_short = replace_segment(token, 2, s_short), *t_long = replace_segment(token, 2, s_long);
        CHECK_REFUSED(ring, t_short, &o, "signature does not verify");
        CHECK_REFUSED(ring, t_long, &o, "signature does not verify");
        free(t_short);
        free(t_long);
        free(s_short);
        free(s_long);
        free(longer_sig);
        free(sig);
        free(token);
        ft_jwt_keyring_free(ring);
    }
}

TEST(refuses_duplicate_keys_in_header_or_payload)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    char *t = token_signed(FT_JWT_RS256, 0, "{\"alg\":\"RS256\",\"alg\":\"RS256\",\"kid\":\"k1\"}", GOOD_CLAIMS);
    CHECK_REFUSED(ring, t, &o, "token header is not a JSON object");
    free(t);
    t = token_signed(FT_JWT_RS256, 0, "{\"alg\":\"none\",\"kid\":\"k1\",\"alg\":\"RS256\"}", GOOD_CLAIMS);
    CHECK_REFUSED(ring, t, &o, "token header is not a JSON object");
    free(t);
    t = token_signed(FT_JWT_RS256, 0, RS256_HEADER,
                     "{\"sub\":\"u1\",\"sub\":\"admin\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1700000600}");
    CHECK_REFUSED(ring, t, &o, "token payload is not a JSON object");
    free(t);
    t = token_signed(FT_JWT_RS256, 0, RS256_HEADER, "{\"exp\":1700000600,\"x\":{\"a\":1,\"a\":2}}");
    CHECK_REFUSED(ring, t, &o, "token payload is not a JSON object");
    free(t);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_headers_and_payloads_that_are_not_objects)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    static const char *const headers[] = {"[\"RS256\"]", "\"RS256\"", "null", "{\"alg\":\"RS256\"", "not json", "{} {}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = token_signed(FT_JWT_RS256, 0, headers[i], GOOD_CLAIMS);
        CHECK_REFUSED(ring, t, &o, "token header is not a JSON object");
        free(t);
    }
    static const char *const payloads[] = {"[]", "1700000600", "", "{\"exp\":1700000600", "\xff\xfe"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *t = token_signed(FT_JWT_RS256, 0, RS256_HEADER, payloads[i]);
        CHECK_REFUSED(ring, t, &o,
                      payloads[i][0] == '\0' ? "token is not three base64url parts" : "token payload is not a JSON object");
        free(t);
    }
    ft_jwt_keyring_free(ring);
}

TEST(refuses_an_oversized_token_before_parsing)
{
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "k1", 0);
    char *token = sign_claims(ring, GOOD_CLAIMS);
    ft_jwt_verify_opts_t o = default_opts();
    o.max_len = strlen(token);
    CHECK_ACCEPTED(ring, token, &o);
    o.max_len = strlen(token) - 1;
    CHECK_REFUSED(ring, token, &o, "token is too long");

    /* the default limit, 8192: a big claim set is refused, whatever it holds */
    char *blob = ft_mem_alloc(7000);
    memset(blob, 'x', 6999);
    blob[6999] = '\0';
    char *claims = ft_mem_asprintf("{\"exp\":1700000600,\"blob\":\"%s\"}", blob);
    char *big = sign_claims(ring, claims);
    CHECK(strlen(big) > FT_JWT_DEFAULT_MAX_LEN);
    o.max_len = 0;
    CHECK_REFUSED(ring, big, &o, "token is too long");
    o.max_len = 16384;
    o.issuer = o.audience = NULL;
    CHECK_ACCEPTED(ring, big, &o);

    char *junk = ft_mem_alloc(FT_JWT_DEFAULT_MAX_LEN + 2);
    memset(junk, 'A', FT_JWT_DEFAULT_MAX_LEN + 1);
    junk[FT_JWT_DEFAULT_MAX_LEN + 1] = '\0';
    CHECK_REFUSED(ring, junk, NULL, "token is too long");
    free(junk);
    free(big);
    free(claims);
    free(blob);
    free(token);
    ft_jwt_keyring_free(ring);
}

TEST(refuses_a_crit_header)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_RS256, "k1", 0);
    char *t = token_signed(FT_JWT_RS256, 0, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", GOOD_CLAIMS);
    CHECK_REFUSED(ring, t, &o, "crit header is not supported");
    free(t);
    t = token_signed(FT_JWT_RS256, 0, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[]}", GOOD_CLAIMS);
    CHECK_REFUSED(ring, t, &o, "crit header is not supported");
    free(t);
    ft_jwt_keyring_free(ring);
}

TEST(ignores_key_material_offered_by_the_token)
{
    ft_jwt_verify_opts_t o = default_opts();
    ft_jwt_keyring_t *ring = signing_ring(FT_JWT_EDDSA, "k1", 0), *attacker = signing_ring(FT_JWT_EDDSA, "k1", 1);
    json_t *attacker_jwk = ft_jwt_key_jwk(ft_jwt_keyring_find(attacker, "k1"));
    char *jwk_text = json_dumps(attacker_jwk, JSON_COMPACT);
    char *header = ft_mem_asprintf("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"jwk\":%s,\"jku\":\"https://evil.test/jwks\","
                                   "\"x5u\":\"https://evil.test/cert\",\"x5c\":[\"AAAA\"]}",
                                   jwk_text);
    /* signed by the attacker's key that the header carries: refused */
    char *t = token_signed(FT_JWT_EDDSA, 1, header, GOOD_CLAIMS);
    CHECK_REFUSED(ring, t, &o, "signature does not verify");
    free(t);
    /* the same header signed by the ring's key: the extra members change nothing */
    t = token_signed(FT_JWT_EDDSA, 0, header, GOOD_CLAIMS);
    CHECK_ACCEPTED(ring, t, &o);
    free(t);
    free(header);
    free(jwk_text);
    json_decref(attacker_jwk);
    ft_jwt_keyring_free(attacker);
    ft_jwt_keyring_free(ring);
}

/* ---- threads */

typedef struct verify_job {
    const ft_jwt_keyring_t *ring;
    const char *good, *bad;
    int failures;
} verify_job_t;

static void *verify_worker(void *arg)
{
    verify_job_t *job = arg;
    ft_jwt_verify_opts_t o = {.issuer = ISS, .audience = AUD, .now = NOW};
    for (int i = 0; i < 150; i++) {
        json_t *claims = NULL;
        ft_error_t err = {0};
        if (ft_jwt_verify(job->ring, job->good, strlen(job->good), &o, &claims, &err) != FT_OK)
            job->failures++;
        json_decref(claims);
        if (ft_jwt_verify(job->ring, job->bad, strlen(job->bad), &o, &claims, &err) != FT_EAUTH ||
            strcmp(err.message, "signature does not verify") != 0)
            job->failures++;
    }
    return NULL;
}

TEST(verify_is_safe_from_many_threads_on_one_ring)
{
    ft_jwt_alg_t alg;
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0), *other = signing_ring(alg, "k1", 1);
        char *good = sign_claims(ring, GOOD_CLAIMS), *bad = sign_claims(other, GOOD_CLAIMS);
        verify_job_t jobs[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (verify_job_t){.ring = ring, .good = good, .bad = bad};
            CHECK_INT(0, pthread_create(&th[i], NULL, verify_worker, &jobs[i]));
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECK_INT(0, jobs[i].failures);
        }
        free(good);
        free(bad);
        ft_jwt_keyring_free(other);
        ft_jwt_keyring_free(ring);
    }
}

/* ---- interoperability with the openssl command line */

TEST(tokens_signed_by_the_openssl_cli_verify)
{
    ft_jwt_alg_t alg;
    ft_jwt_verify_opts_t o = default_opts();
    tmp_open();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        const char *pem = pem_for(alg, 0);
        tmp_write("key.pem", pem, strlen(pem));
        char *header = header_for(alg, "k1"), *h = b64s(header), *p = b64s(GOOD_CLAIMS);
        char *tbs = ft_mem_asprintf("%s.%s", h, p);
        tmp_write("tbs.txt", tbs, strlen(tbs));
        if (alg == FT_JWT_EDDSA)
            CHECK_INT(0,
                      sh("openssl pkeyutl -sign -inkey %s/key.pem -rawin -in %s/tbs.txt -out %s/sig.bin", tmpdir, tmpdir, tmpdir));
        else
            CHECK_INT(0, sh("openssl dgst -sha256 -sign %s/key.pem -out %s/sig.bin %s/tbs.txt", tmpdir, tmpdir, tmpdir));
        size_t siglen;
        unsigned char *sig = tmp_read("sig.bin", &siglen);
        if (alg == FT_JWT_ES256) {
            /* openssl writes DER: refused as is, accepted once converted to JOSE r||s */
            char *s = b64(sig, siglen), *t = ft_mem_asprintf("%s.%s", tbs, s);
            CHECK_REFUSED(ring, t, &o, "signature does not verify");
            free(s);
            free(t);
            unsigned char raw[64];
            der_to_raw(sig, siglen, raw);
            memcpy(sig, raw, 64);
            siglen = 64;
        }
        char *s = b64(sig, siglen), *token = ft_mem_asprintf("%s.%s", tbs, s);
        CHECK_ACCEPTED(ring, token, &o);
        free(token);
        free(s);
        free(sig);
        free(tbs);
        free(header);
        free(h);
        free(p);
        ft_jwt_keyring_free(ring);
    }
    tmp_close();
}

TEST(our_tokens_verify_with_the_openssl_cli)
{
    ft_jwt_alg_t alg;
    tmp_open();
    FOR_EACH_ALG(alg)
    {
        ft_jwt_keyring_t *ring = signing_ring(alg, "k1", 0);
        char *pub = public_pem(pem_for(alg, 0));
        tmp_write("pub.pem", pub, strlen(pub));
        char *token = sign_claims(ring, GOOD_CLAIMS);
        const char *d2 = strrchr(token, '.');
        tmp_write("tbs.txt", token, (size_t)(d2 - token));
        tmp_write("bad.txt", token + 1, (size_t)(d2 - token) - 1);
        size_t siglen;
        unsigned char *sig = segment(token, 2, &siglen), der[80];
        if (alg == FT_JWT_ES256) {
            CHECK_INT(64, siglen);
            tmp_write("sig.bin", der, raw_to_der(sig, der));
        } else {
            tmp_write("sig.bin", sig, siglen);
        }
        if (alg == FT_JWT_EDDSA) {
            CHECK_INT(0, sh("openssl pkeyutl -verify -pubin -inkey %s/pub.pem -rawin -in %s/tbs.txt -sigfile %s/sig.bin >/dev/null",
                            tmpdir, tmpdir, tmpdir));
            CHECK(sh("openssl pkeyutl -verify -pubin -inkey %s/pub.pem -rawin -in %s/bad.txt -sigfile %s/sig.bin >/dev/null 2>&1",
                     tmpdir, tmpdir, tmpdir) != 0);
        } else {
            CHECK_INT(0, sh("openssl dgst -sha256 -verify %s/pub.pem -signature %s/sig.bin %s/tbs.txt >/dev/null", tmpdir, tmpdir,
                            tmpdir));
            CHECK(sh("openssl dgst -sha256 -verify %s/pub.pem -signature %s/sig.bin %s/bad.txt >/dev/null 2>&1", tmpdir, tmpdir,
                     tmpdir) != 0);
        }
        free(sig);
        free(token);
        free(pub);
        ft_jwt_keyring_free(ring);
    }
    tmp_close();
}

TEST(jwks_match_the_public_keys_the_openssl_cli_prints)
{
    ft_jwt_alg_t alg;
    tmp_open();
    FOR_EACH_ALG(alg)
    {
        const char *pem = pem_for(alg, 0);
        tmp_write("key.pem", pem, strlen(pem));
        ft_jwt_key_t *key = load(alg, "k1", pem);
        json_t *jwk = ft_jwt_key_jwk(key);
        size_t len;
        if (alg == FT_JWT_RS256) {
            CHECK_INT(0, sh("openssl rsa -in %s/key.pem -noout -modulus > %s/modulus.txt", tmpdir, tmpdir));
            unsigned char *text = tmp_read("modulus.txt", &len), n[FT_JWT_RSA_BITS / 8];
            check_b64_member(jwk, "n", sizeof(n), n);
            char hex[2 * sizeof(n) + 1];
            for (size_t i = 0; i < sizeof(n); i++)
                snprintf(hex + 2 * i, 3, "%02X", n[i]);
            char *expected = ft_mem_asprintf("Modulus=%s\n", hex);
            CHECK_STR(expected, (char *)text);
            free(expected);
            free(text);
        } else {
            /* SubjectPublicKeyInfo DER ends with the point: 04||x||y for P-256, x for Ed25519 */
            CHECK_INT(0, sh("openssl pkey -in %s/key.pem -pubout -outform DER -out %s/pub.der", tmpdir, tmpdir));
            unsigned char *der = tmp_read("pub.der", &len), xy[64];
            check_b64_member(jwk, "x", 32, xy);
            if (alg == FT_JWT_ES256) {
                check_b64_member(jwk, "y", 32, xy + 32);
                CHECK_INT(91, len);
                CHECK_INT(0x04, der[len - 65]);
                CHECK(memcmp(der + len - 64, xy, 64) == 0);
            } else {
                CHECK_INT(44, len);
                CHECK(memcmp(der + len - 32, xy, 32) == 0);
            }
            free(der);
        }
        json_decref(jwk);
        ft_jwt_key_free(key);
    }
    tmp_close();
}

RUN_TESTS(TEST_ENTRY(alg_names_parse_exactly), TEST_ENTRY(key_generate_writes_pkcs8_pem),
          TEST_ENTRY(key_load_refuses_a_key_that_does_not_fit_the_algorithm),
          TEST_ENTRY(key_load_refuses_rsa_under_2048_bits_and_other_curves),
          TEST_ENTRY(key_load_refuses_garbage_encrypted_pem_and_bad_kids), TEST_ENTRY(keyring_add_enforces_its_rules),
          TEST_ENTRY(keyring_references_keep_it_alive), TEST_ENTRY(sign_refuses_non_object_claims_and_a_ring_without_signing_key),
          TEST_ENTRY(rs256_round_trip), TEST_ENTRY(es256_round_trip_uses_raw_64_byte_signatures), TEST_ENTRY(eddsa_round_trip),
          TEST_ENTRY(tokens_signed_outside_jwt_c_verify), TEST_ENTRY(rotation_old_tokens_verify_after_a_new_signing_key),
          TEST_ENTRY(jwks_rs256_has_n_and_e), TEST_ENTRY(jwks_es256_has_p256_coordinates),
          TEST_ENTRY(jwks_es256_pads_short_coordinates_to_32_bytes), TEST_ENTRY(jwks_eddsa_has_okp_x),
          TEST_ENTRY(jwks_lists_every_key_in_order_and_copies), TEST_ENTRY(jwk_matches_the_rfc8037_ed25519_vector),
          TEST_ENTRY(refuses_alg_none), TEST_ENTRY(refuses_hs256_signed_with_the_rsa_public_key), TEST_ENTRY(refuses_a_changed_alg),
          TEST_ENTRY(refuses_a_tampered_payload), TEST_ENTRY(refuses_a_signature_from_another_key_with_the_same_kid),
          TEST_ENTRY(refuses_unknown_or_missing_kid), TEST_ENTRY(refuses_an_expired_token),
          TEST_ENTRY(refuses_a_token_not_valid_yet), TEST_ENTRY(refuses_time_claims_that_are_not_numbers),
          TEST_ENTRY(refuses_a_wrong_issuer), TEST_ENTRY(refuses_a_wrong_audience),
          TEST_ENTRY(refuses_tokens_that_are_not_three_base64url_parts), TEST_ENTRY(refuses_an_es256_der_signature),
          TEST_ENTRY(refuses_signatures_of_the_wrong_length), TEST_ENTRY(refuses_duplicate_keys_in_header_or_payload),
          TEST_ENTRY(refuses_headers_and_payloads_that_are_not_objects), TEST_ENTRY(refuses_an_oversized_token_before_parsing),
          TEST_ENTRY(refuses_a_crit_header), TEST_ENTRY(ignores_key_material_offered_by_the_token),
          TEST_ENTRY(verify_is_safe_from_many_threads_on_one_ring), TEST_ENTRY(tokens_signed_by_the_openssl_cli_verify),
          TEST_ENTRY(our_tokens_verify_with_the_openssl_cli), TEST_ENTRY(jwks_match_the_public_keys_the_openssl_cli_prints))
