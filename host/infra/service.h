/*
 * The host's word to the service manager (systemd's notify protocol): ready, reloading,
 * stopping, and a status line. Every call does nothing when NOTIFY_SOCKET is unset.
 */
#ifndef FT_SERVICE_H
#define FT_SERVICE_H

/* Main thread only. READY=1 once: later calls only update the status line. */
void ft_service_ready(void);
/* A status line for `systemctl status` (printf-style, truncated at 256 bytes); sent only when
 * it differs from the last one. */
void ft_service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Around a plugin reload: RELOADING=1, then READY=1. Nothing before the host was ready. */
void ft_service_reloading(void);
void ft_service_reloaded(void);
/* STOPPING=1, as the drain starts. */
void ft_service_stopping(void);

#endif
