/*
 * libcurl-level pieces shared by the request and event-stream readers.
 */
#ifndef FC_HTTP_H
#define FC_HTTP_H

#include "cli.h"

#include <curl/curl.h>

/* The Authorization header for the next request (caller frees *header), refreshing a signed-in
 * session when its access token expired or force_refresh; 0 or an exit code (message printed). */
int fc_auth_header(fc_ctx_t *ctx, int force_refresh, char **header);
/* Prints a transport failure and returns its exit code. */
int fc_curl_exit(CURLcode code, const char *url, const char *detail);
void fc_curl_setup(CURL *curl, const char *url, const char *method, struct curl_slist *headers, char *errbuf);
/* Stores a sign-in or refresh answer's tokens in ctx->creds (not saved). */
void fc_creds_take(fc_ctx_t *ctx, const json_t *answer);

#endif
