/*
 * UUIDs in their 16 bytes and their canonical text (8-4-4-4-12 hexadecimal digits).
 */
#ifndef FT_UUID_H
#define FT_UUID_H

#include <stdint.h>

/* 1 when text is a UUID (either case), its bytes in out; 0 otherwise (out zeroed). */
int ft_uuid_parse(const char *text, uint8_t out[16]);
/* The lower-case text, NUL-terminated. */
void ft_uuid_format(const uint8_t id[16], char out[37]);

#endif
