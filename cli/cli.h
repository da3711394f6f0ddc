/*
 * The operator CLI's shared pieces: the run context, exit codes, argument parsing, the HTTP
 * client with its sign-in, tables, and the command tables each group file exports.
 */
#ifndef FC_CLI_H
#define FC_CLI_H

#include <jansson.h>
#include <stddef.h>

/* Exit codes: what happened, for scripts. */
enum {
    FC_EXIT_OK = 0,
    FC_EXIT_ERROR = 1,       /* generic or unexpected */
    FC_EXIT_USAGE = 2,       /* the command line is wrong */
    FC_EXIT_AUTH = 3,        /* not signed in, or the credential was refused (401/403) */
    FC_EXIT_NOT_FOUND = 4,   /* 404/410 */
    FC_EXIT_INVALID = 5,     /* the server refused the request: 400/409/422 */
    FC_EXIT_UNAVAILABLE = 6, /* 5xx, or the server cannot be reached */
    FC_EXIT_FAILED = 7,      /* a job or rollout ended failed */
};

#define FC_MAX_ARGS 64

/* An option a command accepts: "--name VALUE" (or "--name=VALUE") when has_value, else a flag. */
typedef struct fc_opt {
    const char *name;
    int has_value;
    const char *help;
} fc_opt_t;

/* A parsed command line: positionals and options in their order (an option may repeat). */
typedef struct fc_args {
    int npos;
    const char *pos[FC_MAX_ARGS];
    int nopts;
    const char *opt_names[FC_MAX_ARGS];
    const char *opt_values[FC_MAX_ARGS]; /* "" for a flag */
} fc_args_t;

/* Saved sign-in (credentials.json in the config dir). Strings are owned by the struct. */
typedef struct fc_creds {
    char *server, *email, *access_token, *refresh_token;
    long long access_expires_at; /* unix seconds, 0 when unknown */
} fc_creds_t;

typedef struct fc_ctx fc_ctx_t;

struct fc_ctx {
    char *server;        /* resolved base URL, owned; NULL when none */
    int json;            /* --json */
    int all;             /* --all */
    const char *limit;   /* --limit */
    const char *cursor;  /* --cursor */
    const char *api_key; /* FARUTECH_API_KEY */
    char *config_dir;    /* owned */
    fc_creds_t creds;
    int have_creds;
};

typedef struct fc_command {
    const char *name; /* NULL: the group runs this command itself (login, logout) */
    const char *args; /* positional synopsis, e.g. "ID" */
    const char *summary;
    const fc_opt_t *opts; /* terminated by {NULL} */
    int min_pos, max_pos;
    int (*run)(fc_ctx_t *ctx, const fc_args_t *a);
} fc_command_t;

typedef struct fc_group {
    const char *name;
    const char *summary;
    const fc_command_t *commands;
    size_t ncommands;
} fc_group_t;

/* Every command group, in the order --help lists them. */
extern const fc_group_t *const fc_groups[];
extern const size_t fc_ngroups;
extern const fc_group_t fc_group_login, fc_group_logout, fc_group_customers, fc_group_instances, fc_group_jobs, fc_group_dlq,
    fc_group_plugins, fc_group_keys, fc_group_audit, fc_group_completion;

/* args.c */
const char *fc_arg(const fc_args_t *a, const char *name); /* the last value given, or NULL */
int fc_flag(const fc_args_t *a, const char *name);
int fc_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* prints, returns FC_EXIT_USAGE */

/* config.c */
char *fc_config_dir(void);                               /* caller frees; NULL when neither XDG_CONFIG_HOME nor HOME is set */
int fc_creds_load(const char *dir, fc_creds_t *out);     /* 0 loaded, -1 none or unreadable */
int fc_creds_save(const char *dir, const fc_creds_t *c); /* 0 or -1 (message on stderr); mode 0600, atomic */
int fc_creds_remove(const char *dir);
void fc_creds_free(fc_creds_t *c);

/* http.c */
typedef struct fc_response {
    long status;
    json_t *body; /* parsed JSON body, NULL when none or not JSON; owned */
    char *raw;    /* the body as received, owned */
    int problem;  /* Content-Type application/problem+json */
} fc_response_t;

/* Sends one request with the credential (refreshing a signed-in session when its access token
 * expired, then retrying once). Returns 0 when an answer came (any status), else an exit code
 * with a message printed. body may be NULL; it is not consumed. */
int fc_http(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, fc_response_t *resp);
/* fc_http, then: a 2xx answers 0 with *out the body (caller decrefs; may be NULL); anything else is
 * reported (fc_report) and its exit code returned. */
int fc_call(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, json_t **out);
/* Prints a failed answer (problem+json on stderr, or raw to stdout with --json); returns its exit code. */
int fc_report(const fc_ctx_t *ctx, const fc_response_t *resp);
int fc_exit_for_status(long status);
void fc_response_free(fc_response_t *resp);
/* Unauthenticated POST used by login and logout; same contract as fc_http. */
int fc_http_public(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, fc_response_t *resp);
/* Appends "?name=value" or "&name=value" (escaped) to *path (malloc'd, reallocated) when value is set. */
void fc_query_add(char **path, const char *name, const char *value);
char *fc_strdup(const char *s);
char *fc_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* caller frees */
const char *fc_problem_type(const json_t *problem);                           /* the last segment of its type, or "" */

/* table.c */
typedef struct fc_column {
    const char *header;
    const char *path; /* member, or "a.b" for a nested one */
} fc_column_t;
void fc_table_print(const json_t *rows, const fc_column_t *cols, size_t ncols);
void fc_object_print(const json_t *obj);
void fc_json_print(const json_t *v);
char *fc_value_text(const json_t *v); /* caller frees; "-" for null or missing */
const json_t *fc_get_path(const json_t *obj, const char *path);
/* GET a list route and print it (following next_cursor with --all, else one page and a hint). */
int fc_list(fc_ctx_t *ctx, const char *path, const fc_column_t *cols, size_t ncols);
/* GET collection/id and print it. */
int fc_show(fc_ctx_t *ctx, const char *collection, const char *id);
/* Prints a write's answer (JSON with --json, else `message`), returns 0. */
int fc_done(const fc_ctx_t *ctx, const json_t *answer, const char *message);

/* Sends a write and prints its answer (JSON with --json, else message); 0 or the exit code. */
int fc_write(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, const char *message);

/* fc_write without a body, path and message made from formats with one %s for id. */
int fc_act(fc_ctx_t *ctx, const char *method, const char *path_fmt, const char *id, const char *message_fmt);

/* sse.c */
/* Called with each event; returns nonzero to stop reading. */
typedef int (*fc_sse_cb)(const char *event, const char *id, const char *data, void *arg);
/* The event-stream parser: bytes in, in pieces of any size; each complete event to cb. */
typedef struct fc_sse_parser fc_sse_parser_t;
fc_sse_parser_t *fc_sse_parser_new(fc_sse_cb cb, void *arg); /* free with fc_sse_parser_free */
/* Returns nonzero once the callback asked to stop (later bytes are ignored; feeding none asks). */
int fc_sse_feed(fc_sse_parser_t *p, const char *bytes, size_t len);
void fc_sse_parser_free(fc_sse_parser_t *p);
/* Reads an event stream from url. Returns 0 when the stream ended or the callback stopped it,
 * 1 when the server answered something other than text/event-stream (its status in *status),
 * or an exit code (message printed) when the request failed. */
int fc_sse_read(fc_ctx_t *ctx, const char *path, const char *last_event_id, fc_sse_cb cb, void *arg, long *status);

#endif
