/* Shared includes and helpers of the C test programs in hardening/c. */
#ifndef SENTIMENT_TESTLIB_H
#define SENTIMENT_TESTLIB_H

#include <inttypes.h>
#include <json-c/json.h>
#include <sentiment.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* o[key] if it exists and has `type`, else NULL (borrowed). */
static inline json_object *member(json_object *o, const char *key, json_type type)
{
    json_object *value;
    if (!o || !json_object_object_get_ex(o, key, &value) || !json_object_is_type(value, type))
        return NULL;
    return value;
}

#endif
