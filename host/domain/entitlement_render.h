/*
 * What clients read of a resolved record: the REST document and the OpenFeature (OFREP)
 * evaluations. Rendered on demand from the record, so a record holds no text of its own.
 */
#ifndef FT_ENTITLEMENT_RENDER_H
#define FT_ENTITLEMENT_RENDER_H

#include <stddef.h>

#include "domain/entitlements.h"

/* The REST representation, NUL-terminated, *len its length; the caller frees it with free(). */
char *ft_entitlements_json(const ft_entitlements_t *e, size_t *len);

/* One OFREP evaluation of f (a feature of e), into out of at least FT_ENT_OFREP_FLAG_MAX bytes;
 * returns the length written (no NUL). */
#define FT_ENT_OFREP_FLAG_MAX 512
size_t ft_entitlements_ofrep_flag(const ft_entitlements_t *e, const ft_ent_feature_t *f, char *out);

/* The OFREP bulk body, NUL-terminated, *len its length; the caller frees it with free(). */
char *ft_entitlements_ofrep_bulk(const ft_entitlements_t *e, size_t *len);

/* For the resolver: the parts a base or a difference keeps, rendered as the REST document has
 * them (one feature's "code":{...}; a base's "product":...,"instance_status":"..."). The caller
 * frees them with free(). */
char *ft_ent_render_fragment(const ft_ent_feature_t *f, size_t *len);
char *ft_ent_render_head(const ft_ent_base_t *b, size_t *len);

#endif
