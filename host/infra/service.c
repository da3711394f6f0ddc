/*
 * sd_notify messages for a Type=notify unit. libsystemd checks NOTIFY_SOCKET itself, so
 * outside systemd (tests, run.sh, containers) each call returns at once.
 */
#include "infra/service.h"

#include "infra/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static int ready;
static char last_status[256];

static void notify(const char *msg)
{
    int rc = sd_notify(0, msg);
    if (rc < 0)
        ft_log(FT_LOG_WARN, NULL, "service manager: could not send %s: %s", msg, strerror(-rc));
}

void ft_service_status(const char *fmt, ...)
{
    char status[sizeof(last_status)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(status, sizeof(status), fmt, ap);
    va_end(ap);
    if (strcmp(status, last_status) == 0)
        return;
    memcpy(last_status, status, sizeof(status));
    char msg[sizeof(status) + 8];
    snprintf(msg, sizeof(msg), "STATUS=%s", status);
    notify(msg);
}

void ft_service_ready(void)
{
    if (ready)
        return;
    ready = 1;
    snprintf(last_status, sizeof(last_status), "ready");
    notify("READY=1\nSTATUS=ready");
}

void ft_service_reloading(void)
{
    if (ready)
        notify("RELOADING=1\nSTATUS=reloading plugins");
}

void ft_service_reloaded(void)
{
    if (ready)
        notify("READY=1\nSTATUS=ready");
}

void ft_service_stopping(void)
{
    last_status[0] = '\0';
    notify("STOPPING=1\nSTATUS=draining");
}
