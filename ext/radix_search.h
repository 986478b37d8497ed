/* Small search helpers for the radix trie's hot paths (_radix.pyx), kept in C so that each
 * compiles to a few instructions whatever Cython makes of the surrounding code.
 *
 * radix_find_byte: the index of byte b among the first n (<= 16) bytes of keys, or -1.
 *   The caller guarantees that 16 bytes can be read from keys (a Node4's key array is
 *   followed by its child pointers, a Node16's is 16 bytes long), so the whole array is
 *   compared at once: SSE2 where the compiler targets it, else two 64-bit words compared
 *   a byte lane at a time (SWAR). Lanes at or past n are masked off, so whatever they hold
 *   never matches. Keys are distinct, so the first match is the only one.
 *
 * radix_long_label_matches: the same for len >= 8 with no bytes past len read: whole 64-bit
 *   words, then the last 8 bytes (overlapping the previous word).
 *
 * radix_common_length: the length of the common head of two byte runs, a word at a time.
 *
 * radix_utf8_ucs1/2/4: the UTF-8 form of a str's code points, one loop per storage width.
 *
 * radix_label_matches: whether the len bytes of label equal those at key, with len <= 8
 *   and 8 bytes readable at both label (an inline label is an 8-byte array) and key
 *   (checked by the caller). One 64-bit load from each, compared under a mask.
 */
#ifndef TRIE_CACHE_RADIX_SEARCH_H
#define TRIE_CACHE_RADIX_SEARCH_H

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#include <emmintrin.h>
#define RADIX_SSE2 1
#endif

#if defined(_MSC_VER)
#include <intrin.h>
static __inline int radix_ctz32(uint32_t x) { unsigned long i; _BitScanForward(&i, x); return (int)i; }
static __inline int radix_ctz64(uint64_t x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
#else
#define radix_ctz32(x) __builtin_ctz(x)
#define radix_ctz64(x) __builtin_ctzll(x)
#endif

/* Ask for the cache lines of a node's child storage (bytes 64 to 191 of its block) while
 * its header is still on its way: the search of the header's line then finds the child
 * pointer's line there already. A hint only: it never faults, whatever the address. */
#if defined(__GNUC__) || defined(__clang__)
#define radix_prefetch_node(p) \
    (__builtin_prefetch((const char *)(p) + 64, 0, 3), \
     __builtin_prefetch((const char *)(p) + 128, 0, 3))
#else
#define radix_prefetch_node(p) ((void)(p))
#endif

static inline uint64_t radix_load64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int radix_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* One bit per byte lane of x that is zero, at the lane's top bit; exact for the lowest
 * zero lane (higher ones may be false positives, which the callers never look at). */
static inline uint64_t radix_zero_lanes(uint64_t x) {
    return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}

static inline int radix_find_byte(const unsigned char *keys, int n, unsigned char b) {
#ifdef RADIX_SSE2
    __m128i hay = _mm_loadu_si128((const __m128i *)keys);
    uint32_t hits = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(hay, _mm_set1_epi8((char)b)));
    hits &= (uint32_t)((1u << n) - 1u);
    return hits ? radix_ctz32(hits) : -1;
#else
    if (radix_little_endian()) {
        const uint64_t spread = 0x0101010101010101ULL * b;
        int base;
        for (base = 0; base < n; base += 8) {
            uint64_t lanes = radix_zero_lanes(radix_load64(keys + base) ^ spread);
            int left = n - base;
            if (left < 8)
                lanes &= (1ULL << (8 * left)) - 1ULL;
            if (lanes)
                return base + radix_ctz64(lanes) / 8;
        }
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (keys[i] == b)
            return i;
    return -1;
#endif
}

static inline int radix_label_matches(const unsigned char *label, const unsigned char *key,
                                      uint32_t len) {
    uint64_t diff = radix_load64(label) ^ radix_load64(key);
    if (!radix_little_endian())
        return memcmp(label, key, len) == 0;
    if (len < 8)
        diff &= (1ULL << (8 * len)) - 1ULL;
    return diff == 0;
}

static inline int radix_long_label_matches(const unsigned char *label, const unsigned char *key,
                                           uint32_t len) {
    uint32_t at;
    for (at = 0; at + 8 < len; at += 8)
        if (radix_load64(label + at) != radix_load64(key + at))
            return 0;
    return radix_load64(label + len - 8) == radix_load64(key + len - 8);
}

/* How many leading bytes a and b (n bytes each) share; reads no byte past n. */
static inline size_t radix_common_length(const unsigned char *a, const unsigned char *b,
                                         size_t n) {
    size_t at = 0;
    if (radix_little_endian()) {
        for (; at + 8 <= n; at += 8) {
            uint64_t diff = radix_load64(a + at) ^ radix_load64(b + at);
            if (diff)
                return at + (size_t)radix_ctz64(diff) / 8;
        }
    }
    while (at < n && a[at] == b[at])
        at++;
    return at;
}

/* UTF-8 (lone surrogates passed through as their 3-byte forms) of len code points of one
 * storage width, written to out (room for 4 bytes a code point); returns the bytes written.
 * One loop per width, so the width is not tested again for every character. */
static inline size_t radix_utf8_ucs1(const uint8_t *s, size_t len, unsigned char *out) {
    unsigned char *o = out;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = s[i];
        if (c < 0x80) {
            *o++ = (unsigned char)c;
        } else {
            o[0] = (unsigned char)(0xC0 | (c >> 6));
            o[1] = (unsigned char)(0x80 | (c & 0x3F));
            o += 2;
        }
    }
    return (size_t)(o - out);
}

static inline unsigned char *radix_utf8_bmp(uint32_t c, unsigned char *o) {
    if (c < 0x80) {
        *o++ = (unsigned char)c;
    } else if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        o += 2;
    } else {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        o += 3;
    }
    return o;
}

static inline size_t radix_utf8_ucs2(const uint16_t *s, size_t len, unsigned char *out) {
    unsigned char *o = out;
    for (size_t i = 0; i < len; i++)
        o = radix_utf8_bmp(s[i], o);
    return (size_t)(o - out);
}

static inline size_t radix_utf8_ucs4(const uint32_t *s, size_t len, unsigned char *out) {
    unsigned char *o = out;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = s[i];
        if (c < 0x10000) {
            o = radix_utf8_bmp(c, o);
        } else {
            o[0] = (unsigned char)(0xF0 | (c >> 18));
            o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
            o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
            o[3] = (unsigned char)(0x80 | (c & 0x3F));
            o += 4;
        }
    }
    return (size_t)(o - out);
}

#endif
