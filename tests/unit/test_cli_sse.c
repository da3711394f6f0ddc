/*
 * The CLI's event-stream parser (cli/sse.c): events split anywhere between reads, CRLF lines,
 * comments, multi-line data, the last id, and stopping.
 */
#include "cli.h"
#include "ft_test.h"

#include <stdlib.h>
#include <string.h>

typedef struct seen {
    int n, stop_after;
    char events[8][16], ids[8][16], data[8][64];
} seen_t;

static int record(const char *event, const char *id, const char *data, void *arg)
{
    seen_t *s = arg;
    if (s->n < 8) {
        snprintf(s->events[s->n], sizeof(s->events[0]), "%s", event);
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id != NULL ? id : "");
        snprintf(s->data[s->n], sizeof(s->data[0]), "%s", data);
    }
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

static const char stream[] = ": keepalive\n"
                             "id: 1\nevent: job\ndata: {\"status\":\"queued\"}\n\n"
                             ": keepalive\r\n"
                             "id: 2\r\nevent: job\r\ndata: {\"status\":\r\ndata: \"running\"}\r\n\r\n"
                             "event: job\ndata:{\"status\":\"succeeded\"}\n\n";

static void check_three(const seen_t *s)
{
    CHECK_INT(3, s->n);
    CHECK_STR("job", s->events[0]);
    CHECK_STR("1", s->ids[0]);
    CHECK_STR("{\"status\":\"queued\"}", s->data[0]);
    CHECK_STR("2", s->ids[1]);
    CHECK_STR("{\"status\":\n\"running\"}", s->data[1]);
    CHECK_STR("2", s->ids[2]); /* the last id stays until another is sent */
    CHECK_STR("{\"status\":\"succeeded\"}", s->data[2]);
}

TEST(events_arriving_whole_are_dispatched_at_their_blank_line)
{
    seen_t s = {0};
    fc_sse_parser_t *p = fc_sse_parser_new(record, &s);
    CHECK_INT(0, fc_sse_feed(p, stream, strlen(stream)));
    check_three(&s);
    fc_sse_parser_free(p);
}

TEST(events_split_at_every_byte_are_the_same_events)
{
    seen_t s = {0};
    fc_sse_parser_t *p = fc_sse_parser_new(record, &s);
    for (size_t i = 0; i < strlen(stream); i++)
        fc_sse_feed(p, stream + i, 1);
    check_three(&s);
    fc_sse_parser_free(p);
}

TEST(an_event_without_data_and_a_comment_dispatch_nothing)
{
    seen_t s = {0};
    fc_sse_parser_t *p = fc_sse_parser_new(record, &s);
    const char text[] = ": keepalive\n\nid: 7\nevent: job\n\n";
    fc_sse_feed(p, text, strlen(text));
    CHECK_INT(0, s.n);
    fc_sse_parser_free(p);
}

TEST(an_unterminated_event_waits_for_its_blank_line)
{
    seen_t s = {0};
    fc_sse_parser_t *p = fc_sse_parser_new(record, &s);
    fc_sse_feed(p, "data: x\n", 8);
    CHECK_INT(0, s.n);
    fc_sse_feed(p, "\n", 1);
    CHECK_INT(1, s.n);
    CHECK_STR("message", s.events[0]);
    fc_sse_parser_free(p);
}

TEST(the_callback_stops_the_stream)
{
    seen_t s = {.stop_after = 2};
    fc_sse_parser_t *p = fc_sse_parser_new(record, &s);
    CHECK_INT(1, fc_sse_feed(p, stream, strlen(stream)));
    CHECK_INT(2, s.n);
    CHECK_INT(1, fc_sse_feed(p, "", 0));
    fc_sse_parser_free(p);
}

RUN_TESTS(TEST_ENTRY(events_arriving_whole_are_dispatched_at_their_blank_line),
          TEST_ENTRY(events_split_at_every_byte_are_the_same_events),
          TEST_ENTRY(an_event_without_data_and_a_comment_dispatch_nothing),
          TEST_ENTRY(an_unterminated_event_waits_for_its_blank_line), TEST_ENTRY(the_callback_stops_the_stream))
