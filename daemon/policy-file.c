#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "json-util.h"
#include "macro.h"
#include "policy-file.h"
#include "strv.h"
#include "utf8.h"


/* Values and keys quoted in messages are cut after this many bytes of JSON text. */
#define QUOTE_MAX 40
#define QUOTE_SIZE (QUOTE_MAX + sizeof("...") + 1)

/* Room for a key's path: "[123456].match." and a quoted key. */
#define KEY_PATH_SIZE 96

static const char json_ws[] = " \t\n\r";

static int errorf(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errorf(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        char *m;
        int k;

        if (!ret_error)
                return r;

        va_start(ap, fmt);
        k = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        *ret_error = m;
        return r;
}

static int errorf_at(char **ret_error, int r, const char *path, const char *text, size_t offset,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int errorf_at(char **ret_error, int r, const char *path, const char *text, size_t offset,
                     const char *fmt, ...) {
        _cleanup_free_ char *reason = NULL;
        unsigned line, column;
        va_list ap;
        int k;

        if (!ret_error)
                return r;

        va_start(ap, fmt);
        k = vasprintf(&reason, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        utf8_position(text, offset, &line, &column);
        return errorf(ret_error, r, "%s:%u:%u: %s", path, line, column, reason);
}

/* JSON text of a value for messages, cut after QUOTE_MAX bytes at a character boundary. */
static const char *quote_json(char buf[static QUOTE_SIZE], json_object *v) {
        const char *s;
        size_t n;

        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN|JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return "(unknown)";

        n = strlen(s);
        if (n <= QUOTE_MAX) {
                memcpy(buf, s, n + 1);
                return buf;
        }

        n = QUOTE_MAX;
        while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                n--;
        memcpy(buf, s, n);
        strcpy(buf + n, "...");
        return buf;
}

/* What a message says a value was: containers by kind, scalars by their text. */
static const char *describe_value(char buf[static QUOTE_SIZE], json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_null:
                return "null";
        case json_type_int:
                /* json-c saturates what does not fit: do not quote a number the file never had */
                if (json_object_get_int64(v) == INT64_MIN || json_object_get_uint64(v) == UINT64_MAX)
                        return "an integer beyond 64 bits";
                return quote_json(buf, v);
        case json_type_boolean:
        case json_type_double:
        case json_type_string:
                return quote_json(buf, v);
        }
        return "an unknown value";
}

static bool key_is_plain(const char *key) {
        size_t n = strlen(key);

        if (n == 0 || n > QUOTE_MAX)
                return false;
        return strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* prefix.key, jq-style: a key that is not a plain word is quoted as JSON. */
static const char *key_path(char buf[static KEY_PATH_SIZE], const char *prefix, const char *key) {
        char quoted[QUOTE_SIZE];
        const char *k = key;
        json_object *s = NULL;

        if (!key_is_plain(key)) {
                s = json_object_new_string(key);
                k = s ? quote_json(quoted, s) : "\"?\"";
        }
        snprintf(buf, KEY_PATH_SIZE, "%s%s%s", prefix, prefix[0] ? "." : "", k);
        json_object_put(s);
        return buf;
}

typedef struct Parser {
        const char *path;
        char **ret_error;
} Parser;

static int content_error(Parser *p, const char *key, const char *expected, json_object *v) {
        char buf[QUOTE_SIZE];

        return errorf(p->ret_error, -EINVAL, "%s: %s: expected %s, got %s",
                      p->path, key, expected, describe_value(buf, v));
}

static int parse_uint(Parser *p, const char *key, json_object *v, uint64_t min, uint64_t max,
                      uint64_t *ret) {
        char expected[80];
        uint64_t u;

        if (json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0) {
                u = json_object_get_uint64(v);
                if (u >= min && u <= max) {
                        *ret = u;
                        return 0;
                }
        }

        snprintf(expected, sizeof(expected), "an integer from %" PRIu64 " to %" PRIu64, min, max);
        return content_error(p, key, expected, v);
}

static int parse_watts(Parser *p, const char *key, json_object *v, double *ret) {
        char expected[80];
        double d;

        if (json_object_is_type(v, json_type_null)) {
                *ret = NAN;
                return 0;
        }
        if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
                d = json_object_get_double(v);
                if (isfinite(d) && d >= 0 && d <= POLICY_POWER_W_MAX) {
                        *ret = d;
                        return 0;
                }
        }

        snprintf(expected, sizeof(expected), "a number from 0 to %g or null", POLICY_POWER_W_MAX);
        return content_error(p, key, expected, v);
}

static int parse_mode(Parser *p, const char *key, json_object *v, PolicyMode *ret) {
        PolicyMode m = _POLICY_MODE_INVALID;

        /* "on\u0000x" is not "on": the whole string must be the name */
        if (json_object_is_type(v, json_type_string) &&
            strlen(json_object_get_string(v)) == (size_t) json_object_get_string_len(v))
                m = policy_mode_from_string(json_object_get_string(v));
        if (m < 0)
                return content_error(p, key, "\"kernel\", \"on\", \"auto\" or \"wakeup\"", v);

        *ret = m;
        return 0;
}

static int parse_d3cold(Parser *p, const char *key, json_object *v, PolicyD3cold *ret) {
        if (json_object_is_type(v, json_type_null))
                *ret = POLICY_D3COLD_LEAVE;
        else if (json_object_is_type(v, json_type_boolean))
                *ret = json_object_get_boolean(v) ? POLICY_D3COLD_ALLOW : POLICY_D3COLD_DENY;
        else
                return content_error(p, key, "true, false or null", v);
        return 0;
}

/* n_digits hex digits, stored lowercase in ret (n_digits + 1 bytes). allowed is a mask of the
 * lengths accepted, (1 << 4) or (1 << 2)|(1 << 4)|(1 << 6). */
static int parse_hex(Parser *p, const char *key, json_object *v, unsigned allowed, const char *expected,
                     char *ret) {
        const char *s;
        size_t n;

        if (!json_object_is_type(v, json_type_string))
                return content_error(p, key, expected, v);

        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (n >= sizeof(unsigned) * 8 || !(allowed & (1u << n)) || strspn(s, "0123456789abcdefABCDEF") != n)
                return content_error(p, key, expected, v);

        for (size_t i = 0; i <= n; i++)
                ret[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char) (s[i] - 'A' + 'a') : s[i];
        return 0;
}

static int parse_name(Parser *p, const char *key, json_object *v, char **ret) {
        const char *s;
        char *copy;
        size_t n;

        if (!json_object_is_type(v, json_type_string))
                goto invalid;

        s = json_object_get_string(v);
        n = (size_t) json_object_get_string_len(v);
        if (n == 0 || n > POLICY_NAME_MAX || strlen(s) != n || strchr(s, '/'))
                goto invalid;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        goto invalid;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*ret);
        *ret = copy;
        return 0;

invalid:
        return content_error(p, key, "a name of 1 to 255 bytes without '/' or control characters", v);
}

static int parse_match(Parser *p, const char *prefix, json_object *obj, PolicyMatch *m) {
        char path[KEY_PATH_SIZE];
        uint64_t group;
        int r = 0;

        if (!json_object_is_type(obj, json_type_object))
                return content_error(p, prefix, "an object", obj);

        json_object_object_foreach(obj, key, v) {
                PolicyMatchKey k = policy_match_key_from_string(key);

                key_path(path, prefix, key);
                switch (k) {
                case POLICY_MATCH_DEVICE:
                        r = parse_name(p, path, v, &m->device);
                        break;
                case POLICY_MATCH_VENDOR:
                        r = parse_hex(p, path, v, 1u << 4, "a string of 4 hex digits", m->vendor);
                        break;
                case POLICY_MATCH_DEVICE_ID:
                        r = parse_hex(p, path, v, 1u << 4, "a string of 4 hex digits", m->device_id);
                        break;
                case POLICY_MATCH_SUBSYSTEM_VENDOR:
                        r = parse_hex(p, path, v, 1u << 4, "a string of 4 hex digits", m->subsystem_vendor);
                        break;
                case POLICY_MATCH_SUBSYSTEM_DEVICE:
                        r = parse_hex(p, path, v, 1u << 4, "a string of 4 hex digits", m->subsystem_device);
                        break;
                case POLICY_MATCH_CLASS:
                        r = parse_hex(p, path, v, (1u << 2)|(1u << 4)|(1u << 6),
                                      "a string of 2, 4 or 6 hex digits", m->class);
                        break;
                case POLICY_MATCH_DRIVER:
                        r = parse_name(p, path, v, &m->driver);
                        break;
                case POLICY_MATCH_IOMMU_GROUP:
                        r = parse_uint(p, path, v, 0, INT_MAX, &group);
                        if (r >= 0)
                                m->iommu_group = (int) group;
                        break;
                case _POLICY_MATCH_MAX:
                case _POLICY_MATCH_INVALID:
                        r = errorf(p->ret_error, -EINVAL, "%s: %s: unknown key", p->path, path);
                        break;
                }
                if (r < 0)
                        return r;
        }

        return 0;
}

static int parse_key(Parser *p, const char *path, PolicyKey k, json_object *v, PolicyValues *values) {
        switch (k) {
        case POLICY_KEY_MODE:
                return parse_mode(p, path, v, &values->mode);
        case POLICY_KEY_ARM_DELAY_MS:
                return parse_uint(p, path, v, 0, POLICY_DELAY_MS_MAX, &values->arm_delay_ms);
        case POLICY_KEY_REARM_DELAY_MS:
                return parse_uint(p, path, v, 0, POLICY_DELAY_MS_MAX, &values->rearm_delay_ms);
        case POLICY_KEY_FLAP_MAX_WAKES:
                return parse_uint(p, path, v, POLICY_FLAP_MAX_WAKES_MIN, POLICY_FLAP_MAX_WAKES_MAX,
                                  &values->flap_max_wakes);
        case POLICY_KEY_FLAP_WINDOW_S:
                return parse_uint(p, path, v, POLICY_FLAP_WINDOW_S_MIN, POLICY_FLAP_WINDOW_S_MAX,
                                  &values->flap_window_s);
        case POLICY_KEY_FLAP_HOLD_S:
                return parse_uint(p, path, v, 0, POLICY_FLAP_HOLD_S_MAX, &values->flap_hold_s);
        case POLICY_KEY_D3COLD:
                return parse_d3cold(p, path, v, &values->d3cold);
        case POLICY_KEY_POWER_ACTIVE_W:
                return parse_watts(p, path, v, &values->power_active_w);
        case POLICY_KEY_POWER_LOW_W:
                return parse_watts(p, path, v, &values->power_low_w);
        case _POLICY_KEY_MAX:
        case _POLICY_KEY_INVALID:
                break;
        }
        return errorf(p->ret_error, -EINVAL, "%s: %s: unknown key", p->path, path);
}

/* prefix is "" for a file of one rule object, "[i]" for an array's element. */
static int parse_rule(Parser *p, const char *prefix, json_object *obj, PolicyFile *f) {
        char path[KEY_PATH_SIZE];
        PolicyRule *rule;
        int r;

        if (!json_object_is_type(obj, json_type_object))
                return content_error(p, prefix, "a rule object", obj);

        r = policy_file_add_rule(f, &rule);
        if (r < 0)
                return r;

        json_object_object_foreach(obj, key, v) {
                key_path(path, prefix, key);

                if (strcmp(key, "match") == 0)
                        r = parse_match(p, path, v, &rule->match);
                else {
                        PolicyKey k = policy_key_from_string(key);

                        r = parse_key(p, path, k, v, &rule->values);
                        if (r >= 0)
                                rule->set[k] = true;
                }
                if (r < 0)
                        return r;
        }

        return 0;
}

static uint64_t key_comparisons;

uint64_t policy_file_key_comparisons(void) {
        return key_comparisons;
}

/* Decodes one string token ("a\u0062") of valid JSON; NULL only if out of memory. */
static json_object *json_parse_string_token(const char *s, size_t n) {
        struct json_tokener *tok;
        json_object *o;

        tok = json_tokener_new();
        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, s, (int) n);
        json_tokener_free(tok);
        return o;
}

static void free_key(struct lh_entry *e) {
        free(lh_entry_k(e));
}

static int keys_equal(const void *a, const void *b) {
        key_comparisons++;
        return strcmp(a, b) == 0;
}

/* The keys of each object open at a point of the text, in json-c's hash table (its hash is
 * seeded at random, as for the objects it parses): each key is looked up once, whatever the
 * object's size. The names are decoded, NUL-terminated copies the table owns. */
typedef struct KeyScan {
        struct {
                bool object;
                struct lh_table *keys;          /* an object's, NULL for an array */
        } stack[POLICY_FILE_DEPTH_MAX + 1];
        size_t depth;
} KeyScan;

static void key_scan_done(KeyScan *ks) {
        while (ks->depth > 0) {
                ks->depth--;
                if (ks->stack[ks->depth].keys)
                        lh_table_free(ks->stack[ks->depth].keys);
        }
}

static int key_scan_push(KeyScan *ks, bool object) {
        struct lh_table *keys = NULL;

        if (ks->depth >= ELEMENTSOF(ks->stack))
                return -EINVAL;
        if (object) {
                keys = lh_kchar_table_new(16, free_key);
                if (!keys)
                        return -ENOMEM;
                keys->equal_fn = keys_equal;    /* strcmp, counted */
        }
        ks->stack[ks->depth].object = object;
        ks->stack[ks->depth].keys = keys;
        ks->depth++;
        return 0;
}

/* Adds the key token text[start..end] (its quotes included) to the innermost object. Returns 1 if
 * the object had it already, with its decoded name in *ret_key. */
static int key_scan_add(KeyScan *ks, const char *text, size_t start, size_t end, json_object **ret_key) {
        struct lh_table *keys = ks->stack[ks->depth - 1].keys;
        _cleanup_(json_object_putp) json_object *decoded = NULL;
        _cleanup_free_ char *name = NULL;
        unsigned long hash;

        if (memchr(text + start + 1, '\\', end - start - 1)) {
                decoded = json_parse_string_token(text + start, end - start + 1);
                /* json-c's keys end at a NUL ("mode\u0000x" is "mode"): so do these */
                name = decoded ? strdup(json_object_get_string(decoded)) : NULL;
        } else
                name = strndup(text + start + 1, end - start - 1);
        if (!name)
                return -ENOMEM;

        hash = lh_get_hash(keys, name);
        if (lh_table_lookup_entry_w_hash(keys, name, hash)) {
                *ret_key = decoded ? TAKE_PTR(decoded) : json_object_new_string(name);
                return *ret_key ? 1 : -ENOMEM;
        }
        if (lh_table_insert_w_hash(keys, name, NULL, hash, 0) < 0)
                return -ENOMEM;
        TAKE_PTR(name);
        return 0;
}

enum {
        KEYS_OK,
        KEYS_DUPLICATE,
        KEYS_SINGLE_QUOTED,
};

/* What json-c lets through even in strict mode, found in the text itself: it keeps the last of
 * two equal keys without a word, and takes 'single-quoted' keys. The text is JSON as json-c
 * accepted it, nested at most POLICY_FILE_DEPTH_MAX deep. Returns KEYS_DUPLICATE with the offset
 * and decoded name of a key's second occurrence, KEYS_SINGLE_QUOTED with the offset of the quote,
 * KEYS_OK if neither. */
static int check_keys(const char *text, size_t len, size_t *ret_offset, json_object **ret_key) {
        __attribute__((cleanup(key_scan_done))) KeyScan ks = {};
        bool expect_key = false;
        int r;

        for (size_t i = 0; i < len; i++) {
                size_t end;

                switch (text[i]) {
                case '{':
                case '[':
                        r = key_scan_push(&ks, text[i] == '{');
                        if (r < 0)
                                return r;
                        expect_key = text[i] == '{';
                        break;

                case '}':
                case ']':
                        if (ks.depth == 0)
                                return -EINVAL;
                        ks.depth--;
                        if (ks.stack[ks.depth].keys)
                                lh_table_free(ks.stack[ks.depth].keys);
                        expect_key = false;
                        break;

                case ',':
                        expect_key = ks.depth > 0 && ks.stack[ks.depth - 1].object;
                        break;

                case '\'':
                        /* outside a string: json-c refuses single quotes elsewhere in strict mode */
                        *ret_offset = i;
                        return KEYS_SINGLE_QUOTED;

                case '"':
                        for (end = i + 1; end < len && text[end] != '"'; end++)
                                if (text[end] == '\\')
                                        end++;
                        if (end >= len)
                                return -EINVAL;

                        if (expect_key) {
                                expect_key = false;
                                r = key_scan_add(&ks, text, i, end, ret_key);
                                if (r < 0)
                                        return r;
                                if (r > 0) {
                                        *ret_offset = i;
                                        return KEYS_DUPLICATE;
                                }
                        }
                        i = end;
                        break;
                }
        }

        return KEYS_OK;
}

static size_t skip_ws(const char *text, size_t len, size_t i) {
        while (i < len && strchr(json_ws, text[i]) && text[i] != '\0')
                i++;
        return i;
}

/* json-c's own texts are terse ("array value separator ',' expected"); say what to fix. */
static const char *syntax_reason(enum json_tokener_error e, char c, char buf[static 64]) {
        switch (e) {
        case json_tokener_error_depth:
                snprintf(buf, 64, "nesting deeper than %d levels", POLICY_FILE_DEPTH_MAX);
                return buf;
        case json_tokener_continue:
        case json_tokener_error_parse_eof:
                return "unexpected end of file";
        case json_tokener_error_parse_unexpected:
                if (c == '/')
                        return "comments are not allowed";
                if (c == '\'')
                        return "single quotes are not allowed, use double quotes";
                if (c > ' ' && c < 0x7f) {
                        snprintf(buf, 64, "unexpected character '%c'", c);
                        return buf;
                }
                return "unexpected character";
        case json_tokener_error_parse_null:
                return "invalid literal, expected null";
        case json_tokener_error_parse_boolean:
                return "invalid literal, expected true or false";
        case json_tokener_error_parse_number:
                return "invalid number";
        case json_tokener_error_parse_array:
                return "expected ',' or ']' after an array element";
        case json_tokener_error_parse_object_key_name:
                return "expected a key in double quotes";
        case json_tokener_error_parse_object_key_sep:
                return "expected ':' after a key";
        case json_tokener_error_parse_object_value_sep:
                return "expected ',' or '}' after a value";
        case json_tokener_error_parse_string:
                return "invalid escape sequence in a string";
        case json_tokener_error_parse_comment:
                return "comments are not allowed";
        case json_tokener_error_parse_utf8_string:
                return "invalid UTF-8";
        case json_tokener_error_size:
                return "file too large";
        case json_tokener_success:
        default:        /* json-c's enum, not ours: newer versions add to it */
                break;
        }
        return "invalid JSON";
}

/* Where json-c stopped is not always where the mistake is: a trailing comma is found at the
 * bracket after it, a bad number at its end. Point at the comma and at the number's start. */
static int syntax_error(Parser *p, const char *text, size_t len, enum json_tokener_error jerr, size_t end) {
        char c = end < len ? text[end] : '\0', buf[64];
        size_t prev = end;

        if (jerr == json_tokener_error_parse_unexpected && (c == ']' || c == '}')) {
                while (prev > 0 && strchr(json_ws, text[prev - 1]))
                        prev--;
                if (prev > 0 && text[prev - 1] == ',')
                        return errorf_at(p->ret_error, -EBADMSG, p->path, text, prev - 1,
                                         "trailing comma before '%c'", c);
        }

        if (jerr == json_tokener_error_parse_number)
                while (end > 0 && strchr("0123456789+-.eExX", text[end - 1]))
                        end--;

        return errorf_at(p->ret_error, -EBADMSG, p->path, text, end, "%s", syntax_reason(jerr, c, buf));
}

int policy_file_parse(const char *path, const char *text, size_t len, PolicyFile **ret,
                      char **ret_error) {
        _cleanup_(policy_file_unrefp) PolicyFile *f = NULL;
        _cleanup_(json_tokener_freep) struct json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL, *dup_key = NULL;
        Parser p = { .path = path, .ret_error = ret_error };
        enum json_tokener_error jerr;
        char quoted[QUOTE_SIZE];
        size_t off, end;
        int r;

        if (!path || (!text && len > 0))
                return -EINVAL;

        if (len > POLICY_FILE_SIZE_MAX)
                return errorf(ret_error, -EFBIG, "%s: file is larger than 1 MiB (%d bytes)",
                              path, POLICY_FILE_SIZE_MAX);

        /* json-c stops at a NUL byte and checks UTF-8 only where asked: check first, and say where. */
        off = utf8_invalid_offset(text, len);
        if (off < len)
                return errorf_at(ret_error, -EILSEQ, path, text, off,
                                 text[off] == '\0' ? "NUL byte" : "invalid UTF-8");

        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                return errorf_at(ret_error, -EBADMSG, path, text, 0, "byte order mark (BOM) is not allowed");

        off = skip_ws(text, len, 0);
        if (off == len)
                return errorf(ret_error, -ENODATA, "%s: file is empty", path);
        if (text[off] == '/')
                return errorf_at(ret_error, -EBADMSG, path, text, off, "comments are not allowed");
        if (text[off] != '{' && text[off] != '[')
                return errorf_at(ret_error, -EINVAL, path, text, off,
                                 "expected a rule object or an array of rule objects");

        tok = json_tokener_new_ex(POLICY_FILE_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        /* Trailing data is checked below, to point at it. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT|JSON_TOKENER_ALLOW_TRAILING_CHARS);

        root = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (end > len)
                end = len;
        if (jerr != json_tokener_success || !root)
                return syntax_error(&p, text, len, jerr, end);

        off = skip_ws(text, len, end);
        if (off < len)
                return errorf_at(ret_error, -EBADMSG, path, text, off, "unexpected data after the JSON value");

        r = check_keys(text, end, &off, &dup_key);
        if (r < 0)
                return r;
        if (r == KEYS_SINGLE_QUOTED)
                return errorf_at(ret_error, -EBADMSG, path, text, off,
                                 "single quotes are not allowed, use double quotes");
        if (r == KEYS_DUPLICATE)
                return errorf_at(ret_error, -EINVAL, path, text, off, "duplicate key %s",
                                 quote_json(quoted, dup_key));

        r = policy_file_new(path, &f);
        if (r < 0)
                return r;

        if (json_object_is_type(root, json_type_array)) {
                size_t n = json_object_array_length(root);

                for (size_t i = 0; i < n; i++) {
                        char prefix[32];

                        snprintf(prefix, sizeof(prefix), "[%zu]", i);
                        r = parse_rule(&p, prefix, json_object_array_get_idx(root, i), f);
                        if (r < 0)
                                return r;
                }
        } else {
                r = parse_rule(&p, "", root, f);
                if (r < 0)
                        return r;
        }

        if (ret)
                *ret = TAKE_PTR(f);
        return 0;
}

int policy_file_load_at(int dirfd, const char *name, const char *path, PolicyFile **ret,
                        char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *text = NULL;
        char target[PATH_MAX];
        struct stat st;
        size_t len = 0;
        ssize_t k;
        int r;

        if (!name || !path)
                return -EINVAL;

        /* systemd's convention: a link to /dev/null masks the name, without an error. */
        k = readlinkat(dirfd, name, target, sizeof(target) - 1);
        if (k >= 0) {
                target[k] = '\0';
                if (strcmp(target, "/dev/null") == 0)
                        return 1;
        }

        /* O_NONBLOCK: a FIFO named *.json must not hang the daemon. */
        fd = openat(dirfd, name, O_RDONLY|O_CLOEXEC|O_NOCTTY|O_NONBLOCK);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT && k >= 0)
                        return errorf(ret_error, r, "%s: dangling symbolic link", path);
                return errorf(ret_error, r, "%s: cannot open: %s", path, strerror(-r));
        }

        if (fstat(fd, &st) < 0) {
                r = -errno;
                return errorf(ret_error, r, "%s: cannot stat: %s", path, strerror(-r));
        }
        if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                return 1;       /* /dev/null through a chain of links */
        if (!S_ISREG(st.st_mode))
                return errorf(ret_error, -EBADFD, "%s: not a regular file", path);
        if (st.st_size > POLICY_FILE_SIZE_MAX)
                return errorf(ret_error, -EFBIG, "%s: file is larger than 1 MiB (%d bytes)",
                              path, POLICY_FILE_SIZE_MAX);

        r = read_full_fd(fd, POLICY_FILE_SIZE_MAX, (size_t) st.st_size, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)        /* it grew after fstat() */
                return errorf(ret_error, -EFBIG, "%s: file is larger than 1 MiB (%d bytes)",
                              path, POLICY_FILE_SIZE_MAX);
        if (r < 0)
                return errorf(ret_error, r, "%s: cannot read: %s", path, strerror(-r));

        return policy_file_parse(path, text, len, ret, ret_error);
}

static json_object *json_new_watts(double d) {
        char buf[32];

        for (int precision = 15; precision <= 17; precision++) {
                snprintf(buf, sizeof(buf), "%.*g", precision, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        return json_object_new_double_s(d, buf);
}

static int value_to_json(const PolicyValues *v, PolicyKey k, json_object **ret) {
        json_object *o = NULL;

        switch (k) {
        case POLICY_KEY_MODE:
                if (!policy_mode_to_string(v->mode))
                        return -EINVAL;
                o = json_object_new_string(policy_mode_to_string(v->mode));
                break;
        case POLICY_KEY_ARM_DELAY_MS:
                o = json_object_new_uint64(v->arm_delay_ms);
                break;
        case POLICY_KEY_REARM_DELAY_MS:
                o = json_object_new_uint64(v->rearm_delay_ms);
                break;
        case POLICY_KEY_FLAP_MAX_WAKES:
                o = json_object_new_uint64(v->flap_max_wakes);
                break;
        case POLICY_KEY_FLAP_WINDOW_S:
                o = json_object_new_uint64(v->flap_window_s);
                break;
        case POLICY_KEY_FLAP_HOLD_S:
                o = json_object_new_uint64(v->flap_hold_s);
                break;
        case POLICY_KEY_D3COLD:
                switch (v->d3cold) {
                case POLICY_D3COLD_LEAVE:
                        *ret = NULL;
                        return 0;
                case POLICY_D3COLD_DENY:
                case POLICY_D3COLD_ALLOW:
                        o = json_object_new_boolean(v->d3cold == POLICY_D3COLD_ALLOW);
                        break;
                case _POLICY_D3COLD_MAX:
                case _POLICY_D3COLD_INVALID:
                        return -EINVAL;
                }
                break;
        case POLICY_KEY_POWER_ACTIVE_W:
        case POLICY_KEY_POWER_LOW_W: {
                double w = k == POLICY_KEY_POWER_ACTIVE_W ? v->power_active_w : v->power_low_w;

                if (isnan(w)) {
                        *ret = NULL;
                        return 0;
                }
                o = json_new_watts(w);
                break;
        }
        case _POLICY_KEY_MAX:
        case _POLICY_KEY_INVALID:
                return -EINVAL;
        }
        if (!o)
                return -ENOMEM;

        *ret = o;
        return 0;
}

/* Adds v (NULL: JSON null) to obj and hands it over, also when that fails. */
static int json_add(json_object *obj, const char *key, json_object *v) {
        if (json_object_object_add(obj, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int effective_policy_to_json(const EffectivePolicy *p, char **ret) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        const char *s;
        char *copy;
        int r;

        if (!p || !ret)
                return -EINVAL;

        root = json_object_new_object();
        if (!root)
                return -ENOMEM;

        for (PolicyKey k = 0; k < _POLICY_KEY_MAX; k++) {
                const PolicySource *src = &p->source[k];
                json_object *entry, *value;

                entry = json_object_new_object();
                if (!entry)
                        return -ENOMEM;
                r = json_add(root, policy_key_to_string(k), entry);
                if (r < 0)
                        return r;

                r = value_to_json(&p->values, k, &value);
                if (r < 0)
                        return r;
                r = json_add(entry, "value", value);
                if (r < 0)
                        return r;

                value = src->file ? json_object_new_string(src->file) : NULL;
                if (src->file && !value)
                        return -ENOMEM;
                r = json_add(entry, "source", value);
                if (r < 0)
                        return r;

                value = src->file ? json_object_new_uint64(src->rule) : NULL;
                if (src->file && !value)
                        return -ENOMEM;
                r = json_add(entry, "rule", value);
                if (r < 0)
                        return r;
        }

        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN|JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        *ret = copy;
        return 0;
}
