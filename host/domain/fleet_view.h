/*
 * The fleet's skew: which products are not served with one SHA-256 by every live host, or not
 * with the current release's. Plain JSON in, JSON out; no SQL, no HTTP.
 */
#ifndef FT_FLEET_VIEW_H
#define FT_FLEET_VIEW_H

#include <jansson.h>

/*
 * hosts: GET /api/v1/hosts "hosts" (only "live" ones count); releases: current releases
 * [{"product","sha256",...}] (both borrowed). Returns a new array, ordered by product, of
 * {"product","release_sha256" (null: no release),"hosts_by_sha256":{"<sha256>|none":[host ids]}}
 * for each product whose live hosts serve more than one SHA-256 (a host that serves no
 * generation of it counts as "none") or one that differs from its release.
 */
json_t *ft_fleet_skew(json_t *hosts, json_t *releases);

#endif
