/*
 * JSON Schema validation of request bodies: products declare a schema for an instance's settings
 * and for each action's input, the host compiles it once and validates every body against it.
 * A documented subset of draft 7, implemented on jansson.
 *
 * Supported keywords, with draft 7 semantics:
 *   type (a name or an array of unique names: object, array, string, number, integer, boolean,
 *   null; "integer" accepts numbers with a zero fractional part such as 1.0), enum, const,
 *   properties, required, additionalProperties (boolean or schema), minProperties, maxProperties,
 *   items (a single schema), minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum,
 *   exclusiveMaximum (numbers, draft 6/7 style), multipleOf, minLength, maxLength, pattern, format;
 *   and the annotations default, title, description, examples, $schema, $id, $comment.
 *   A boolean schema (true or false) is accepted wherever a schema is.
 * Any other keyword ($ref, allOf, anyOf, oneOf, not, if, patternProperties, dependencies,
 * contains, the array form of items, vendor "x-" keys...) is a compile error, so a schema never
 * validates less than its author meant.
 *
 * Known deviations from draft 7:
 *   - pattern is POSIX ERE (regcomp with REG_EXTENDED), a subset of the ECMA-262 dialect JSON
 *     Schema names that covers character classes, anchors, quantifiers and alternation. Before
 *     compiling, \d \w \s (and \D \W \S) become [0-9], [A-Za-z0-9_], [[:space:]] (and their
 *     negations), (?: becomes (, \n \t \r \f \v \xHH \uXXXX become the characters they name, and
 *     escaped punctuation becomes the literal. Lookaround, named groups, \p{...} and non-ASCII
 *     characters inside [...] are compile errors. \b and \B are passed to glibc's word-boundary
 *     operators. Matching is byte-wise in the C locale: "." and [...] match one byte, so limit the
 *     length of non-ASCII text with minLength/maxLength, not with a pattern.
 *   - multipleOf on non-integers accepts a quotient within four units in the last place of an
 *     integer, so that 0.3 is a multiple of 0.1 despite binary floating point.
 *   - Numbers are compared exactly when both are integers, as doubles otherwise; integers beyond
 *     64 bits are not representable in jansson.
 *   - format checks "email" (dot-atom local part @ host name; no quoted local parts, no address
 *     literals), "uuid" (8-4-4-4-12 hex digits, any version), "date" (RFC 3339 full-date, a real
 *     calendar date) and "date-time" (RFC 3339, "T" and "Z" in either case, a leap second only at
 *     23:59:60 UTC). Other format values are accepted and not checked, as draft 7 allows.
 *   - default values are not validated against their schema; ft_schema_validate inserts them as
 *     written.
 *
 * A compiled schema is immutable: after ft_schema_compile returns, any number of threads may
 * validate against it at once.
 */
#ifndef FT_JSONSCHEMA_H
#define FT_JSONSCHEMA_H

#include "core/error.h"

#include <jansson.h>

/* The most violations one ft_schema_validate call reports. */
#define FT_SCHEMA_MAX_ERRORS 50

typedef struct ft_schema ft_schema_t;

/*
 * Parses and checks a schema given as JSON text. On failure returns NULL and fills err with
 * FT_EINVAL and a message naming the JSON pointer of the schema at fault, e.g.
 * `unsupported keyword "oneOf" at #/properties/x` or
 * `"minLength" at #/properties/name must be a non-negative integer`.
 * The caller frees the result with ft_schema_free.
 */
ft_schema_t *ft_schema_compile(const char *text, ft_error_t *err);

/*
 * As ft_schema_compile, from a parsed document. The schema is copied: the caller keeps its
 * reference and may change or free `schema` afterwards. The caller frees the result with
 * ft_schema_free.
 */
ft_schema_t *ft_schema_from_json(json_t *schema, ft_error_t *err);

/*
 * Validates `instance` against `s` (neither NULL). Returns FT_OK when valid, FT_EINVAL otherwise.
 *
 * When invalid and `errors` is not NULL, *errors is set to a new array that the caller releases
 * with json_decref: one object per violation, in schema order, at most FT_SCHEMA_MAX_ERRORS:
 *   {"pointer": "#/address/zip", "detail": "must be a string"}
 * The pointer is the RFC 6901 pointer of the value at fault ("~" and "/" in names escaped as
 * "~0" and "~1"), written as a URI fragment; for a missing required property it is the pointer
 * the property would have. When valid, *errors is set to NULL. When `errors` is NULL only the
 * verdict is wanted, and validation stops at the first violation.
 *
 * When `fill_defaults` is true and the instance is valid, every property that is absent from an
 * object but has a "default" in the "properties" entry that describes it gets a copy of that
 * default, recursively through properties, additionalProperties and items. Nothing is added to
 * an invalid instance. This is the only way `instance` is modified.
 */
int ft_schema_validate(const ft_schema_t *s, json_t *instance, int fill_defaults, json_t **errors);

/* Frees a compiled schema; NULL is allowed. */
void ft_schema_free(ft_schema_t *s);

#endif
