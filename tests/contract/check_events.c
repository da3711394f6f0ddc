/*
 * Contract check for events: reads CloudEvents (one JSON object per line) on stdin and
 * validates each against docs/events/<name>.schema.json, or envelope.schema.json for a
 * product's own events. Prints every violation and a summary; exits 1 if any event fails, if
 * a control-plane event type has no schema, or if no event was read.
 * Usage: check_events <schema dir> < events.jsonl
 */
#include "domain/jsonschema.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const core_prefixes[] = {"customer.", "instance.", "job.", "subscription.", "dlq.", NULL};

static ft_schema_t *load(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.schema.json", dir, name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    json_t *doc = json_loadf(fp, 0, NULL);
    fclose(fp);
    ft_error_t err = {0};
    ft_schema_t *s = doc != NULL ? ft_schema_from_json(doc, &err) : NULL;
    if (doc != NULL && s == NULL)
        fprintf(stderr, "%s: %s\n", path, err.message);
    json_decref(doc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: check_events <schema dir> < events.jsonl\n");
        return 2;
    }
    ft_schema_t *envelope = load(argv[1], "envelope");
    if (envelope == NULL) {
        fprintf(stderr, "no usable envelope.schema.json in %s\n", argv[1]);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    int events = 0, bad = 0;
    json_t *seen = json_object();
    while (getline(&line, &cap, stdin) != -1) {
        if (line[0] == '\n' || line[0] == '\0')
            continue;
        json_error_t jerr;
        json_t *ev = json_loads(line, 0, &jerr);
        events++;
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (ev == NULL || type == NULL || strncmp(type, "dev.farutech.", 13) != 0) {
            printf("event %d: not a farutech CloudEvent: %.200s", events, line);
            bad++;
            json_decref(ev);
            continue;
        }
        const char *name = type + 13;
        int core = 0;
        for (int i = 0; core_prefixes[i] != NULL; i++)
            core |= strncmp(name, core_prefixes[i], strlen(core_prefixes[i])) == 0;
        ft_schema_t *s = load(argv[1], name);
        if (s == NULL && core) {
            printf("%s: a control-plane event type without a schema\n", type);
            bad++;
        }
        json_t *errors = NULL;
        const ft_schema_t *use = s != NULL ? s : envelope;
        if (ft_schema_validate(use, ev, 0, &errors) != FT_OK) {
            char *e = json_dumps(errors, JSON_COMPACT);
            printf("%s %s: %s\n", type, json_string_value(json_object_get(ev, "id")), e);
            free(e);
            bad++;
        }
        json_object_set_new(seen, type, json_true());
        json_decref(errors);
        ft_schema_free(s);
        json_decref(ev);
    }
    printf("%d events of %zu types checked, %d invalid\n", events, json_object_size(seen), bad);
    const char *t;
    json_t *v;
    json_object_foreach(seen, t, v) printf("  %s\n", t);
    free(line);
    json_decref(seen);
    ft_schema_free(envelope);
    return bad == 0 && events > 0 ? 0 : 1;
}
