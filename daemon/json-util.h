#pragma once

/* json-c objects under _cleanup_ (cleanup.h). */

#include <json-c/json.h>

#include "cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct json_tokener *, json_tokener_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put)
