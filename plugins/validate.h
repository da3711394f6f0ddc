/*
 * Validation of a product's declarations before it may serve: codes well formed and unique,
 * every reference resolvable, no dependency cycles, plans consistent with their features.
 */
#ifndef FT_VALIDATE_H
#define FT_VALIDATE_H

#include "core/error.h"
#include "plugins/product.h"

/* FT_OK, or FT_EINVAL with err naming the plugin, the table and the entry of the first
 * problems found ("vet: features[3] sms_reminders: requires unknown feature x"). */
int ft_product_validate(const ft_product_t *p, const char *plugin_name, ft_error_t *err);

#endif
