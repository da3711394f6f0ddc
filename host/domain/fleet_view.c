/*
 * Skew: group the live hosts by the SHA-256 they serve for each product and compare the groups
 * with the product's current release.
 */
#include "domain/fleet_view.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

static const char *release_sha(json_t *releases, const char *product)
{
    size_t i;
    json_t *r;
    json_array_foreach(releases, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "product")), product) == 0)
            return json_string_value(json_object_get(r, "sha256"));
    }
    return NULL;
}

/* The SHA-256 a host serves for product, or "none". */
static const char *served_sha(json_t *host, const char *product)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(host, "plugins"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "product")), product) != 0)
            continue;
        const char *sha = json_string_value(json_object_get(p, "sha256"));
        return sha != NULL && !json_is_null(json_object_get(p, "generation")) ? sha : "none";
    }
    return "none";
}

static int is_live(json_t *host)
{
    const char *status = json_string_value(json_object_get(host, "status"));
    return status != NULL && strcmp(status, "live") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every product a release or a live host names, sorted and unique (borrowed strings). */
static size_t products_of(json_t *hosts, json_t *releases, const char ***out)
{
    size_t n = json_array_size(releases), k = 0, i, j;
    json_t *h, *p;
    json_array_foreach(hosts, i, h) n += json_array_size(json_object_get(h, "plugins"));
    const char **all = ft_mem_calloc(n + 1, sizeof(*all));
    json_array_foreach(releases, i, p) all[k++] = json_string_value(json_object_get(p, "product"));
    json_array_foreach(hosts, i, h)
    {
        if (!is_live(h))
            continue;
        json_array_foreach(json_object_get(h, "plugins"), j, p) all[k++] = json_string_value(json_object_get(p, "product"));
    }
    if (k > 1)
        qsort(all, k, sizeof(*all), cmp_str);
    size_t u = 0;
    for (i = 0; i < k; i++)
        if (u == 0 || strcmp(all[u - 1], all[i]) != 0)
            all[u++] = all[i];
    *out = all;
    return u;
}

json_t *ft_fleet_skew(json_t *hosts, json_t *releases)
{
    json_t *skew = json_array();
    const char **products;
    size_t n = products_of(hosts, releases, &products);
    for (size_t k = 0; k < n; k++) {
        const char *release = release_sha(releases, products[k]);
        json_t *groups = json_object();
        size_t i;
        json_t *h;
        json_array_foreach(hosts, i, h)
        {
            if (!is_live(h))
                continue;
            const char *sha = served_sha(h, products[k]);
            json_t *ids = json_object_get(groups, sha);
            if (ids == NULL)
                json_object_set_new(groups, sha, ids = json_array());
            json_array_append(ids, json_object_get(h, "id"));
        }
        size_t ngroups = json_object_size(groups);
        int skewed = ngroups > 1 || (ngroups == 1 && release != NULL && json_object_get(groups, release) == NULL);
        if (skewed)
            json_array_append_new(skew, json_pack("{s:s, s:o, s:O}", "product", products[k], "release_sha256",
                                                  release != NULL ? json_string(release) : json_null(), "hosts_by_sha256", groups));
        json_decref(groups);
    }
    free(products);
    return skew;
}
