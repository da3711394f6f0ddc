/*
 * The relay benchmark's baseline: JetStream's own asynchronous publish rate on this machine, with
 * what the relay sends (a Nats-Msg-Id per message, a CloudEvent of the same size, the FT_EVENTS
 * stream the host created) and nothing of the outbox around it.
 * Usage: ft_jspub NATS_URL COUNT  -> "jetstream async publish: COUNT messages in MS ms = N msgs/s"
 */
#define _POSIX_C_SOURCE 200809L
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s NATS_URL COUNT\n", argv[0]);
        return 2;
    }
    long count = strtol(argv[2], NULL, 10);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    /* with 4,096 unacknowledged a publish waits for acknowledgements, 200 ms by default: on a busy
     * machine JetStream falls that far behind and the run would end in a timeout */
    jo.PublishAsync.StallWait = 30000;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    /* a random run tag keeps the ids unique across runs (the stream's duplicate window is 2 min) */
    srand((unsigned)time(NULL) ^ (unsigned)clock());
    unsigned tag = (unsigned)rand();
    double t0 = now_ms();
    for (long i = 0; s == NATS_OK && i < count; i++) {
        char id[64], data[320];
        snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012lx", tag, i);
        int len = snprintf(data, sizeof(data),
                           "{\"id\": \"%s\", \"data\": {\"n\": %ld}, \"time\": \"2026-12-07T22:00:00.000000+00:00\", "
                           "\"type\": \"dev.farutech.bench.v1\", \"source\": \"/farutech/bench\", \"subject\": \"bench/%ld\", "
                           "\"specversion\": \"1.0\"}",
                           id, i, i);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        s = js_PublishAsync(js, "ft.events.bench.v1", data, len, &po);
    }
    if (s == NATS_OK) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 30000;
        s = js_PublishAsyncComplete(js, &po);
    }
    double t1 = now_ms();
    if (s != NATS_OK) {
        fprintf(stderr, "jspub: %s\n", natsStatus_GetText(s));
        return 1;
    }
    printf("jetstream async publish: %ld messages in %.0f ms = %.0f msgs/s\n", count, t1 - t0, (double)count * 1000.0 / (t1 - t0));
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
