/*
 * JSON Schema compilation and validation for the subset listed in jsonschema.h. A schema is
 * checked once into a tree of nodes that borrow from the schema document; validation only reads
 * that tree, so one compiled schema serves every thread.
 */
#include "domain/jsonschema.h"

#include "core/mem.h"

#include <math.h> /* isfinite, a macro: no libm */
#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growable string: JSON pointers, translated patterns, long messages. */
typedef struct buf {
    char *s;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = ft_mem_realloc(b->s, cap);
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_puts(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_putc(buf_t *b, char c)
{
    buf_add(b, &c, 1);
}

static void buf_truncate(buf_t *b, size_t len)
{
    b->len = len;
    if (b->s != NULL)
        b->s[len] = '\0';
}

/* Appends "/" and `name` escaped per RFC 6901; returns the length to truncate back to. */
static size_t buf_push_name(buf_t *b, const char *name)
{
    size_t mark = b->len;
    buf_putc(b, '/');
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '~')
            buf_add(b, "~0", 2);
        else if (*p == '/')
            buf_add(b, "~1", 2);
        else
            buf_putc(b, *p);
    }
    return mark;
}

static size_t buf_push_index(buf_t *b, size_t i)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "/%zu", i);
    size_t mark = b->len;
    buf_add(b, tmp, (size_t)n);
    return mark;
}

enum {
    T_OBJECT = 1u << 0,
    T_ARRAY = 1u << 1,
    T_STRING = 1u << 2,
    T_NUMBER = 1u << 3,
    T_INTEGER = 1u << 4,
    T_BOOLEAN = 1u << 5,
    T_NULL = 1u << 6,
};

static const struct {
    const char *name;
    const char *noun; /* as in "must be <noun>" */
    unsigned bit;
} type_names[] = {
    {"object", "an object", T_OBJECT}, {"array", "an array", T_ARRAY},       {"string", "a string", T_STRING},
    {"number", "a number", T_NUMBER},  {"integer", "an integer", T_INTEGER}, {"boolean", "a boolean", T_BOOLEAN},
    {"null", "null", T_NULL},
};

enum { F_NONE, F_EMAIL, F_UUID, F_DATE, F_DATE_TIME };

static const char *const format_nouns[] = {
    [F_EMAIL] = "email address",
    [F_UUID] = "UUID",
    [F_DATE] = "date (YYYY-MM-DD)",
    [F_DATE_TIME] = "date-time (RFC 3339)",
};

typedef struct node node_t;

typedef struct prop {
    const char *name; /* borrowed from the schema document */
    node_t *schema;
} prop_t;

/* One compiled schema. Every json_t is borrowed from the document ft_schema_t owns. */
struct node {
    int boolean;        /* -1 for an object schema; 0 or 1 for the boolean schemas false and true */
    unsigned types;     /* T_* bits, 0 when "type" is absent */
    json_t *properties; /* the "properties" object, to tell declared properties from others */
    prop_t *props;
    size_t nprops;
    json_t *required;
    node_t *additional;
    json_t *enum_values, *const_value;
    json_t *minimum, *maximum, *exclusive_minimum, *exclusive_maximum, *multiple_of;
    long long min_length, max_length, min_items, max_items, min_properties, max_properties; /* -1 when absent */
    int unique_items;
    int has_pattern;
    const char *pattern_source;
    regex_t pattern;
    int format;
    node_t *items;
    json_t *default_value;
};

struct ft_schema {
    json_t *doc;
    node_t *root;
};

static void node_free(node_t *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nprops; i++)
        node_free(n->props[i].schema);
    free(n->props);
    node_free(n->additional);
    node_free(n->items);
    if (n->has_pattern)
        regfree(&n->pattern);
    free(n);
}

/* ---- Numbers and equality ---- */

static double abs_double(double x)
{
    return x < 0 ? -x : x;
}

/* -1, 0 or 1 as i is below, equal to or above d, exactly. */
static int cmp_int_double(json_int_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    long long t = (long long)d; /* truncated toward zero */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_integer(a))
        return cmp_int_double(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_double(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return x < y ? -1 : x > y;
}

static int is_integral(double d)
{
    if (!isfinite(d))
        return 0;
    if (abs_double(d) >= 9007199254740992.0) /* 2^53: every double this large is an integer */
        return 1;
    return (double)(long long)d == d;
}

/*
 * Integers are tested exactly. Otherwise the quotient is accepted within four units in the last
 * place of an integer, so that 0.3 is a multiple of 0.1 although neither is exact in binary.
 */
static int is_multiple_of(const json_t *x, const json_t *divisor)
{
    if (json_is_integer(x) && json_is_integer(divisor))
        return json_integer_value(x) % json_integer_value(divisor) == 0;
    double q = json_number_value(x) / json_number_value(divisor);
    if (!isfinite(q))
        return 0;
    if (abs_double(q) >= 9007199254740992.0)
        return 1;
    double r = (double)(long long)(q < 0 ? q - 0.5 : q + 0.5);
    return abs_double(q - r) <= 4 * 2.220446049250313e-16 * abs_double(q);
}

/* JSON equality as JSON Schema defines it: numbers by value, objects regardless of key order. */
static int values_equal(json_t *a, json_t *b)
{
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *key;
        json_t *value;
        json_object_foreach(a, key, value)
        {
            json_t *other = json_object_get(b, key);
            if (other == NULL || !values_equal(value, other))
                return 0;
        }
        return 1;
    }
    default:
        return 1; /* true, false, null */
    }
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* Equal values (per values_equal) hash alike: numbers hash by their double value. */
static uint64_t hash_value(json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_INTEGER:
    case JSON_REAL: {
        double d = json_number_value(x);
        if (d == 0)
            d = 0; /* -0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return mix(bits ^ 1);
    }
    case JSON_STRING:
        return mix(hash_bytes(json_string_value(x), json_string_length(x)) ^ 2);
    case JSON_ARRAY: {
        uint64_t h = 3;
        for (size_t i = 0; i < json_array_size(x); i++)
            h = mix(h * 31 + hash_value(json_array_get(x, i)));
        return h;
    }
    case JSON_OBJECT: {
        uint64_t h = 4;
        const char *key;
        json_t *value;
        json_object_foreach(x, key, value)
        {
            h += mix(hash_bytes(key, strlen(key)) * 31 + hash_value(value));
        }
        return mix(h);
    }
    case JSON_TRUE:
        return 5;
    case JSON_FALSE:
        return 6;
    default:
        return 7;
    }
}

typedef struct hashed {
    uint64_t hash;
    size_t index;
} hashed_t;

static int hashed_cmp(const void *a, const void *b)
{
    const hashed_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Finds equal items in O(n log n): sorts them by hash and compares within runs of equal hashes.
 * Sets *first < *second to the duplicate pair with the lowest second index; returns 0 if none.
 */
static int find_duplicate(json_t *array, size_t *first, size_t *second)
{
    size_t n = json_array_size(array), best_i = 0, best_j = SIZE_MAX;
    if (n < 2)
        return 0;
    hashed_t *h = ft_mem_alloc(n * sizeof(*h));
    for (size_t i = 0; i < n; i++)
        h[i] = (hashed_t){hash_value(json_array_get(array, i)), i};
    qsort(h, n, sizeof(*h), hashed_cmp);
    for (size_t run = 0, end; run < n; run = end) {
        for (end = run + 1; end < n && h[end].hash == h[run].hash; end++)
            ;
        for (size_t j = run + 1; j < end; j++) {
            for (size_t i = run; i < j; i++) {
                if (h[j].index < best_j && values_equal(json_array_get(array, h[i].index), json_array_get(array, h[j].index))) {
                    best_i = h[i].index;
                    best_j = h[j].index;
                    break;
                }
            }
        }
    }
    free(h);
    if (best_j == SIZE_MAX)
        return 0;
    *first = best_i;
    *second = best_j;
    return 1;
}

/* ---- Formats ---- */

static int is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int two_digits(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 3339 full-date in the first 10 bytes of s. */
static int is_full_date(const char *s)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) || s[7] != '-' || !is_digits(s + 8, 2))
        return 0;
    int year = two_digits(s) * 100 + two_digits(s + 2), month = two_digits(s + 5), day = two_digits(s + 8);
    if (month < 1 || month > 12 || day < 1)
        return 0;
    int leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    return day <= days[month - 1] + (month == 2 && leap);
}

/* RFC 3339 date-time; a leap second must fall on 23:59:60 UTC. */
static int is_date_time(const char *s, size_t n)
{
    const char *p = s + 11, *end = s + n;
    if (n < 20 || !is_full_date(s) || (s[10] != 'T' && s[10] != 't'))
        return 0;
    if (!is_digits(p, 2) || p[2] != ':' || !is_digits(p + 3, 2) || p[5] != ':' || !is_digits(p + 6, 2))
        return 0;
    int hour = two_digits(p), minute = two_digits(p + 3), second = two_digits(p + 6), offset = 0;
    if (hour > 23 || minute > 59 || second > 60)
        return 0;
    p += 8;
    if (p < end && *p == '.') {
        const char *digits = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return 0;
    }
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        if (end - p < 6 || !is_digits(p + 1, 2) || p[3] != ':' || !is_digits(p + 4, 2))
            return 0;
        int oh = two_digits(p + 1), om = two_digits(p + 4);
        if (oh > 23 || om > 59)
            return 0;
        offset = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return 0;
    }
    if (p != end)
        return 0;
    if (second == 60 && ((hour * 60 + minute - offset) % 1440 + 1440) % 1440 != 23 * 60 + 59)
        return 0;
    return 1;
}

static int is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return 0;
    }
    return 1;
}

/* Letters, digits and hyphens in dot-separated labels of 1 to 63 bytes, no hyphen at either end. */
static int is_hostname(const char *s, size_t n)
{
    size_t label = 0;
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
        } else if (is_alnum(s[i]) || (s[i] == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

/* RFC 5321 mailbox with a dot-atom local part and a host name. */
static int is_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL || n > 254)
        return 0;
    size_t local = (size_t)(at - s);
    if (local == 0 || local > 64)
        return 0;
    for (size_t i = 0; i < local; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == local - 1 || s[i - 1] == '.')
                return 0;
        } else if (!is_alnum(s[i]) && (s[i] == '\0' || strchr("!#$%&'*+/=?^_`{|}~-", s[i]) == NULL)) {
            return 0;
        }
    }
    return is_hostname(at + 1, n - local - 1);
}

static int format_ok(int format, const char *s, size_t n)
{
    switch (format) {
    case F_EMAIL:
        return is_email(s, n);
    case F_UUID:
        return is_uuid(s, n);
    case F_DATE:
        return n == 10 && is_full_date(s);
    case F_DATE_TIME:
        return is_date_time(s, n);
    default:
        return 1;
    }
}

/* ---- Patterns: ECMA-262 subset to POSIX ERE ---- */

static size_t utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_run(const char *p, int digits, unsigned *value)
{
    *value = 0;
    for (int i = 0; i < digits; i++) {
        if (!is_hex(p[i]))
            return 0;
        char c = p[i];
        *value = *value * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return 1;
}

/*
 * Decodes an escape that names one character; p points after the backslash. Returns the bytes
 * consumed, 0 if the escape names no single character (\p, \k, \c, \0, letters), -1 if malformed.
 */
static int char_escape(const char *p, unsigned *cp)
{
    switch (*p) {
    case 'n':
        *cp = '\n';
        return 1;
    case 't':
        *cp = '\t';
        return 1;
    case 'r':
        *cp = '\r';
        return 1;
    case 'f':
        *cp = '\f';
        return 1;
    case 'v':
        *cp = '\v';
        return 1;
    case 'x':
        return hex_run(p + 1, 2, cp) && *cp != 0 ? 3 : -1;
    case 'u': {
        unsigned lo;
        if (!hex_run(p + 1, 4, cp) || *cp == 0 || (*cp >= 0xDC00 && *cp <= 0xDFFF))
            return -1;
        if (*cp < 0xD800 || *cp > 0xDBFF)
            return 5;
        if (p[5] != '\\' || p[6] != 'u' || !hex_run(p + 7, 4, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return -1;
        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
        return 11;
    }
    default:
        if (*p == '\0' || is_alnum(*p) || (unsigned char)*p >= 0x80)
            return 0;
        *cp = (unsigned char)*p;
        return 1;
    }
}

/* A literal character outside brackets; a multi-byte one is grouped so quantifiers apply to all of it. */
static void put_literal(buf_t *out, unsigned cp)
{
    if (cp < 0x80) {
        if (strchr(".[]()*+?{}|^$\\", (int)cp) != NULL)
            buf_putc(out, '\\');
        buf_putc(out, (char)cp);
        return;
    }
    char u[4];
    size_t len = utf8_encode(cp, u);
    buf_putc(out, '(');
    buf_add(out, u, len);
    buf_putc(out, ')');
}

/*
 * Translates the ECMA class [...] starting at *pp and advances *pp past it. POSIX brackets take
 * no escapes, so an escaped "]", "^" or "-" is moved to where POSIX reads it literally: "]"
 * first, "^" anywhere but first, "-" last. Returns NULL or why the class is not supported.
 */
static const char *translate_class(const char **pp, buf_t *out)
{
    const char *p = *pp + 1, *why = NULL;
    int negate = 0, rbracket = 0, caret = 0, hyphen = 0;
    buf_t body = {0};
    if (*p == '^') {
        negate = 1;
        p++;
    }
    for (;;) {
        unsigned char ch = (unsigned char)*p;
        unsigned cp;
        if (ch == '\0') {
            why = "has an unterminated [...]";
            goto out;
        }
        if (ch == ']') {
            p++;
            break;
        }
        if (ch >= 0x80) {
            why = "has a non-ASCII character inside [...]";
            goto out;
        }
        if (ch != '\\') {
            buf_putc(&body, (char)ch);
            p++;
            continue;
        }
        p++;
        switch (*p) {
        case 'd':
            buf_puts(&body, "0-9");
            p++;
            continue;
        case 'w':
            buf_puts(&body, "A-Za-z0-9_");
            p++;
            continue;
        case 's':
            buf_puts(&body, "[:space:]");
            p++;
            continue;
        case 'D':
        case 'W':
        case 'S':
            why = "uses \\D, \\W or \\S inside [...]";
            goto out;
        case 'b':
            cp = '\b';
            p++;
            break;
        default: {
            int k = char_escape(p, &cp);
            if (k <= 0) {
                why = k < 0 ? "has a malformed escape" : "uses an unsupported escape";
                goto out;
            }
            if (cp >= 0x80) {
                why = "has a non-ASCII character inside [...]";
                goto out;
            }
            p += k;
        }
        }
        if (cp == ']')
            rbracket = 1;
        else if (cp == '^')
            caret = 1;
        else if (cp == '-')
            hyphen = 1;
        else
            buf_putc(&body, (char)cp);
    }
    /* An unescaped "-" at either end of the class is literal in ECMA; move it to the end too. */
    if (body.len > 0 && body.s[0] == '-') {
        memmove(body.s, body.s + 1, body.len);
        body.len--;
        hyphen = 1;
    }
    if (body.len > 0 && body.s[body.len - 1] == '-') {
        buf_truncate(&body, body.len - 1);
        hyphen = 1;
    }
    if (body.len == 0 && !rbracket && !caret && !hyphen) {
        if (!negate) {
            why = "has an empty []";
            goto out;
        }
        buf_putc(out, '.'); /* [^] is any character */
        goto out;
    }
    if (!negate && !rbracket && body.len == 0 && caret && !hyphen) {
        buf_puts(out, "\\^");
        goto out;
    }
    buf_putc(out, '[');
    if (negate)
        buf_putc(out, '^');
    if (rbracket)
        buf_putc(out, ']');
    if (caret && !negate && !rbracket && body.len == 0) {
        buf_puts(out, "-^"); /* a leading "-" is literal and keeps "^" from being first */
        caret = hyphen = 0;
    }
    if (body.len > 0)
        buf_add(out, body.s, body.len);
    if (caret)
        buf_putc(out, '^');
    if (hyphen)
        buf_putc(out, '-');
    buf_putc(out, ']');
out:
    free(body.s);
    *pp = p;
    return why;
}

/* Translates an ECMA-262 pattern into POSIX ERE; returns NULL or why it is not supported. */
static const char *translate_pattern(const char *p, buf_t *out)
{
    static const char *const classes[][2] = {
        {"d", "[0-9]"}, {"D", "[^0-9]"}, {"w", "[A-Za-z0-9_]"}, {"W", "[^A-Za-z0-9_]"}, {"s", "[[:space:]]"}, {"S", "[^[:space:]]"},
    };
    buf_puts(out, "");
    while (*p != '\0') {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\') {
            const char *cls = NULL;
            for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
                if (p[1] == classes[i][0][0])
                    cls = classes[i][1];
            if (p[1] == '\0')
                return "ends with a lone backslash";
            if (cls != NULL) {
                buf_puts(out, cls);
                p += 2;
            } else if (p[1] == 'b' || p[1] == 'B' || (p[1] >= '1' && p[1] <= '9')) {
                buf_add(out, p, 2); /* word boundaries and back-references mean the same in glibc */
                p += 2;
            } else {
                unsigned cp;
                int k = char_escape(p + 1, &cp);
                if (k <= 0)
                    return k < 0 ? "has a malformed escape" : "uses an unsupported escape (such as \\p, \\k, \\c or \\0)";
                put_literal(out, cp);
                p += 1 + k;
            }
        } else if (ch == '[') {
            const char *why = translate_class(&p, out);
            if (why != NULL)
                return why;
        } else if (ch == '(' && p[1] == '?') {
            if (p[2] != ':')
                return "uses lookaround or a named group, which POSIX ERE lacks";
            buf_putc(out, '('); /* captures are irrelevant with REG_NOSUB */
            p += 3;
        } else if (ch >= 0x80) {
            size_t k = 1; /* the lead byte and its continuation bytes, never past the NUL */
            while (((unsigned char)p[k] & 0xC0) == 0x80)
                k++;
            buf_putc(out, '(');
            buf_add(out, p, k);
            buf_putc(out, ')');
            p += k;
        } else {
            buf_putc(out, (char)ch);
            p++;
        }
    }
    return NULL;
}

/* ---- Compilation ---- */

typedef struct compiler {
    buf_t path; /* JSON pointer of the schema being compiled */
    ft_error_t *err;
} compiler_t;

static node_t *compile_node(compiler_t *c, json_t *js);

static int bad_value(compiler_t *c, const char *kw, const char *what)
{
    return ft_error_set(c->err, FT_EINVAL, "\"%s\" at %s %s", kw, c->path.s, what);
}

/* Compiles the subschema at <path>/kw[/name]. */
static node_t *compile_at(compiler_t *c, json_t *js, const char *kw, const char *name)
{
    size_t mark = buf_push_name(&c->path, kw);
    if (name != NULL)
        buf_push_name(&c->path, name);
    node_t *n = compile_node(c, js);
    buf_truncate(&c->path, mark);
    return n;
}

static unsigned type_bit(json_t *v)
{
    for (size_t i = 0; json_is_string(v) && i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (strcmp(json_string_value(v), type_names[i].name) == 0)
            return type_names[i].bit;
    return 0;
}

static int kw_type(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    static const char what[] = "must be one of object, array, string, number, integer, boolean, null, or a non-empty "
                               "array of unique names among them";
    if (json_is_string(v)) {
        n->types = type_bit(v);
        return n->types != 0 ? FT_OK : bad_value(c, kw, what);
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return bad_value(c, kw, what);
    for (size_t i = 0; i < json_array_size(v); i++) {
        unsigned bit = type_bit(json_array_get(v, i));
        if (bit == 0 || (n->types & bit) != 0)
            return bad_value(c, kw, what);
        n->types |= bit;
    }
    return FT_OK;
}

static int kw_properties(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    const char *name;
    json_t *sub;
    if (!json_is_object(v))
        return bad_value(c, kw, "must be an object of schemas");
    n->properties = v;
    n->props = ft_mem_calloc(json_object_size(v), sizeof(prop_t));
    json_object_foreach(v, name, sub)
    {
        node_t *p = compile_at(c, sub, kw, name);
        if (p == NULL)
            return FT_EINVAL;
        n->props[n->nprops++] = (prop_t){name, p};
    }
    return FT_OK;
}

static int kw_required(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (!json_is_array(v))
        return bad_value(c, kw, "must be an array of unique strings");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *name = json_array_get(v, i);
        if (!json_is_string(name))
            return bad_value(c, kw, "must be an array of unique strings");
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(name), json_string_value(json_array_get(v, j))) == 0)
                return bad_value(c, kw, "must be an array of unique strings");
    }
    n->required = v;
    return FT_OK;
}

static int kw_schema(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    node_t **slot = (node_t **)(void *)((char *)n + off);
    *slot = compile_at(c, v, kw, NULL);
    return *slot != NULL ? FT_OK : FT_EINVAL;
}

static int kw_items(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (json_is_array(v))
        return ft_error_set(c->err, FT_EINVAL,
                            "unsupported form of \"items\" at %s: only a single schema is supported, not an array", c->path.s);
    return kw_schema(c, n, kw, v, off);
}

/* const and default: any value, stored in the json_t * at off. */
static int kw_value(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    *(json_t **)(void *)((char *)n + off) = v;
    return FT_OK;
}

static int kw_enum(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (!json_is_array(v))
        return bad_value(c, kw, "must be an array");
    n->enum_values = v;
    return FT_OK;
}

/* minimum and the like: a number, stored in the json_t * at off. */
static int kw_number(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (!json_is_number(v))
        return bad_value(c, kw, "must be a number");
    *(json_t **)(void *)((char *)n + off) = v;
    return FT_OK;
}

static int kw_multiple_of(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (!json_is_number(v) || json_number_value(v) <= 0)
        return bad_value(c, kw, "must be a number greater than 0");
    n->multiple_of = v;
    return FT_OK;
}

/* minLength and the like: a non-negative integer (2.0 counts) stored in the long long at off. */
static int kw_count(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    long long count;
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        count = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e18 && is_integral(json_real_value(v)))
        count = (long long)json_real_value(v);
    else
        return bad_value(c, kw, "must be a non-negative integer");
    *(long long *)(void *)((char *)n + off) = count;
    return FT_OK;
}

static int kw_unique_items(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    if (!json_is_boolean(v))
        return bad_value(c, kw, "must be a boolean");
    n->unique_items = json_is_true(v);
    return FT_OK;
}

static int kw_pattern(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    buf_t ere = {0};
    int rc = FT_OK;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return bad_value(c, kw, "must be a string");
    const char *why = translate_pattern(json_string_value(v), &ere);
    if (why != NULL) {
        rc = ft_error_set(c->err, FT_EINVAL, "\"%s\" at %s is not a supported regular expression: it %s", kw, c->path.s, why);
        goto out;
    }
    int re = regcomp(&n->pattern, ere.s, REG_EXTENDED | REG_NOSUB);
    if (re != 0) {
        char msg[128];
        regerror(re, &n->pattern, msg, sizeof(msg));
        rc = ft_error_set(c->err, FT_EINVAL, "\"%s\" at %s is not a supported regular expression: %s", kw, c->path.s, msg);
        goto out;
    }
    n->has_pattern = 1;
    n->pattern_source = json_string_value(v);
out:
    free(ere.s);
    return rc;
}

static int kw_format(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    static const struct {
        const char *name;
        int format;
    } formats[] = {{"email", F_EMAIL}, {"uuid", F_UUID}, {"date", F_DATE}, {"date-time", F_DATE_TIME}};
    if (!json_is_string(v))
        return bad_value(c, kw, "must be a string");
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(json_string_value(v), formats[i].name) == 0)
            n->format = formats[i].format;
    return FT_OK;
}

static int kw_string(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    return json_is_string(v) ? FT_OK : bad_value(c, kw, "must be a string");
}

static int kw_array(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off)
{
    return json_is_array(v) ? FT_OK : bad_value(c, kw, "must be an array");
}

typedef int (*keyword_fn)(compiler_t *c, node_t *n, const char *kw, json_t *v, size_t off);

static const struct keyword {
    const char *name;
    keyword_fn compile;
    size_t off; /* the node field the keyword fills, for the shared handlers */
} keywords[] = {
    {"type", kw_type, 0},
    {"properties", kw_properties, 0},
    {"required", kw_required, 0},
    {"additionalProperties", kw_schema, offsetof(node_t, additional)},
    {"enum", kw_enum, 0},
    {"const", kw_value, offsetof(node_t, const_value)},
    {"minimum", kw_number, offsetof(node_t, minimum)},
    {"maximum", kw_number, offsetof(node_t, maximum)},
    {"exclusiveMinimum", kw_number, offsetof(node_t, exclusive_minimum)},
    {"exclusiveMaximum", kw_number, offsetof(node_t, exclusive_maximum)},
    {"multipleOf", kw_multiple_of, 0},
    {"minLength", kw_count, offsetof(node_t, min_length)},
    {"maxLength", kw_count, offsetof(node_t, max_length)},
    {"pattern", kw_pattern, 0},
    {"format", kw_format, 0},
    {"items", kw_items, offsetof(node_t, items)},
    {"minItems", kw_count, offsetof(node_t, min_items)},
    {"maxItems", kw_count, offsetof(node_t, max_items)},
    {"uniqueItems", kw_unique_items, 0},
    {"minProperties", kw_count, offsetof(node_t, min_properties)},
    {"maxProperties", kw_count, offsetof(node_t, max_properties)},
    {"default", kw_value, offsetof(node_t, default_value)},
    {"title", kw_string, 0},
    {"description", kw_string, 0},
    {"examples", kw_array, 0},
    {"$schema", kw_string, 0},
    {"$id", kw_string, 0},
    {"$comment", kw_string, 0},
};

static node_t *compile_node(compiler_t *c, json_t *js)
{
    const char *kw;
    json_t *v;
    node_t *n = ft_mem_calloc(1, sizeof(*n));
    n->boolean = -1;
    n->min_length = n->max_length = n->min_items = n->max_items = n->min_properties = n->max_properties = -1;
    if (json_is_boolean(js)) {
        n->boolean = json_is_true(js);
        return n;
    }
    if (!json_is_object(js)) {
        ft_error_set(c->err, FT_EINVAL, "schema at %s must be an object or a boolean", c->path.s);
        goto fail;
    }
    json_object_foreach(js, kw, v)
    {
        const struct keyword *k = NULL;
        for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]) && k == NULL; i++)
            if (strcmp(kw, keywords[i].name) == 0)
                k = &keywords[i];
        if (k == NULL) {
            ft_error_set(c->err, FT_EINVAL, "unsupported keyword \"%s\" at %s", kw, c->path.s);
            goto fail;
        }
        if (k->compile(c, n, kw, v, k->off) != FT_OK)
            goto fail;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

/* Takes ownership of doc. */
static ft_schema_t *compile_doc(json_t *doc, ft_error_t *err)
{
    compiler_t c = {.err = err};
    buf_puts(&c.path, "#");
    node_t *root = compile_node(&c, doc);
    free(c.path.s);
    if (root == NULL) {
        json_decref(doc);
        return NULL;
    }
    ft_schema_t *s = ft_mem_alloc(sizeof(*s));
    s->doc = doc;
    s->root = root;
    return s;
}

ft_schema_t *ft_schema_compile(const char *text, ft_error_t *err)
{
    json_error_t jerr;
    if (text == NULL) {
        ft_error_set(err, FT_EINVAL, "schema is missing");
        return NULL;
    }
    json_t *doc = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        ft_error_set(err, FT_EINVAL, "schema is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    return compile_doc(doc, err);
}

ft_schema_t *ft_schema_from_json(json_t *schema, ft_error_t *err)
{
    if (schema == NULL) {
        ft_error_set(err, FT_EINVAL, "schema is missing");
        return NULL;
    }
    return compile_doc(json_deep_copy(schema), err);
}

void ft_schema_free(ft_schema_t *s)
{
    if (s == NULL)
        return;
    node_free(s->root);
    json_decref(s->doc);
    free(s);
}

/* ---- Validation ---- */

typedef struct validator {
    buf_t path;     /* JSON pointer of the value being validated */
    json_t *errors; /* NULL when only the verdict is wanted */
    size_t count, limit;
} validator_t;

static int full(const validator_t *v)
{
    return v->count >= v->limit;
}

/* Cuts a UTF-8 sequence that truncation left incomplete at the end of s. */
static void utf8_trim(char *s)
{
    size_t len = strlen(s), i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (i - 1) < need)
        s[i - 1] = '\0';
}

static void report(validator_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(validator_t *v, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (full(v))
        return;
    v->count++;
    if (v->errors == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg))
        utf8_trim(msg);
    json_t *e = json_object();
    json_object_set_new(e, "pointer", json_string(v->path.s));
    json_object_set_new(e, "detail", json_string(msg));
    json_array_append_new(v->errors, e);
}

static const char *number_text(const json_t *x, char *buf, size_t len)
{
    if (json_is_integer(x))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
    else
        snprintf(buf, len, "%.15g", json_real_value(x));
    return buf;
}

/* Appends the compact JSON text of x. */
static void put_json(buf_t *b, json_t *x)
{
    char *text = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (text != NULL)
        buf_puts(b, text);
    free(text);
}

static int type_matches(unsigned types, json_t *x)
{
    switch (json_typeof(x)) {
    case JSON_OBJECT:
        return (types & T_OBJECT) != 0;
    case JSON_ARRAY:
        return (types & T_ARRAY) != 0;
    case JSON_STRING:
        return (types & T_STRING) != 0;
    case JSON_INTEGER:
        return (types & (T_NUMBER | T_INTEGER)) != 0;
    case JSON_REAL:
        return (types & T_NUMBER) != 0 || ((types & T_INTEGER) != 0 && is_integral(json_real_value(x)));
    case JSON_TRUE:
    case JSON_FALSE:
        return (types & T_BOOLEAN) != 0;
    default:
        return (types & T_NULL) != 0;
    }
}

/* "must be a string", "must be a string or null", "must be an object, an array or null". */
static void report_type(validator_t *v, unsigned types)
{
    const char *nouns[8];
    size_t n = 0;
    if (types & T_NUMBER)
        types &= ~T_INTEGER;
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (types & type_names[i].bit)
            nouns[n++] = type_names[i].noun;
    buf_t msg = {0};
    buf_puts(&msg, "must be ");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_puts(&msg, i + 1 == n ? " or " : ", ");
        buf_puts(&msg, nouns[i]);
    }
    report(v, "%s", msg.s);
    free(msg.s);
}

static void report_enum(validator_t *v, json_t *values)
{
    buf_t msg = {0};
    buf_puts(&msg, "must be one of: ");
    for (size_t i = 0; i < json_array_size(values); i++) {
        if (i > 0)
            buf_puts(&msg, ", ");
        if (msg.len > 400) {
            buf_puts(&msg, "...");
            break;
        }
        put_json(&msg, json_array_get(values, i));
    }
    report(v, "%s", msg.s);
    free(msg.s);
}

static void report_const(validator_t *v, json_t *value)
{
    buf_t msg = {0};
    buf_puts(&msg, "must be equal to ");
    put_json(&msg, value);
    report(v, "%s", msg.s);
    free(msg.s);
}

static void validate(validator_t *v, const node_t *n, json_t *x);

static void validate_number(validator_t *v, const node_t *n, json_t *x)
{
    char num[40];
    if (n->minimum != NULL && num_cmp(x, n->minimum) < 0)
        report(v, "must be at least %s", number_text(n->minimum, num, sizeof(num)));
    if (n->maximum != NULL && num_cmp(x, n->maximum) > 0)
        report(v, "must be at most %s", number_text(n->maximum, num, sizeof(num)));
    if (n->exclusive_minimum != NULL && num_cmp(x, n->exclusive_minimum) <= 0)
        report(v, "must be greater than %s", number_text(n->exclusive_minimum, num, sizeof(num)));
    if (n->exclusive_maximum != NULL && num_cmp(x, n->exclusive_maximum) >= 0)
        report(v, "must be less than %s", number_text(n->exclusive_maximum, num, sizeof(num)));
    if (n->multiple_of != NULL && !is_multiple_of(x, n->multiple_of))
        report(v, "must be a multiple of %s", number_text(n->multiple_of, num, sizeof(num)));
}

static void validate_string(validator_t *v, const node_t *n, json_t *x)
{
    const char *s = json_string_value(x);
    size_t len = json_string_length(x);
    if (n->min_length >= 0 || n->max_length >= 0) {
        long long chars = 0;
        for (size_t i = 0; i < len; i++)
            chars += ((unsigned char)s[i] & 0xC0) != 0x80; /* count lead bytes: code points */
        if (n->min_length >= 0 && chars < n->min_length)
            report(v, "must be at least %lld character%s long", n->min_length, n->min_length == 1 ? "" : "s");
        if (n->max_length >= 0 && chars > n->max_length)
            report(v, "must be at most %lld character%s long", n->max_length, n->max_length == 1 ? "" : "s");
    }
    if (n->has_pattern) {
        regmatch_t range[1] = {{.rm_so = 0, .rm_eo = (regoff_t)len}};
        if (regexec(&n->pattern, s, 1, range, REG_STARTEND) != 0)
            report(v, "must match the pattern %s", n->pattern_source);
    }
    if (n->format != F_NONE && !format_ok(n->format, s, len))
        report(v, "must be a valid %s", format_nouns[n->format]);
}

static void validate_array(validator_t *v, const node_t *n, json_t *x)
{
    size_t size = json_array_size(x), first, second;
    for (size_t i = 0; n->items != NULL && i < size && !full(v); i++) {
        size_t mark = buf_push_index(&v->path, i);
        validate(v, n->items, json_array_get(x, i));
        buf_truncate(&v->path, mark);
    }
    if (n->min_items >= 0 && (long long)size < n->min_items)
        report(v, "must contain at least %lld item%s", n->min_items, n->min_items == 1 ? "" : "s");
    if (n->max_items >= 0 && (long long)size > n->max_items)
        report(v, "must contain at most %lld item%s", n->max_items, n->max_items == 1 ? "" : "s");
    if (n->unique_items && !full(v) && find_duplicate(x, &first, &second))
        report(v, "must not contain duplicate items (items %zu and %zu are equal)", first, second);
}

static void validate_object(validator_t *v, const node_t *n, json_t *x)
{
    size_t size = json_object_size(x);
    for (size_t i = 0; n->required != NULL && i < json_array_size(n->required); i++) {
        const char *name = json_string_value(json_array_get(n->required, i));
        if (json_object_get(x, name) == NULL) {
            size_t mark = buf_push_name(&v->path, name);
            report(v, "is required");
            buf_truncate(&v->path, mark);
        }
    }
    for (size_t i = 0; i < n->nprops && !full(v); i++) {
        json_t *value = json_object_get(x, n->props[i].name);
        if (value != NULL) {
            size_t mark = buf_push_name(&v->path, n->props[i].name);
            validate(v, n->props[i].schema, value);
            buf_truncate(&v->path, mark);
        }
    }
    if (n->additional != NULL) {
        const char *key;
        json_t *value;
        json_object_foreach(x, key, value)
        {
            if (full(v))
                break;
            if (n->properties != NULL && json_object_get(n->properties, key) != NULL)
                continue;
            size_t mark = buf_push_name(&v->path, key);
            if (n->additional->boolean == 0)
                report(v, "is not allowed (unknown property)");
            else
                validate(v, n->additional, value);
            buf_truncate(&v->path, mark);
        }
    }
    if (n->min_properties >= 0 && (long long)size < n->min_properties)
        report(v, "must have at least %lld propert%s", n->min_properties, n->min_properties == 1 ? "y" : "ies");
    if (n->max_properties >= 0 && (long long)size > n->max_properties)
        report(v, "must have at most %lld propert%s", n->max_properties, n->max_properties == 1 ? "y" : "ies");
}

static void validate(validator_t *v, const node_t *n, json_t *x)
{
    if (full(v) || n->boolean == 1)
        return;
    if (n->boolean == 0) {
        report(v, "is not allowed");
        return;
    }
    if (n->types != 0 && !type_matches(n->types, x)) {
        report_type(v, n->types); /* the other keywords would only repeat the complaint */
        return;
    }
    if (n->const_value != NULL && !values_equal(n->const_value, x))
        report_const(v, n->const_value);
    if (n->enum_values != NULL) {
        size_t i = 0;
        while (i < json_array_size(n->enum_values) && !values_equal(json_array_get(n->enum_values, i), x))
            i++;
        if (i == json_array_size(n->enum_values))
            report_enum(v, n->enum_values);
    }
    switch (json_typeof(x)) {
    case JSON_INTEGER:
    case JSON_REAL:
        validate_number(v, n, x);
        break;
    case JSON_STRING:
        validate_string(v, n, x);
        break;
    case JSON_ARRAY:
        validate_array(v, n, x);
        break;
    case JSON_OBJECT:
        validate_object(v, n, x);
        break;
    default:
        break;
    }
}

/* Adds copies of the defaults of absent properties, through every subschema that applies. */
static void add_defaults(const node_t *n, json_t *x)
{
    if (n->boolean != -1)
        return;
    if (json_is_object(x)) {
        for (size_t i = 0; i < n->nprops; i++) {
            const node_t *sub = n->props[i].schema;
            json_t *value = json_object_get(x, n->props[i].name);
            if (value == NULL && sub->default_value != NULL) {
                value = json_deep_copy(sub->default_value);
                json_object_set_new(x, n->props[i].name, value);
            }
            if (value != NULL)
                add_defaults(sub, value);
        }
        if (n->additional != NULL) {
            const char *key;
            json_t *value;
            json_object_foreach(x, key, value)
            {
                if (n->properties == NULL || json_object_get(n->properties, key) == NULL)
                    add_defaults(n->additional, value);
            }
        }
    } else if (json_is_array(x) && n->items != NULL) {
        for (size_t i = 0; i < json_array_size(x); i++)
            add_defaults(n->items, json_array_get(x, i));
    }
}

int ft_schema_validate(const ft_schema_t *s, json_t *instance, int fill_defaults, json_t **errors)
{
    validator_t v = {.errors = errors != NULL ? json_array() : NULL, .limit = errors != NULL ? FT_SCHEMA_MAX_ERRORS : 1};
    if (errors != NULL)
        *errors = NULL;
    buf_puts(&v.path, "#");
    validate(&v, s->root, instance);
    free(v.path.s);
    if (v.count == 0) {
        json_decref(v.errors);
        if (fill_defaults)
            add_defaults(s->root, instance);
        return FT_OK;
    }
    if (errors != NULL)
        *errors = v.errors;
    return FT_EINVAL;
}
