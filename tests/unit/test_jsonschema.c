/*
 * JSON Schema subset: compile errors with their pointers, each keyword's verdict and message,
 * error pointers, defaults, formats, and the official JSON-Schema-Test-Suite (draft 7) for every
 * group that uses only supported keywords.
 */
#include "core/mem.h"
#include "domain/jsonschema.h"
#include "ft_test.h"

#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>

static ft_schema_t *compile_ok(const char *text)
{
    ft_error_t err = {0};
    ft_schema_t *s = ft_schema_compile(text, &err);
    if (s == NULL)
        FT_FAIL_("schema %s did not compile: %s", text, err.message);
    return s;
}

static void expect_compile_error(const char *text, const char *message)
{
    ft_error_t err = {0};
    ft_schema_t *s = ft_schema_compile(text, &err);
    if (s != NULL) {
        ft_schema_free(s);
        FT_FAIL_("schema %s compiled, expected \"%s\"", text, message);
    }
    CHECK_INT(FT_EINVAL, err.code);
    CHECK_STR(message, err.message);
}

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *x = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (x == NULL)
        FT_FAIL_("bad test JSON %s: %s", text, jerr.text);
    return x;
}

/* Validates `data` against a compiled schema; returns the errors array, NULL when valid. */
static json_t *errors_for(const ft_schema_t *s, const char *data)
{
    json_t *x = parse(data), *errors = NULL;
    int rc = ft_schema_validate(s, x, 0, &errors);
    json_decref(x);
    CHECK_INT(errors == NULL ? FT_OK : FT_EINVAL, rc);
    if (errors != NULL)
        CHECK(json_array_size(errors) > 0);
    return errors;
}

static int is_valid(const char *schema, const char *data)
{
    ft_schema_t *s = compile_ok(schema);
    json_t *errors = errors_for(s, data);
    ft_schema_free(s);
    json_decref(errors);
    return errors == NULL;
}

static const char *error_field(json_t *errors, size_t i, const char *field)
{
    return json_string_value(json_object_get(json_array_get(errors, i), field));
}

/* `data` must fail `schema` with exactly one error, at `pointer`, saying `detail`. */
#define CHECK_ONE_ERROR(schema, data, pointer, detail)                                                                             \
    do {                                                                                                                           \
        ft_schema_t *schema_ = compile_ok(schema);                                                                                 \
        json_t *errs_ = errors_for(schema_, data);                                                                                 \
        ft_schema_free(schema_);                                                                                                   \
        if (errs_ == NULL)                                                                                                         \
            FT_FAIL_("%s is valid against %s, expected %s %s", data, schema, pointer, detail);                                     \
        CHECK_INT(1, json_array_size(errs_));                                                                                      \
        CHECK_STR(pointer, error_field(errs_, 0, "pointer"));                                                                      \
        CHECK_STR(detail, error_field(errs_, 0, "detail"));                                                                        \
        json_decref(errs_);                                                                                                        \
    } while (0)

#define CHECK_VALID(schema, data)                                                                                                  \
    do {                                                                                                                           \
        if (!is_valid(schema, data))                                                                                               \
            FT_FAIL_("expected %s to be valid against %s", data, schema);                                                          \
    } while (0)

#define CHECK_INVALID(schema, data)                                                                                                \
    do {                                                                                                                           \
        if (is_valid(schema, data))                                                                                                \
            FT_FAIL_("expected %s to be invalid against %s", data, schema);                                                        \
    } while (0)

/* A schema {"pattern": p} built without JSON escaping, so p reads as the regex it is. */
static int pattern_matches(const char *pattern, const char *text)
{
    ft_error_t err = {0};
    json_t *js = json_pack("{s:s}", "pattern", pattern), *x = json_string(text);
    ft_schema_t *s = ft_schema_from_json(js, &err);
    json_decref(js);
    if (s == NULL)
        FT_FAIL_("pattern %s did not compile: %s", pattern, err.message);
    int rc = ft_schema_validate(s, x, 0, NULL);
    ft_schema_free(s);
    json_decref(x);
    return rc == FT_OK;
}

static const char *pattern_error(const char *pattern, char *buf, size_t len)
{
    ft_error_t err = {0};
    json_t *js = json_pack("{s:s}", "pattern", pattern);
    ft_schema_t *s = ft_schema_from_json(js, &err);
    json_decref(js);
    if (s != NULL) {
        ft_schema_free(s);
        FT_FAIL_("pattern %s compiled, expected an error", pattern);
    }
    snprintf(buf, len, "%s", err.message);
    return buf;
}

static int format_valid(const char *format, const char *text)
{
    ft_error_t err = {0};
    json_t *js = json_pack("{s:s}", "format", format), *x = json_string(text);
    ft_schema_t *s = ft_schema_from_json(js, &err);
    json_decref(js);
    CHECK(s != NULL);
    int rc = ft_schema_validate(s, x, 0, NULL);
    ft_schema_free(s);
    json_decref(x);
    return rc == FT_OK;
}

TEST(compile_rejects_unsupported_keywords_naming_their_pointer)
{
    expect_compile_error("{\"properties\": {\"x\": {\"oneOf\": []}}}", "unsupported keyword \"oneOf\" at #/properties/x");
    expect_compile_error("{\"$ref\": \"#\"}", "unsupported keyword \"$ref\" at #");
    expect_compile_error("{\"additionalProperties\": {\"patternProperties\": {}}}",
                         "unsupported keyword \"patternProperties\" at #/additionalProperties");
    expect_compile_error("{\"items\": {\"properties\": {\"a/b\": {\"properties\": {\"c~d\": {\"x-widget\": 1}}}}}}",
                         "unsupported keyword \"x-widget\" at #/items/properties/a~1b/properties/c~0d");
    expect_compile_error("{\"properties\": {\"tags\": {\"items\": [{\"type\": \"string\"}]}}}",
                         "unsupported form of \"items\" at #/properties/tags: only a single schema is supported, not an array");
}

TEST(compile_rejects_keyword_values_of_the_wrong_type)
{
    expect_compile_error("{\"properties\": {\"name\": {\"minLength\": -1}}}",
                         "\"minLength\" at #/properties/name must be a non-negative integer");
    expect_compile_error("{\"maxLength\": 1.5}", "\"maxLength\" at # must be a non-negative integer");
    expect_compile_error("{\"minItems\": \"3\"}", "\"minItems\" at # must be a non-negative integer");
    expect_compile_error("{\"maxProperties\": true}", "\"maxProperties\" at # must be a non-negative integer");
    expect_compile_error("{\"minimum\": \"5\"}", "\"minimum\" at # must be a number");
    expect_compile_error("{\"exclusiveMaximum\": true}", "\"exclusiveMaximum\" at # must be a number");
    expect_compile_error("{\"multipleOf\": 0}", "\"multipleOf\" at # must be a number greater than 0");
    expect_compile_error("{\"multipleOf\": -0.5}", "\"multipleOf\" at # must be a number greater than 0");
    expect_compile_error("{\"required\": [\"a\", \"a\"]}", "\"required\" at # must be an array of unique strings");
    expect_compile_error("{\"required\": [1]}", "\"required\" at # must be an array of unique strings");
    expect_compile_error("{\"required\": \"a\"}", "\"required\" at # must be an array of unique strings");
    const char *type_error = "\"type\" at # must be one of object, array, string, number, integer, boolean, null, or a "
                             "non-empty array of unique names among them";
    expect_compile_error("{\"type\": \"text\"}", type_error);
    expect_compile_error("{\"type\": []}", type_error);
    expect_compile_error("{\"type\": [\"string\", \"string\"]}", type_error);
    expect_compile_error("{\"type\": 1}", type_error);
    expect_compile_error("{\"properties\": []}", "\"properties\" at # must be an object of schemas");
    expect_compile_error("{\"properties\": {\"a\": 5}}", "schema at #/properties/a must be an object or a boolean");
    expect_compile_error("{\"additionalProperties\": \"no\"}", "schema at #/additionalProperties must be an object or a boolean");
    expect_compile_error("{\"enum\": {}}", "\"enum\" at # must be an array");
    expect_compile_error("{\"uniqueItems\": \"yes\"}", "\"uniqueItems\" at # must be a boolean");
    expect_compile_error("{\"pattern\": 5}", "\"pattern\" at # must be a string");
    expect_compile_error("{\"format\": 5}", "\"format\" at # must be a string");
    expect_compile_error("{\"title\": 5}", "\"title\" at # must be a string");
    expect_compile_error("{\"examples\": {}}", "\"examples\" at # must be an array");
    expect_compile_error("5", "schema at # must be an object or a boolean");
}

TEST(compile_rejects_text_that_is_not_json)
{
    ft_error_t err = {0};
    CHECK(ft_schema_compile("{\"type\": ", &err) == NULL);
    CHECK_INT(FT_EINVAL, err.code);
    CHECK_CONTAINS(err.message, "schema is not valid JSON");
    CHECK(ft_schema_compile("{\"type\": \"string\", \"type\": \"integer\"}", &err) == NULL);
    CHECK_CONTAINS(err.message, "duplicate object key");
    CHECK(ft_schema_compile(NULL, &err) == NULL);
    CHECK(ft_schema_from_json(NULL, &err) == NULL);
    CHECK(ft_schema_compile("{\"oneOf\": []}", NULL) == NULL);
}

TEST(compile_accepts_annotations_unknown_formats_and_integral_counts)
{
    ft_schema_t *s = compile_ok("{\"$schema\": \"http://json-schema.org/draft-07/schema#\", \"$id\": \"urn:x\", "
                                "\"$comment\": \"c\", \"title\": \"t\", \"description\": \"d\", \"examples\": [1], "
                                "\"default\": \"h\", \"format\": \"hostname\", \"minLength\": 2.0}");
    json_t *errors = errors_for(s, "\"not a host name\"");
    CHECK(errors == NULL);
    errors = errors_for(s, "\"x\"");
    CHECK_STR("must be at least 2 characters long", error_field(errors, 0, "detail"));
    json_decref(errors);
    ft_schema_free(s);
    ft_schema_free(NULL);
}

TEST(schema_from_json_keeps_its_own_copy)
{
    ft_error_t err = {0};
    json_t *js = json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "n", "type", "string");
    ft_schema_t *s = ft_schema_from_json(js, &err);
    CHECK(s != NULL);
    json_object_set_new(json_object_get(json_object_get(js, "properties"), "n"), "type", json_string("integer"));
    json_decref(js);
    json_t *errors = errors_for(s, "{\"n\": 1}");
    CHECK_STR("must be a string", error_field(errors, 0, "detail"));
    json_decref(errors);
    CHECK(errors_for(s, "{\"n\": \"x\"}") == NULL);
    ft_schema_free(s);
}

TEST(type_accepts_only_the_named_json_types)
{
    static const struct {
        const char *type, *valid, *invalid, *detail;
    } cases[] = {
        {"object", "{}", "[]", "must be an object"},       {"array", "[]", "{}", "must be an array"},
        {"string", "\"\"", "1", "must be a string"},       {"number", "1.5", "\"1\"", "must be a number"},
        {"integer", "-3", "3.5", "must be an integer"},    {"boolean", "false", "0", "must be a boolean"},
        {"null", "null", "false", "must be null"},         {"number", "7", "null", "must be a number"},
        {"integer", "1.0", "\"1\"", "must be an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char schema[64];
        snprintf(schema, sizeof(schema), "{\"type\": \"%s\"}", cases[i].type);
        CHECK_VALID(schema, cases[i].valid);
        CHECK_ONE_ERROR(schema, cases[i].invalid, "#", cases[i].detail);
    }
}

TEST(type_array_message_lists_every_allowed_type)
{
    CHECK_VALID("{\"type\": [\"string\", \"null\"]}", "null");
    CHECK_ONE_ERROR("{\"type\": [\"string\", \"null\"]}", "5", "#", "must be a string or null");
    CHECK_ONE_ERROR("{\"type\": [\"null\", \"array\", \"object\"]}", "true", "#", "must be an object, an array or null");
    CHECK_ONE_ERROR("{\"type\": [\"integer\", \"number\"]}", "\"x\"", "#", "must be a number");
}

TEST(type_mismatch_is_reported_once_without_the_other_keywords)
{
    CHECK_ONE_ERROR("{\"type\": \"string\", \"minimum\": 5, \"enum\": [\"a\"]}", "1", "#", "must be a string");
}

TEST(properties_validate_only_the_members_present)
{
    const char *schema = "{\"properties\": {\"name\": {\"type\": \"string\"}, \"seats\": {\"type\": \"integer\"}}}";
    CHECK_VALID(schema, "{}");
    CHECK_VALID(schema, "{\"name\": \"x\", \"other\": [1]}");
    CHECK_VALID(schema, "[1, 2]");
    CHECK_ONE_ERROR(schema, "{\"name\": \"x\", \"seats\": \"5\"}", "#/seats", "must be an integer");
}

TEST(required_missing_property_points_at_the_property)
{
    CHECK_ONE_ERROR("{\"required\": [\"admin_email\"]}", "{}", "#/admin_email", "is required");
    CHECK_ONE_ERROR("{\"properties\": {\"owner\": {\"required\": [\"name\"]}}}", "{\"owner\": {}}", "#/owner/name", "is required");
    CHECK_VALID("{\"required\": [\"a\"]}", "{\"a\": null}");
    CHECK_VALID("{\"required\": [\"a\"]}", "\"not an object\"");
    CHECK_VALID("{\"required\": []}", "{}");
}

TEST(additional_properties_false_rejects_unknown_properties)
{
    const char *schema = "{\"properties\": {\"name\": {}}, \"additionalProperties\": false}";
    CHECK_VALID(schema, "{\"name\": 1}");
    CHECK_ONE_ERROR(schema, "{\"name\": 1, \"extra\": 2}", "#/extra", "is not allowed (unknown property)");
    CHECK_VALID("{\"additionalProperties\": true}", "{\"x\": 1}");
}

TEST(additional_properties_schema_validates_undeclared_properties)
{
    const char *schema = "{\"properties\": {\"a\": {}}, \"additionalProperties\": {\"type\": \"integer\"}}";
    CHECK_VALID(schema, "{\"a\": \"x\", \"b\": 2}");
    CHECK_ONE_ERROR(schema, "{\"a\": \"x\", \"b\": \"y\"}", "#/b", "must be an integer");
}

TEST(enum_lists_the_allowed_values)
{
    CHECK_VALID("{\"enum\": [\"a\", \"b\"]}", "\"b\"");
    CHECK_ONE_ERROR("{\"enum\": [\"a\", \"b\"]}", "\"c\"", "#", "must be one of: \"a\", \"b\"");
    CHECK_ONE_ERROR("{\"enum\": [1, 2.5, null, {\"k\": [true]}]}", "3", "#", "must be one of: 1, 2.5, null, {\"k\":[true]}");
    CHECK_VALID("{\"enum\": [1, 2]}", "1.0");
    CHECK_VALID("{\"enum\": [{\"a\": 1, \"b\": 2}]}", "{\"b\": 2, \"a\": 1}");
    CHECK_INVALID("{\"enum\": [0]}", "false");
    CHECK_INVALID("{\"enum\": [[1, 2]]}", "[2, 1]");
}

TEST(const_compares_json_values_not_representations)
{
    CHECK_VALID("{\"const\": {\"a\": [1, 2]}}", "{\"a\": [1.0, 2]}");
    CHECK_ONE_ERROR("{\"const\": {\"a\": [1, 2]}}", "{\"a\": [2, 1]}", "#", "must be equal to {\"a\":[1,2]}");
    CHECK_ONE_ERROR("{\"const\": \"eu\"}", "\"EU\"", "#", "must be equal to \"eu\"");
    CHECK_INVALID("{\"const\": false}", "0");
    CHECK_INVALID("{\"const\": null}", "false");
    CHECK_VALID("{\"const\": null}", "null");
}

TEST(numeric_bounds_report_the_limit)
{
    CHECK_VALID("{\"minimum\": 1, \"maximum\": 100}", "1");
    CHECK_VALID("{\"minimum\": 1, \"maximum\": 100}", "100.0");
    CHECK_ONE_ERROR("{\"minimum\": 1}", "0.5", "#", "must be at least 1");
    CHECK_ONE_ERROR("{\"maximum\": 100}", "101", "#", "must be at most 100");
    CHECK_ONE_ERROR("{\"maximum\": 100}", "100.000001", "#", "must be at most 100");
    CHECK_ONE_ERROR("{\"exclusiveMinimum\": 0}", "0", "#", "must be greater than 0");
    CHECK_ONE_ERROR("{\"exclusiveMaximum\": 2.5}", "2.5", "#", "must be less than 2.5");
    CHECK_VALID("{\"exclusiveMinimum\": 0, \"exclusiveMaximum\": 2.5}", "2.4999");
    CHECK_VALID("{\"minimum\": 5}", "\"not a number\"");
    /* integers beyond 2^53 compare exactly */
    CHECK_INVALID("{\"maximum\": 9007199254740992}", "9007199254740993");
    CHECK_VALID("{\"maximum\": 9007199254740993}", "9007199254740992.0");
    CHECK_INVALID("{\"minimum\": -9007199254740992}", "-9007199254740993");
}

TEST(multiple_of_is_exact_for_integers_and_tolerant_for_decimals)
{
    CHECK_VALID("{\"multipleOf\": 2}", "10");
    CHECK_ONE_ERROR("{\"multipleOf\": 2}", "7", "#", "must be a multiple of 2");
    CHECK_VALID("{\"multipleOf\": 0.1}", "0.3");
    CHECK_VALID("{\"multipleOf\": 0.01}", "19.99");
    CHECK_ONE_ERROR("{\"multipleOf\": 0.01}", "19.999", "#", "must be a multiple of 0.01");
    CHECK_VALID("{\"multipleOf\": 1.5}", "4.5");
    CHECK_INVALID("{\"multipleOf\": 1.5}", "35");
    CHECK_INVALID("{\"multipleOf\": 1}", "1e-10");
    CHECK_INVALID("{\"multipleOf\": 1}", "1000000000.5");
    CHECK_VALID("{\"multipleOf\": 0.5}", "3");
}

TEST(string_length_counts_code_points_not_bytes)
{
    CHECK_VALID("{\"maxLength\": 5}", "\"h\\u00e9llo\"");
    CHECK_ONE_ERROR("{\"maxLength\": 5}", "\"h\\u00e9llo!\"", "#", "must be at most 5 characters long");
    CHECK_ONE_ERROR("{\"minLength\": 2}", "\"\\ud83d\\ude00\"", "#", "must be at least 2 characters long");
    CHECK_VALID("{\"maxLength\": 1}", "\"\\ud83d\\ude00\"");
    CHECK_VALID("{\"minLength\": 3, \"maxLength\": 3}", "\"\\u65e5\\u672c\\u8a9e\"");
    CHECK_ONE_ERROR("{\"minLength\": 1}", "\"\"", "#", "must be at least 1 character long");
    CHECK_VALID("{\"maxLength\": 0}", "5");
}

TEST(pattern_is_an_unanchored_search)
{
    CHECK(pattern_matches("a+", "xxaxx"));
    CHECK(!pattern_matches("a+", "xyz"));
    CHECK(pattern_matches("", "anything"));
    CHECK_VALID("{\"pattern\": \"^[A-Z]{3}$\"}", "\"EUR\"");
    CHECK_ONE_ERROR("{\"pattern\": \"^[A-Z]{3}$\"}", "\"EURO\"", "#", "must match the pattern ^[A-Z]{3}$");
    CHECK_VALID("{\"pattern\": \"^[A-Z]{3}$\"}", "42");
    CHECK(pattern_matches("^(red|green)$", "green"));
    CHECK(!pattern_matches("^(red|green)$", "blue"));
}

TEST(pattern_translates_ecma_escapes_to_posix)
{
    CHECK(pattern_matches("^\\d{4}-\\d{2}$", "2024-01"));
    CHECK(!pattern_matches("^\\d{4}-\\d{2}$", "2024-1a"));
    CHECK(pattern_matches("^\\w+$", "a_Z9"));
    CHECK(!pattern_matches("^\\w+$", "a-1"));
    CHECK(pattern_matches("^\\S+\\s\\S+$", "a\tb"));
    CHECK(!pattern_matches("^\\S+$", "a b"));
    CHECK(pattern_matches("^\\D\\W$", "a-"));
    CHECK(!pattern_matches("^\\D$", "5"));
    CHECK(pattern_matches("^[\\w.+-]+@[\\w-]+\\.[a-z]{2,}$", "joe.b+x@mail-host.com"));
    CHECK(pattern_matches("^[\\d\\s]+$", "1 2"));
    CHECK(!pattern_matches("^[\\d\\s]+$", "1a"));
    CHECK(pattern_matches("^(?:ab)+$", "abab"));
    CHECK(!pattern_matches("^(?:ab)+$", "aba"));
    CHECK(pattern_matches("^a\\.b$", "a.b"));
    CHECK(!pattern_matches("^a\\.b$", "axb"));
    CHECK(pattern_matches("^\\/api\\/", "/api/x"));
    CHECK(pattern_matches("^[\\]\\-]+$", "]-]"));
    CHECK(!pattern_matches("^[\\]\\-]+$", "a"));
    CHECK(pattern_matches("^[a\\-z]+$", "-az"));
    CHECK(!pattern_matches("^[a\\-z]+$", "b"));
    CHECK(pattern_matches("^[^\\^]$", "a"));
    CHECK(!pattern_matches("^[^\\^]$", "^"));
    CHECK(pattern_matches("^[\\^]$", "^"));
    CHECK(pattern_matches("^[\\x41-\\x43]+$", "ABC"));
    CHECK(!pattern_matches("^[\\x41-\\x43]+$", "D"));
    CHECK(pattern_matches("^\\u00e9+$", "\xc3\xa9\xc3\xa9"));
    CHECK(pattern_matches("^\xc3\xa9+$", "\xc3\xa9\xc3\xa9"));
    CHECK(pattern_matches("^\\ud83d\\ude00$", "\xf0\x9f\x98\x80"));
    CHECK(pattern_matches("^a\\tb$", "a\tb"));
    CHECK(pattern_matches("\\bword\\b", "a word here"));
    CHECK(!pattern_matches("\\bword\\b", "swordfish"));
    CHECK(pattern_matches("^(a)\\1$", "aa"));
}

TEST(pattern_rejects_what_posix_ere_cannot_express)
{
    char buf[512];
    CHECK_STR("\"pattern\" at # is not a supported regular expression: it uses lookaround or a named group, which POSIX ERE lacks",
              pattern_error("^(?=a)", buf, sizeof(buf)));
    CHECK_CONTAINS(pattern_error("(?<year>\\d{4})", buf, sizeof(buf)), "lookaround or a named group");
    CHECK_CONTAINS(pattern_error("\\p{L}+", buf, sizeof(buf)), "unsupported escape");
    CHECK_CONTAINS(pattern_error("a\\0", buf, sizeof(buf)), "unsupported escape");
    CHECK_CONTAINS(pattern_error("[\xc3\xa9]", buf, sizeof(buf)), "non-ASCII character inside [...]");
    CHECK_CONTAINS(pattern_error("[\\D]", buf, sizeof(buf)), "\\D, \\W or \\S inside [...]");
    CHECK_CONTAINS(pattern_error("a\\", buf, sizeof(buf)), "lone backslash");
    CHECK_CONTAINS(pattern_error("[a-z", buf, sizeof(buf)), "unterminated [...]");
    CHECK_CONTAINS(pattern_error("\\x4", buf, sizeof(buf)), "malformed escape");
    CHECK_CONTAINS(pattern_error("\\ud800", buf, sizeof(buf)), "malformed escape");
    CHECK_CONTAINS(pattern_error("(ab", buf, sizeof(buf)), "\"pattern\" at # is not a supported regular expression: ");
    expect_compile_error("{\"properties\": {\"code\": {\"pattern\": \"[]\"}}}",
                         "\"pattern\" at #/properties/code is not a supported regular expression: it has an empty []");
}

TEST(format_email_accepts_dot_atom_mailboxes)
{
    CHECK(format_valid("email", "joe.bloggs@example.com"));
    CHECK(format_valid("email", "a+tag_1@sub.example.co"));
    CHECK(format_valid("email", "o'brien@x-y.example"));
    CHECK(format_valid("email", "root@localhost"));
    static const char *const bad[] = {
        "2962",
        "@example.com",
        "joe@",
        "joe..b@example.com",
        ".joe@example.com",
        "joe.@example.com",
        "joe@-x.com",
        "joe@x-.com",
        "joe@exa_mple.com",
        "joe b@example.com",
        "joe@example.com.",
        "a@b@c.com",
        "joe@exa..mple",
        "\"joe\"@example.com",
        "joe@[127.0.0.1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (format_valid("email", bad[i]))
            FT_FAIL_("\"%s\" accepted as an email address", bad[i]);
    CHECK_ONE_ERROR("{\"properties\": {\"admin_email\": {\"format\": \"email\"}}}", "{\"admin_email\": \"nobody\"}",
                    "#/admin_email", "must be a valid email address");
}

TEST(format_uuid_accepts_any_version_in_either_case)
{
    CHECK(format_valid("uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380"));
    CHECK(format_valid("uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380"));
    CHECK(format_valid("uuid", "00000000-0000-0000-0000-000000000000"));
    CHECK(!format_valid("uuid", "2eb8aa08aa9811eab4aa73b441d16380"));
    CHECK(!format_valid("uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638"));
    CHECK(!format_valid("uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638g"));
    CHECK(!format_valid("uuid", "2eb8aa0-8aa98-11ea-b4aa-73b441d16380"));
    CHECK_ONE_ERROR("{\"format\": \"uuid\"}", "\"x\"", "#", "must be a valid UUID");
}

TEST(format_date_accepts_real_calendar_dates_only)
{
    CHECK(format_valid("date", "2024-02-29"));
    CHECK(format_valid("date", "2000-02-29"));
    CHECK(format_valid("date", "1963-06-19"));
    CHECK(!format_valid("date", "2023-02-29"));
    CHECK(!format_valid("date", "1900-02-29"));
    CHECK(!format_valid("date", "2023-04-31"));
    CHECK(!format_valid("date", "2023-13-01"));
    CHECK(!format_valid("date", "2023-00-10"));
    CHECK(!format_valid("date", "2023-01-00"));
    CHECK(!format_valid("date", "2023-1-01"));
    CHECK(!format_valid("date", "06/19/1963"));
    CHECK(!format_valid("date", "2013-350"));
    CHECK(!format_valid("date", "2023-01-01T00:00:00Z"));
    CHECK_ONE_ERROR("{\"format\": \"date\"}", "\"2023-02-30\"", "#", "must be a valid date (YYYY-MM-DD)");
}

TEST(format_date_time_follows_rfc_3339)
{
    static const char *const good[] = {
        "2024-05-01T12:30:00Z", "2024-05-01t12:30:00.123456z",   "2024-05-01T12:30:00+05:30", "1937-01-01T12:00:27.87+00:20",
        "1998-12-31T23:59:60Z", "1998-12-31T15:59:60.123-08:00", "2024-02-29T00:00:00-00:00",
    };
    static const char *const bad[] = {
        "2024-05-01 12:30:00Z",      "2024-05-01T24:00:00Z",  "2024-05-01T12:60:00Z",     "2024-05-01T12:30:00",
        "2024-05-01T12:30:00+0530",  "2024-05-01T12:30:00.Z", "1998-12-31T22:59:60Z",     "2024-02-30T00:00:00Z",
        "2024-05-01T12:30:00+24:00", "2024-05-01T12:30Z",     "2024-05-01T12:30:00Zjunk", "2013-350T01:01:01",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!format_valid("date-time", good[i]))
            FT_FAIL_("\"%s\" rejected as a date-time", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (format_valid("date-time", bad[i]))
            FT_FAIL_("\"%s\" accepted as a date-time", bad[i]);
    CHECK_ONE_ERROR("{\"format\": \"date-time\"}", "\"yesterday\"", "#", "must be a valid date-time (RFC 3339)");
}

TEST(formats_apply_to_strings_only_and_unknown_formats_are_ignored)
{
    CHECK_VALID("{\"format\": \"email\"}", "5");
    CHECK_VALID("{\"format\": \"ipv4\"}", "\"not an address\"");
}

TEST(items_errors_point_at_the_item_index)
{
    CHECK_ONE_ERROR("{\"properties\": {\"items\": {\"items\": {\"type\": \"string\"}}}}", "{\"items\": [\"a\", \"b\", 3]}",
                    "#/items/2", "must be a string");
    CHECK_ONE_ERROR("{\"items\": {\"required\": [\"sku\"]}}", "[{\"sku\": 1}, {}]", "#/1/sku", "is required");
    CHECK_VALID("{\"items\": false}", "[]");
    CHECK_ONE_ERROR("{\"items\": false}", "[1]", "#/0", "is not allowed");
}

TEST(array_length_and_uniqueness_are_checked)
{
    CHECK_ONE_ERROR("{\"minItems\": 1}", "[]", "#", "must contain at least 1 item");
    CHECK_ONE_ERROR("{\"maxItems\": 2}", "[1, 2, 3]", "#", "must contain at most 2 items");
    CHECK_VALID("{\"minItems\": 1, \"maxItems\": 1}", "[null]");
    CHECK_ONE_ERROR("{\"uniqueItems\": true}", "[1, 2, 1.0]", "#", "must not contain duplicate items (items 0 and 2 are equal)");
    CHECK_INVALID("{\"uniqueItems\": true}", "[{\"a\": 1, \"b\": [2]}, {\"b\": [2.0], \"a\": 1}]");
    CHECK_VALID("{\"uniqueItems\": true}", "[0, false, null, \"0\", [0], {\"0\": 0}]");
    CHECK_VALID("{\"uniqueItems\": true}", "[[1], [1, 2], {\"a\": 1}, {\"a\": 1, \"b\": 1}]");
    CHECK_VALID("{\"uniqueItems\": false}", "[1, 1]");

    /* Large arrays are checked in O(n log n). */
    ft_schema_t *s = compile_ok("{\"uniqueItems\": true}");
    json_t *big = json_array(), *errors = NULL;
    for (int i = 0; i < 50000; i++)
        json_array_append_new(big, json_integer(i));
    CHECK_INT(FT_OK, ft_schema_validate(s, big, 0, &errors));
    json_array_append_new(big, json_real(49998.0));
    CHECK_INT(FT_EINVAL, ft_schema_validate(s, big, 0, &errors));
    CHECK_STR("must not contain duplicate items (items 49998 and 50000 are equal)", error_field(errors, 0, "detail"));
    json_decref(errors);
    json_decref(big);
    ft_schema_free(s);
}

TEST(object_size_bounds_are_checked)
{
    CHECK_ONE_ERROR("{\"minProperties\": 1}", "{}", "#", "must have at least 1 property");
    CHECK_ONE_ERROR("{\"maxProperties\": 2}", "{\"a\": 1, \"b\": 2, \"c\": 3}", "#", "must have at most 2 properties");
    CHECK_VALID("{\"maxProperties\": 0}", "[1, 2]");
}

TEST(error_pointers_escape_tilde_and_slash)
{
    CHECK_ONE_ERROR("{\"properties\": {\"a/b\": {\"properties\": {\"c~d\": {\"type\": \"string\"}}}}}", "{\"a/b\": {\"c~d\": 1}}",
                    "#/a~1b/c~0d", "must be a string");
    CHECK_ONE_ERROR("{\"additionalProperties\": false}", "{\"~/\": 1}", "#/~0~1", "is not allowed (unknown property)");
}

TEST(every_violation_is_collected_in_schema_order)
{
    ft_schema_t *s = compile_ok("{\"type\": \"object\", \"required\": [\"name\", \"admin_email\"], "
                                "\"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 3},"
                                "  \"admin_email\": {\"type\": \"string\", \"format\": \"email\"},"
                                "  \"plan\": {\"enum\": [\"basic\", \"pro\"]},"
                                "  \"address\": {\"type\": \"object\", \"properties\": {\"zip\": {\"type\": \"string\","
                                "    \"pattern\": \"^[0-9]{5}$\"}}}},"
                                "\"additionalProperties\": false}");
    json_t *errors = errors_for(s, "{\"name\": \"toolong\", \"plan\": \"gold\", \"address\": {\"zip\": \"12\"}, \"x\": 1}");
    static const char *const expected[][2] = {
        {"#/admin_email", "is required"},
        {"#/name", "must be at most 3 characters long"},
        {"#/plan", "must be one of: \"basic\", \"pro\""},
        {"#/address/zip", "must match the pattern ^[0-9]{5}$"},
        {"#/x", "is not allowed (unknown property)"},
    };
    CHECK_INT(5, json_array_size(errors));
    for (size_t i = 0; i < 5; i++) {
        CHECK_STR(expected[i][0], error_field(errors, i, "pointer"));
        CHECK_STR(expected[i][1], error_field(errors, i, "detail"));
    }
    json_decref(errors);
    ft_schema_free(s);
}

TEST(errors_are_capped_at_fifty)
{
    ft_schema_t *s = compile_ok("{\"items\": {\"type\": \"string\"}}");
    json_t *many = json_array(), *errors = NULL;
    for (int i = 0; i < 120; i++)
        json_array_append_new(many, json_integer(i));
    CHECK_INT(FT_EINVAL, ft_schema_validate(s, many, 0, &errors));
    CHECK_INT(FT_SCHEMA_MAX_ERRORS, json_array_size(errors));
    CHECK_STR("#/49", error_field(errors, 49, "pointer"));
    json_decref(errors);
    json_decref(many);
    ft_schema_free(s);
}

TEST(verdict_only_validation_needs_no_errors_array)
{
    ft_schema_t *s = compile_ok("{\"type\": \"integer\"}");
    json_t *one = json_integer(1), *text = json_string("1");
    CHECK_INT(FT_OK, ft_schema_validate(s, one, 0, NULL));
    CHECK_INT(FT_EINVAL, ft_schema_validate(s, text, 0, NULL));
    json_t *errors = json_array(); /* overwritten with NULL when valid */
    json_t *was = errors;
    CHECK_INT(FT_OK, ft_schema_validate(s, one, 0, &errors));
    CHECK(errors == NULL);
    json_decref(was);
    json_decref(one);
    json_decref(text);
    ft_schema_free(s);
}

TEST(defaults_are_filled_only_into_valid_instances)
{
    ft_schema_t *s = compile_ok("{\"type\": \"object\", \"required\": [\"name\"], \"properties\": {"
                                "  \"name\": {\"type\": \"string\"},"
                                "  \"plan\": {\"type\": \"string\", \"default\": \"basic\"},"
                                "  \"limits\": {\"type\": \"object\", \"default\": {},"
                                "    \"properties\": {\"seats\": {\"type\": \"integer\", \"default\": 5}}},"
                                "  \"tags\": {\"items\": {\"properties\": {\"weight\": {\"default\": 1}}}}}}");
    json_t *x = parse("{\"name\": \"acme\", \"tags\": [{}, {\"weight\": 3}]}"), *errors = NULL;
    CHECK_INT(FT_OK, ft_schema_validate(s, x, 1, &errors));
    json_t *want = parse("{\"name\": \"acme\", \"plan\": \"basic\", \"limits\": {\"seats\": 5},"
                         " \"tags\": [{\"weight\": 1}, {\"weight\": 3}]}");
    CHECK(json_equal(want, x));
    json_decref(want);

    /* The defaults were copies: changing the filled values leaves the schema alone. */
    json_object_set_new(json_object_get(x, "limits"), "seats", json_integer(99));
    json_decref(x);
    x = parse("{\"name\": \"b\", \"plan\": \"pro\"}");
    CHECK_INT(FT_OK, ft_schema_validate(s, x, 1, NULL));
    CHECK_STR("pro", json_string_value(json_object_get(x, "plan")));
    CHECK_INT(5, json_integer_value(json_object_get(json_object_get(x, "limits"), "seats")));
    json_decref(x);

    x = parse("{\"plan\": \"pro\"}");
    CHECK_INT(FT_EINVAL, ft_schema_validate(s, x, 1, &errors));
    CHECK_INT(1, json_object_size(x));
    json_decref(errors);
    json_decref(x);

    x = parse("{\"name\": \"c\"}");
    CHECK_INT(FT_OK, ft_schema_validate(s, x, 0, NULL));
    CHECK_INT(1, json_object_size(x));
    json_decref(x);
    ft_schema_free(s);
}

TEST(boolean_schemas_accept_or_reject_everything)
{
    CHECK_VALID("true", "{\"anything\": [1]}");
    CHECK_VALID("{}", "null");
    CHECK_ONE_ERROR("false", "{}", "#", "is not allowed");
    CHECK_ONE_ERROR("{\"properties\": {\"legacy\": false, \"ok\": true}}", "{\"legacy\": 1, \"ok\": 2}", "#/legacy",
                    "is not allowed");
}

static void *validate_in_thread(void *arg)
{
    const ft_schema_t *s = arg;
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        json_t *x = json_pack("{s:s, s:i}", "code", i % 2 ? "ABC" : "abc", "n", i), *errors = NULL;
        int rc = ft_schema_validate(s, x, 1, &errors);
        if (rc != (i % 2 ? FT_OK : FT_EINVAL) || (rc == FT_OK && json_object_get(x, "region") == NULL))
            bad++;
        json_decref(errors);
        json_decref(x);
    }
    return (void *)bad;
}

TEST(compiled_schema_is_shared_between_threads)
{
    ft_schema_t *s = compile_ok("{\"properties\": {\"code\": {\"pattern\": \"^[A-Z]{3}$\"}, \"n\": {\"type\": \"integer\"},"
                                " \"region\": {\"default\": {\"name\": \"eu\"}}}}");
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        CHECK_INT(0, pthread_create(&threads[i], NULL, validate_in_thread, s));
    long bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(threads[i], &r);
        bad += (long)r;
    }
    CHECK_INT(0, bad);
    ft_schema_free(s);
}

/* ---- The official JSON-Schema-Test-Suite ---- */

#define SUITE_DIR_DEFAULT "/usr/share/json-schema-test-suite/tests/draft7"

/* Each of these files must have at least one group that compiles and runs. */
static const char *const suite_required_files[] = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
    "default",
    "boolean_schema",
};

/*
 * Optional files of the suite that exercise behaviour this module claims. bignum.json holds
 * integers beyond 64 bits, which jansson only reads as doubles.
 */
static const struct {
    const char *path;
    size_t flags;
} suite_optional_files[] = {
    {"optional/bignum.json", JSON_DECODE_INT_AS_REAL},
    {"optional/zeroTerminatedFloats.json", 0},
    {"optional/format/email.json", 0},
    {"optional/format/date.json", 0},
    {"optional/format/date-time.json", 0},
};

/*
 * Tests whose verdict this module knowingly gets wrong, by file, group and test description.
 * Empty today: every group that compiles passes. An entry here must fail, or the suite test
 * reports it as stale.
 */
static const struct {
    const char *file, *group, *test, *why;
} suite_allowed_failures[] = {
    {NULL, NULL, NULL, NULL},
};

typedef struct suite_stats {
    int files, groups_run, groups_skipped, tests_run, tests_passed, allowed, failures;
} suite_stats_t;

static int allowed_failure(const char *file, const char *group, const char *test)
{
    for (size_t i = 0; suite_allowed_failures[i].file != NULL; i++)
        if (strcmp(file, suite_allowed_failures[i].file) == 0 && strcmp(group, suite_allowed_failures[i].group) == 0 &&
            strcmp(test, suite_allowed_failures[i].test) == 0)
            return 1;
    return 0;
}

/* Runs one suite file; returns the number of groups that compiled. */
static int run_suite_file(const char *dir, const char *file, size_t flags, suite_stats_t *st)
{
    char path[1024];
    json_error_t jerr;
    int groups_run = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    json_t *doc = json_load_file(path, flags, &jerr);
    if (!json_is_array(doc)) {
        fprintf(stderr, "  %s: cannot load: %s\n", path, jerr.text);
        st->failures++;
        json_decref(doc);
        return 0;
    }
    st->files++;
    for (size_t g = 0; g < json_array_size(doc); g++) {
        json_t *group = json_array_get(doc, g), *tests = json_object_get(group, "tests");
        const char *gdesc = json_string_value(json_object_get(group, "description"));
        ft_error_t err = {0};
        ft_schema_t *s = ft_schema_from_json(json_object_get(group, "schema"), &err);
        if (s == NULL) {
            st->groups_skipped++;
            if (strstr(err.message, "unsupported") == NULL) { /* a valid schema must only fail for that */
                fprintf(stderr, "  %s / %s: schema rejected: %s\n", file, gdesc, err.message);
                st->failures++;
            }
            continue;
        }
        st->groups_run++;
        groups_run++;
        for (size_t t = 0; t < json_array_size(tests); t++) {
            json_t *test = json_array_get(tests, t), *errors = NULL;
            const char *tdesc = json_string_value(json_object_get(test, "description"));
            int expect = json_is_true(json_object_get(test, "valid"));
            json_t *data = json_deep_copy(json_object_get(test, "data"));
            int verdict = ft_schema_validate(s, data, 0, NULL) == FT_OK;
            int detailed = ft_schema_validate(s, data, 0, &errors) == FT_OK;
            int consistent = verdict == detailed && (detailed ? errors == NULL : json_array_size(errors) > 0);
            int allowed = allowed_failure(file, gdesc, tdesc);
            st->tests_run++;
            if (verdict == expect && consistent && !allowed) {
                st->tests_passed++;
            } else if (allowed && verdict != expect) {
                st->allowed++;
            } else {
                char *got = errors != NULL ? json_dumps(errors, JSON_COMPACT) : NULL;
                fprintf(stderr, "  %s / %s / %s: expected %s, got %s%s %s\n", file, gdesc, tdesc, expect ? "valid" : "invalid",
                        verdict ? "valid" : "invalid", allowed ? " (stale allow-list entry)" : "", got ? got : "");
                free(got);
                st->failures++;
            }
            json_decref(errors);
            json_decref(data);
        }
        ft_schema_free(s);
    }
    json_decref(doc);
    return groups_run;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(official_test_suite_for_supported_keywords)
{
    const char *dir = getenv("FT_JSON_SCHEMA_TEST_SUITE");
    if (dir == NULL || *dir == '\0')
        dir = SUITE_DIR_DEFAULT;
    DIR *d = opendir(dir);
    if (d == NULL)
        FT_FAIL_("JSON-Schema-Test-Suite not found at %s: install the json-schema-test-suite package or set "
                 "FT_JSON_SCHEMA_TEST_SUITE",
                 dir);
    char *names[256] = {0};
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < sizeof(names) / sizeof(names[0])) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0)
            names[n++] = ft_mem_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), name_cmp);

    suite_stats_t st = {0};
    int required_run[sizeof(suite_required_files) / sizeof(suite_required_files[0])] = {0};
    for (size_t i = 0; i < n; i++) {
        int run = run_suite_file(dir, names[i], 0, &st);
        for (size_t r = 0; r < sizeof(suite_required_files) / sizeof(suite_required_files[0]); r++)
            if (strncmp(names[i], suite_required_files[r], strlen(suite_required_files[r])) == 0 &&
                strcmp(names[i] + strlen(suite_required_files[r]), ".json") == 0)
                required_run[r] += run;
        free(names[i]);
    }
    for (size_t i = 0; i < sizeof(suite_optional_files) / sizeof(suite_optional_files[0]); i++)
        run_suite_file(dir, suite_optional_files[i].path, suite_optional_files[i].flags, &st);

    printf("  json-schema-test-suite %s: %d files, %d groups run, %d groups skipped (unsupported keywords), "
           "%d of %d tests passed, %d allowed failures\n",
           dir, st.files, st.groups_run, st.groups_skipped, st.tests_passed, st.tests_run, st.allowed);
    for (size_t r = 0; r < sizeof(suite_required_files) / sizeof(suite_required_files[0]); r++)
        if (required_run[r] == 0)
            FT_FAIL_("no group of %s.json ran", suite_required_files[r]);
    CHECK_INT(0, st.failures);
    CHECK_INT(st.tests_run, st.tests_passed + st.allowed);
}

RUN_TESTS(TEST_ENTRY(compile_rejects_unsupported_keywords_naming_their_pointer),
          TEST_ENTRY(compile_rejects_keyword_values_of_the_wrong_type), TEST_ENTRY(compile_rejects_text_that_is_not_json),
          TEST_ENTRY(compile_accepts_annotations_unknown_formats_and_integral_counts),
          TEST_ENTRY(schema_from_json_keeps_its_own_copy), TEST_ENTRY(type_accepts_only_the_named_json_types),
          TEST_ENTRY(type_array_message_lists_every_allowed_type),
          TEST_ENTRY(type_mismatch_is_reported_once_without_the_other_keywords),
          TEST_ENTRY(properties_validate_only_the_members_present), TEST_ENTRY(required_missing_property_points_at_the_property),
          TEST_ENTRY(additional_properties_false_rejects_unknown_properties),
          TEST_ENTRY(additional_properties_schema_validates_undeclared_properties), TEST_ENTRY(enum_lists_the_allowed_values),
          TEST_ENTRY(const_compares_json_values_not_representations), TEST_ENTRY(numeric_bounds_report_the_limit),
          TEST_ENTRY(multiple_of_is_exact_for_integers_and_tolerant_for_decimals),
          TEST_ENTRY(string_length_counts_code_points_not_bytes), TEST_ENTRY(pattern_is_an_unanchored_search),
          TEST_ENTRY(pattern_translates_ecma_escapes_to_posix), TEST_ENTRY(pattern_rejects_what_posix_ere_cannot_express),
          TEST_ENTRY(format_email_accepts_dot_atom_mailboxes), TEST_ENTRY(format_uuid_accepts_any_version_in_either_case),
          TEST_ENTRY(format_date_accepts_real_calendar_dates_only), TEST_ENTRY(format_date_time_follows_rfc_3339),
          TEST_ENTRY(formats_apply_to_strings_only_and_unknown_formats_are_ignored),
          TEST_ENTRY(items_errors_point_at_the_item_index), TEST_ENTRY(array_length_and_uniqueness_are_checked),
          TEST_ENTRY(object_size_bounds_are_checked), TEST_ENTRY(error_pointers_escape_tilde_and_slash),
          TEST_ENTRY(every_violation_is_collected_in_schema_order), TEST_ENTRY(errors_are_capped_at_fifty),
          TEST_ENTRY(verdict_only_validation_needs_no_errors_array), TEST_ENTRY(defaults_are_filled_only_into_valid_instances),
          TEST_ENTRY(boolean_schemas_accept_or_reject_everything), TEST_ENTRY(compiled_schema_is_shared_between_threads),
          TEST_ENTRY(official_test_suite_for_supported_keywords))
