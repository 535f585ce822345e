/*
 * glob.c - match object keys against input globs.
 *
 * Keys are matched as whole strings with shell-like rules: '*' matches any
 * run of characters except '/', '?' one character except '/', "[...]" one
 * character from a set ("[a-z]", "[!x]" or "[^x]" for the complement).
 * "**" matches any characters including '/', and "**" followed by '/'
 * matches zero or more whole directory levels (including none).
 * A backslash makes the next character literal. Matching never allocates.
 */
#include <string.h>

#include "plan.h"

/* Match one "[...]" set at *pat against c; advances *pat past the set.
 * Returns 1 on a match, 0 on none, -1 when the set is not closed (then the
 * '[' is taken literally by the caller). */
static int glob_match_set(const char **pat, char c)
{
    const char *p = *pat + 1;
    int negate = 0, matched = 0;
    if (*p == '!' || *p == '^') {
        negate = 1;
        p++;
    }
    int first = 1;
    while (*p && (*p != ']' || first)) {
        char lo = *p;
        if (lo == '\\' && p[1])
            lo = *++p;
        char hi = lo;
        if (p[1] == '-' && p[2] && p[2] != ']') {
            hi = p[2];
            if (hi == '\\' && p[3])
                hi = *(p += 1, p + 2);
            p += 2;
        }
        if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
            matched = 1;
        p++;
        first = 0;
    }
    if (*p != ']')
        return -1;
    *pat = p + 1;
    return matched != negate;
}

/* Match key against pat. With prefix set, key is only the start of a
 * candidate key: the match succeeds once key is used up while the pattern
 * can still go on. */
static int glob_match(const char *pat, const char *key, int prefix)
{
    while (*pat) {
        if (prefix && !*key)
            return 1;
        if (prefix && pat[0] == '*' && pat[1] == '*')
            return 1; /* "**" absorbs the rest of any prefix */
        if (pat[0] == '*' && pat[1] == '*') {
            const char *rest = pat + 2;
            if (*rest == '/') {
                /* "**" followed by '/': zero or more whole segments. */
                rest++;
                for (const char *k = key;; k++) {
                    if ((k == key || k[-1] == '/') && glob_match(rest, k, prefix))
                        return 1;
                    if (!*k)
                        return 0;
                }
            }
            /* Otherwise "**" matches any characters, '/' included. */
            for (const char *k = key;; k++) {
                if (glob_match(rest, k, prefix))
                    return 1;
                if (!*k)
                    return 0;
            }
        }
        switch (*pat) {
        case '*': {
            const char *rest = pat + 1;
            for (const char *k = key;; k++) {
                if (glob_match(rest, k, prefix))
                    return 1;
                if (!*k || *k == '/')
                    return 0;
            }
        }
        case '?':
            if (!*key || *key == '/')
                return 0;
            pat++;
            key++;
            break;
        case '[': {
            if (!*key || *key == '/')
                return 0;
            const char *p = pat;
            int m = glob_match_set(&p, *key);
            if (m < 0) { /* unclosed: a literal '[' */
                if (*key != '[')
                    return 0;
                pat++;
                key++;
                break;
            }
            if (!m)
                return 0;
            pat = p;
            key++;
            break;
        }
        case '\\':
            if (pat[1])
                pat++;
            /* fall through */
        default:
            if (*pat != *key)
                return 0;
            pat++;
            key++;
            break;
        }
    }
    return *key == '\0';
}

int dsp_glob_match(const char *pattern, const char *key)
{
    return glob_match(pattern, key, 0);
}

int dsp_glob_match_prefix(const char *pattern, const char *prefix)
{
    return glob_match(pattern, prefix, 1);
}
