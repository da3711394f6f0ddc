/*
 * farutech: the operator CLI. Parses the global options, finds the command, answers --help,
 * and runs it; the exit code says what happened (see the table in usage()).
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const fc_group_t *const fc_groups[] = {&fc_group_login, &fc_group_logout,    &fc_group_customers, &fc_group_instances,
                                       &fc_group_jobs,  &fc_group_dlq,       &fc_group_plugins,   &fc_group_keys,
                                       &fc_group_audit, &fc_group_completion};
const size_t fc_ngroups = sizeof(fc_groups) / sizeof(fc_groups[0]);

static const fc_opt_t global_opts[] = {
    {"server", 1, "server URL (else FARUTECH_URL, else the one signed in to)"},
    {"json", 0, "print JSON for scripts (problems too, on stdout)"},
    {"all", 0, "follow every page of a list"},
    {"limit", 1, "page size of a list"},
    {"cursor", 1, "start a list at this cursor"},
    {"help", 0, "show help"},
    {NULL, 0, NULL},
};

static void print_opts(FILE *f, const fc_opt_t *opts)
{
    for (const fc_opt_t *o = opts; o != NULL && o->name != NULL; o++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", o->name, o->has_value ? " VALUE" : "");
        fprintf(f, "  %-24s %s\n", left, o->help);
    }
}

static void usage(FILE *f)
{
    fputs("usage: farutech [--server URL] [--json] COMMAND [SUBCOMMAND] [ARGS] [--help]\n\n"
          "Operates a Farutech Orchestrator over its REST API.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < fc_ngroups; i++)
        fprintf(f, "  %-12s %s\n", fc_groups[i]->name, fc_groups[i]->summary);
    fputs("\nGlobal options:\n", f);
    print_opts(f, global_opts);
    fputs("\nCredentials: `farutech login` keeps a session in $XDG_CONFIG_HOME/farutech (else ~/.config/farutech),\n"
          "mode 0600, refreshed automatically; or set FARUTECH_API_KEY. FARUTECH_URL names the server.\n"
          "\nExit codes:\n"
          "  0  ok\n"
          "  1  generic or unexpected error\n"
          "  2  usage error\n"
          "  3  not signed in, or authentication failed (401/403)\n"
          "  4  not found (404/410)\n"
          "  5  conflict or validation error (400/409/422)\n"
          "  6  server or network unavailable (5xx, connection refused)\n"
          "  7  a job or rollout ended failed\n"
          "\nRun `farutech COMMAND --help` for a command's options.\n",
          f);
}

static void group_help(FILE *f, const fc_group_t *g)
{
    fprintf(f, "usage: farutech %s SUBCOMMAND [ARGS] [--help]\n\n%s.\n\nSubcommands:\n", g->name, g->summary);
    for (size_t i = 0; i < g->ncommands; i++)
        fprintf(f, "  %-10s %s\n", g->commands[i].name, g->commands[i].summary);
}

static void command_help(FILE *f, const fc_group_t *g, const fc_command_t *c)
{
    fprintf(f, "usage: farutech %s%s%s%s%s [options]\n\n%s.\n", g->name, c->name ? " " : "", c->name ? c->name : "",
            c->args ? " " : "", c->args ? c->args : "", c->summary);
    if (c->opts != NULL && c->opts[0].name != NULL) {
        fputs("\nOptions:\n", f);
        print_opts(f, c->opts);
    }
    fputs("\nGlobal options:\n", f);
    print_opts(f, global_opts);
}

static const fc_opt_t *find_opt(const fc_opt_t *opts, const char *name, size_t len)
{
    for (const fc_opt_t *o = opts; o != NULL && o->name != NULL; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

/* Parses argv[*i..] into a: options known to opts or the global ones, positionals, "--" ends options.
 * stop_at_positional: return at the first positional (to find the command). */
static int parse(int argc, char **argv, int *i, const fc_opt_t *opts, fc_args_t *a, int stop_at_positional)
{
    int options = 1;
    for (; *i < argc; (*i)++) {
        const char *t = argv[*i];
        if (options && strcmp(t, "--") == 0) {
            options = 0;
            continue;
        }
        if (options && (strcmp(t, "-h") == 0 || strcmp(t, "--help") == 0)) {
            t = "--help";
        } else if (!options || t[0] != '-' || t[1] == '\0') {
            if (stop_at_positional)
                return 0;
            if (a->npos == FC_MAX_ARGS)
                return fc_usage_error("too many arguments");
            a->pos[a->npos++] = t;
            continue;
        } else if (t[1] != '-') {
            return fc_usage_error("unknown option %s", t);
        }
        const char *name = t + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const fc_opt_t *o = find_opt(global_opts, name, len);
        if (o == NULL)
            o = find_opt(opts, name, len);
        if (o == NULL)
            return fc_usage_error("unknown option --%.*s", (int)len, name);
        const char *value = "";
        if (o->has_value && eq != NULL)
            value = eq + 1;
        else if (o->has_value && *i + 1 < argc)
            value = argv[++(*i)];
        else if (o->has_value)
            return fc_usage_error("--%s needs a value", o->name);
        else if (eq != NULL)
            return fc_usage_error("--%s takes no value", o->name);
        if (a->nopts == FC_MAX_ARGS)
            return fc_usage_error("too many options");
        a->opt_names[a->nopts] = o->name;
        a->opt_values[a->nopts++] = value;
    }
    return 0;
}

static const fc_group_t *find_group(const char *name)
{
    for (size_t i = 0; i < fc_ngroups; i++)
        if (strcmp(fc_groups[i]->name, name) == 0)
            return fc_groups[i];
    return NULL;
}

static const fc_command_t *find_command(const fc_group_t *g, const char *name)
{
    for (size_t i = 0; i < g->ncommands; i++)
        if (g->commands[i].name != NULL && strcmp(g->commands[i].name, name) == 0)
            return &g->commands[i];
    return NULL;
}

/* Fills ctx from the global options, the environment and the saved sign-in. */
static void setup(fc_ctx_t *ctx, const fc_args_t *a)
{
    ctx->json = fc_flag(a, "json");
    ctx->all = fc_flag(a, "all");
    ctx->limit = fc_arg(a, "limit");
    ctx->cursor = fc_arg(a, "cursor");
    const char *key = getenv("FARUTECH_API_KEY");
    ctx->api_key = key != NULL && key[0] != '\0' ? key : NULL;
    ctx->config_dir = fc_config_dir();
    ctx->have_creds = ctx->config_dir != NULL && fc_creds_load(ctx->config_dir, &ctx->creds) == 0;
    const char *server = fc_arg(a, "server");
    if (server == NULL || server[0] == '\0')
        server = getenv("FARUTECH_URL");
    if ((server == NULL || server[0] == '\0') && ctx->have_creds)
        server = ctx->creds.server;
    if (server != NULL && server[0] != '\0') {
        ctx->server = fc_strdup(server);
        size_t n = strlen(ctx->server);
        while (n > 0 && ctx->server[n - 1] == '/')
            ctx->server[--n] = '\0';
    }
}

int main(int argc, char **argv)
{
    fc_ctx_t ctx = {0};
    fc_args_t pre = {0}, a = {0};
    int i = 1, rc = parse(argc, argv, &i, NULL, &pre, 1);
    if (rc != 0)
        return rc;
    if (i >= argc) {
        usage(fc_flag(&pre, "help") ? stdout : stderr);
        return fc_flag(&pre, "help") ? FC_EXIT_OK : FC_EXIT_USAGE;
    }
    const fc_group_t *g = find_group(argv[i]);
    if (g == NULL)
        return fc_usage_error("unknown command %s", argv[i]);
    i++;
    const fc_command_t *c = g->ncommands == 1 && g->commands[0].name == NULL ? &g->commands[0] : NULL;
    if (c == NULL) {
        if ((rc = parse(argc, argv, &i, NULL, &pre, 1)) != 0)
            return rc;
        if (i >= argc) {
            group_help(fc_flag(&pre, "help") ? stdout : stderr, g);
            return fc_flag(&pre, "help") ? FC_EXIT_OK : FC_EXIT_USAGE;
        }
        if ((c = find_command(g, argv[i])) == NULL)
            return fc_usage_error("unknown subcommand %s %s", g->name, argv[i]);
        i++;
    }
    a = pre;
    if ((rc = parse(argc, argv, &i, c->opts, &a, 0)) != 0)
        return rc;
    if (fc_flag(&a, "help")) {
        command_help(stdout, g, c);
        return FC_EXIT_OK;
    }
    if (a.npos < c->min_pos || a.npos > c->max_pos)
        return fc_usage_error("%s%s%s takes %s", g->name, c->name ? " " : "", c->name ? c->name : "",
                              c->args ? c->args : "no arguments");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    setup(&ctx, &a);
    rc = c->run(&ctx, &a);
    free(ctx.server);
    free(ctx.config_dir);
    fc_creds_free(&ctx.creds);
    curl_global_cleanup();
    return rc;
}
