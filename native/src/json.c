#include "json.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const unsigned char *p;
    const unsigned char *start;
    const unsigned char *end;
    size_t nodes;
    struct krx_err *err;
};

static int fail_at(struct parser *ps, const char *what) {
    return krx_fail(ps->err, "JSON: %s at byte %zu", what, (size_t)(ps->p - ps->start));
}

static void skip_ws(struct parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static struct json *new_node(struct parser *ps, enum json_type type) {
    if (ps->nodes >= JSON_MAX_NODES) {
        fail_at(ps, "too many values");
        return NULL;
    }
    struct json *v = calloc(1, sizeof *v);
    if (v == NULL) {
        fail_at(ps, "out of memory");
        return NULL;
    }
    ps->nodes++;
    v->type = type;
    return v;
}

static int literal(struct parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail_at(ps, "unexpected character");
    ps->p += n;
    return 0;
}

static int hex4(struct parser *ps, unsigned *out) {
    unsigned v = 0;
    if (ps->end - ps->p < 4) return fail_at(ps, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        unsigned char c = ps->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return fail_at(ps, "bad hex digit in \\u escape");
    }
    ps->p += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(unsigned char *dst, unsigned cp) {
    if (cp < 0x80) {
        dst[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (unsigned char)(0xc0 | (cp >> 6));
        dst[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (unsigned char)(0xe0 | (cp >> 12));
        dst[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (unsigned char)(0xf0 | (cp >> 18));
    dst[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
    if (cp >= 0xd800 && cp <= 0xdfff) return 0;
    return n;
}

/* At the opening quote. Decoded text is never longer than its encoded form. */
static int parse_string(struct parser *ps, char **out, size_t *out_len) {
    ps->p++;
    const unsigned char *scan = ps->p;
    while (scan < ps->end && *scan != '"') scan += (*scan == '\\' && scan + 1 < ps->end) ? 2 : 1;
    if (scan >= ps->end) return fail_at(ps, "unterminated string");

    unsigned char *buf = malloc((size_t)(scan - ps->p) + 1);
    if (buf == NULL) return fail_at(ps, "out of memory");
    size_t len = 0;
    while (*ps->p != '"') {
        unsigned char c = *ps->p;
        if (c < 0x20) {
            free(buf);
            return fail_at(ps, c == 0 ? "NUL byte in string"
                                      : "unescaped control character in string");
        }
        if (c != '\\') {
            size_t n = utf8_seq(ps->p, ps->end);
            if (n == 0) {
                free(buf);
                return fail_at(ps, "invalid UTF-8 in string");
            }
            memcpy(buf + len, ps->p, n);
            len += n;
            ps->p += n;
            continue;
        }
        ps->p++;
        unsigned char e = *ps->p++;
        unsigned cp;
        switch (e) {
        case '"': buf[len++] = '"'; break;
        case '\\': buf[len++] = '\\'; break;
        case '/': buf[len++] = '/'; break;
        case 'b': buf[len++] = '\b'; break;
        case 'f': buf[len++] = '\f'; break;
        case 'n': buf[len++] = '\n'; break;
        case 'r': buf[len++] = '\r'; break;
        case 't': buf[len++] = '\t'; break;
        case 'u':
            if (hex4(ps, &cp) == -1) goto bad;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                fail_at(ps, "unpaired low surrogate in \\u escape");
                goto bad;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                unsigned lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    fail_at(ps, "unpaired high surrogate in \\u escape");
                    goto bad;
                }
                ps->p += 2;
                if (hex4(ps, &lo) == -1) goto bad;
                if (lo < 0xdc00 || lo > 0xdfff) {
                    fail_at(ps, "unpaired high surrogate in \\u escape");
                    goto bad;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0) {
                fail_at(ps, "\\u0000 in string");
                goto bad;
            }
            len += put_utf8(buf + len, cp);
            break;
        default:
            ps->p--;
            fail_at(ps, "invalid escape in string");
            goto bad;
        }
    }
    ps->p++;
    buf[len] = '\0';
    *out = (char *)buf;
    *out_len = len;
    return 0;
bad:
    free(buf);
    return -1;
}

static int parse_int(struct parser *ps, long long *out) {
    bool neg = false;
    if (*ps->p == '-') {
        neg = true;
        ps->p++;
    }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail_at(ps, "bad number");
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
        return fail_at(ps, "leading zero in number");
    /* Accumulate negatively so LLONG_MIN fits. */
    long long v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        int d = *ps->p - '0';
        if (v < (LLONG_MIN + d) / 10) return fail_at(ps, "integer out of range");
        v = v * 10 - d;
        ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
        return fail_at(ps, "fractions and exponents are not accepted");
    if (!neg) {
        if (v == LLONG_MIN) return fail_at(ps, "integer out of range");
        v = -v;
    }
    *out = v;
    return 0;
}

static struct json *parse_value(struct parser *ps, int depth);

static int parse_container(struct parser *ps, struct json *v, int depth) {
    bool object = v->type == JSON_OBJECT;
    unsigned char close = object ? '}' : ']';
    struct json **tail = &v->u.items.first;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t key_len = 0;
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') return fail_at(ps, "expected a member name");
            if (parse_string(ps, &key, &key_len) == -1) return -1;
            for (const struct json *m = v->u.items.first; m != NULL; m = m->next) {
                if (strcmp(m->key, key) == 0) {
                    free(key);
                    return fail_at(ps, "duplicate member name");
                }
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                return fail_at(ps, "expected ':'");
            }
            ps->p++;
        }
        struct json *item = parse_value(ps, depth + 1);
        if (item == NULL) {
            free(key);
            return -1;
        }
        item->key = key;
        *tail = item;
        tail = &item->next;
        v->u.items.count++;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail_at(ps, object ? "unterminated object" : "unterminated array");
        if (*ps->p == ',') {
            ps->p++;
            continue;
        }
        if (*ps->p == close) {
            ps->p++;
            return 0;
        }
        return fail_at(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static struct json *parse_value(struct parser *ps, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        fail_at(ps, "nesting too deep");
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail_at(ps, "unexpected end of input");
        return NULL;
    }
    struct json *v;
    int rc;
    switch (*ps->p) {
    case '{':
    case '[':
        v = new_node(ps, *ps->p == '{' ? JSON_OBJECT : JSON_ARRAY);
        if (v == NULL) return NULL;
        rc = parse_container(ps, v, depth);
        break;
    case '"':
        v = new_node(ps, JSON_STRING);
        if (v == NULL) return NULL;
        rc = parse_string(ps, &v->u.str.s, &v->u.str.len);
        break;
    case 't':
    case 'f':
        v = new_node(ps, JSON_BOOL);
        if (v == NULL) return NULL;
        v->u.b = *ps->p == 't';
        rc = literal(ps, v->u.b ? "true" : "false");
        break;
    case 'n':
        v = new_node(ps, JSON_NULL);
        if (v == NULL) return NULL;
        rc = literal(ps, "null");
        break;
    default:
        if (*ps->p != '-' && (*ps->p < '0' || *ps->p > '9')) {
            fail_at(ps, "unexpected character");
            return NULL;
        }
        v = new_node(ps, JSON_INT);
        if (v == NULL) return NULL;
        rc = parse_int(ps, &v->u.i);
        break;
    }
    if (rc == -1) {
        json_free(v);
        return NULL;
    }
    return v;
}

struct json *json_parse(const char *text, size_t len, struct krx_err *err) {
    struct parser ps = {
        .p = (const unsigned char *)text,
        .start = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .nodes = 0,
        .err = err,
    };
    struct json *v = parse_value(&ps, 0);
    if (v == NULL) return NULL;
    skip_ws(&ps);
    if (ps.p != ps.end) {
        fail_at(&ps, "trailing bytes after the document");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(struct json *v) {
    while (v != NULL) {
        struct json *next = v->next;
        if (v->type == JSON_STRING) free(v->u.str.s);
        if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) json_free(v->u.items.first);
        free((char *)v->key);
        free(v);
        v = next;
    }
}

const struct json *json_get(const struct json *obj, const char *key) {
    if (obj == NULL || obj->type != JSON_OBJECT) return NULL;
    for (const struct json *m = obj->u.items.first; m != NULL; m = m->next)
        if (strcmp(m->key, key) == 0) return m;
    return NULL;
}

const char *json_type_name(enum json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "a boolean";
    case JSON_INT: return "an integer";
    case JSON_STRING: return "a string";
    case JSON_ARRAY: return "an array";
    case JSON_OBJECT: return "an object";
    }
    return "?";
}
