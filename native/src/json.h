/*
 * A small strict JSON parser (RFC 8259) for the run spec and the helper's own error lines.
 *
 * Accepted: objects, arrays, strings (every escape, \uXXXX including surrogate pairs, decoded to
 * UTF-8), integers, true, false, null. Refused, with the byte offset: floats and exponents
 * (nothing in the spec is fractional), integers outside int64, "\u0000" and raw NUL (strings become
 * C strings), invalid UTF-8, unescaped control characters, duplicate object keys, leading zeros,
 * a byte-order mark, trailing bytes after the document, nesting deeper than JSON_MAX_DEPTH and
 * more than JSON_MAX_NODES values.
 */
#ifndef KRX_JSON_H
#define KRX_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 65536

enum json_type { JSON_NULL, JSON_BOOL, JSON_INT, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
    enum json_type type;
    const char *key;   /* member name when inside an object, else NULL */
    struct json *next; /* next element or member of the enclosing array or object */
    union {
        bool b;
        long long i;
        struct {
            char *s; /* NUL-terminated, contains no NUL */
            size_t len;
        } str;
        struct {
            struct json *first;
            size_t count;
        } items; /* array elements or object members, in document order */
    } u;
};

/* Parse exactly one document spanning text[0..len). NULL on failure, with err filled. */
struct json *json_parse(const char *text, size_t len, struct krx_err *err);

void json_free(struct json *v);

/* The member named key of an object, or NULL. */
const struct json *json_get(const struct json *obj, const char *key);

/* "object", "array", … for messages. */
const char *json_type_name(enum json_type t);

#endif
