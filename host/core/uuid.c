/*
 * UUIDs between their text and their 16 bytes, without allocation: the entitlement cache keys
 * and records keep the bytes.
 */
#include "core/uuid.h"

#include <string.h>

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int ft_uuid_parse(const char *text, uint8_t out[16])
{
    memset(out, 0, 16);
    if (text == NULL)
        return 0;
    for (int i = 0, b = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return 0;
            continue;
        }
        int h = hex(text[i]), l = h >= 0 ? hex(text[++i]) : -1;
        if (l < 0)
            return 0;
        out[b++] = (uint8_t)(h << 4 | l);
    }
    return text[36] == '\0';
}

void ft_uuid_format(const uint8_t id[16], char out[37])
{
    static const char digits[] = "0123456789abcdef";
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = digits[id[i] >> 4];
        *o++ = digits[id[i] & 15];
    }
    *o = '\0';
}
