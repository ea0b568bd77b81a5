/*
 * np_poll_flush: bytes that np_write accepted before np_close reach the
 * peer before a program that flushes exits, on both backends; nothing
 * else the poller owes its caller (events, wake-ups) is lost meanwhile.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "helpers.h"

#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define TOK_X 4
#define WAIT_MS 10000
#define CHUNK 65536

/* Two pollers, as two programs would have: the server's and the
 * client's.  The tests drive both from one thread. */
static np_poll *sp_, *cp_;
static char name_[300];

static void setup(void) {
  ck_assert_int_eq(np_poll_new(&sp_), 0);
  ck_assert_int_eq(np_poll_new(&cp_), 0);
  npt_pipe_name(name_, sizeof(name_), "flush");
}

static void teardown(void) {
  np_poll_free(cp_);
  np_poll_free(sp_);
}

static unsigned char pattern(size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u;

  return (unsigned char)(x >> 13 ^ x >> 24);
}

/* Accepts the client waiting on l (registered in sp_ with token
 * l_token). */
static np_stream *accept_on(np_listener *l, uint64_t l_token, uint64_t token,
                            uint32_t interest) {
  np_stream *s = NULL;
  int err;

  while ((err = np_accept(l, token, interest, &s)) == NP_EAGAIN)
    ck_assert(npt_wait_token(sp_, l_token, NP_READABLE, WAIT_MS) != 0);
  ck_assert_int_eq(err, 0);
  return s;
}

/* A listener in sp_, a client in cp_ and the server's end of it. */
static void open_pair(uint32_t flags, np_listener **l, np_stream **c,
                      np_stream **s) {
  np_options o;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  ck_assert_int_eq(np_listen(sp_, name_, &o, TOK_L, l), 0);
  ck_assert_int_eq(np_connect(cp_, name_, &o, TOK_C, NP_WRITABLE, c), 0);
  *s = accept_on(*l, TOK_L, TOK_S, NP_READABLE);
}

/* Checks n received bytes against the pattern from offset off. */
static void check_pattern(const unsigned char *buf, size_t n, size_t off) {
  size_t i;

  for (i = 0; i < n; i++)
    if (buf[i] != pattern(off + i))
      ck_abort_msg("byte %zu differs", off + i);
}

/* Writes the pattern until np_write refuses more; returns the count. */
static size_t write_until_full(np_stream *c) {
  static unsigned char buf[CHUNK];
  size_t total = 0;
  ptrdiff_t r;
  size_t i;

  for (;;) {
    for (i = 0; i < CHUNK; i++)
      buf[i] = pattern(total + i);
    r = np_write(c, buf, CHUNK);
    if (r == NP_EAGAIN)
      return total;
    ck_assert_int_gt(r, 0);
    total += (size_t)r;
  }
}

/* Reads what is there now and checks it against the pattern; returns the
 * bytes read, or sets *eof at the end. */
static size_t read_available(np_stream *s, size_t off, int *eof) {
  static unsigned char buf[CHUNK];
  size_t got = 0;
  ptrdiff_t r;

  while ((r = np_read(s, buf, sizeof(buf))) > 0) {
    check_pattern(buf, (size_t)r, off + got);
    got += (size_t)r;
  }
  if (r == NP_EOF)
    *eof = 1;
  else
    ck_assert_int_eq(r, NP_EAGAIN);
  return got;
}

START_TEST(test_flush_nothing_pending) {
  ck_assert_int_eq(np_poll_flush(cp_, 0), 0);
  ck_assert_int_eq(np_poll_flush(cp_, -1), 0);
  ck_assert_int_eq(np_poll_flush(NULL, 0), NP_EINVAL);
}
END_TEST

/* The closed client's bytes wait for the reader: flush reports them
 * pending, then delivers every one as the server reads, then NP_EOF. */
static void closed_stream_delivers(uint32_t flags) {
  np_listener *l;
  np_stream *c, *s;
  size_t sent, got = 0;
  int eof = 0, err = NP_ETIMEDOUT;
  uint64_t start = npt_now_ms();

  open_pair(flags, &l, &c, &s);
  sent = write_until_full(c);
  ck_assert_uint_gt(sent, 0);
  np_close(c);
  ck_assert_int_eq(np_poll_flush(cp_, 0), NP_ETIMEDOUT);
  ck_assert_int_eq(np_poll_flush(cp_, 20), NP_ETIMEDOUT);
  while (!eof) {
    ck_assert_msg(npt_now_ms() - start < WAIT_MS, "stalled at %zu of %zu", got,
                  sent);
    if (err != 0)
      err = np_poll_flush(cp_, 0);
    ck_assert(err == 0 || err == NP_ETIMEDOUT);
    got += read_available(s, got, &eof);
    if (!eof)
      npt_wait_token(sp_, TOK_S, NP_READABLE, 10);
  }
  ck_assert_uint_eq(got, sent);
  ck_assert_int_eq(np_poll_flush(cp_, 0), 0);
  np_close(s);
  np_listener_close(l);
}

START_TEST(test_flush_closed_stream_delivers_bytes) {
  closed_stream_delivers(0);
}
END_TEST

START_TEST(test_flush_closed_stream_delivers_messages) {
  closed_stream_delivers(NP_OPT_MESSAGE);
}
END_TEST

/* A peer that goes away ends the wait: there is no one to deliver to. */
START_TEST(test_flush_peer_gone_ends_wait) {
  np_listener *l;
  np_stream *c, *s;
  uint64_t start;

  open_pair(0, &l, &c, &s);
  ck_assert_uint_gt(write_until_full(c), 0);
  np_close(c);
  ck_assert_int_eq(np_poll_flush(cp_, 0), NP_ETIMEDOUT);
  np_close(s);
  np_listener_close(l);
  start = npt_now_ms();
  ck_assert_int_eq(np_poll_flush(cp_, WAIT_MS), 0);
  ck_assert_uint_lt(npt_now_ms() - start, WAIT_MS);
}
END_TEST

/* Flushes the closed client c while the server reads its end s. */
static void flush_while_reading(np_stream *s, size_t sent) {
  size_t got = 0;
  int eof = 0;

  while (np_poll_flush(cp_, 10) != 0) {
    got += read_available(s, got, &eof);
    ck_assert(!eof);
    /* Windows: the server's read completions come through its port. */
    npt_wait_token(sp_, TOK_S, NP_READABLE, 1);
  }
  while (!eof) {
    got += read_available(s, got, &eof);
    if (!eof)
      npt_wait_token(sp_, TOK_S, NP_READABLE, 10);
  }
  ck_assert_uint_eq(got, sent);
}

/* A wake-up that the flush swallowed from the OS is still owed to the
 * next wait. */
START_TEST(test_flush_keeps_wake) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[8];
  size_t sent;
  uint64_t start;

  open_pair(0, &l, &c, &s);
  sent = write_until_full(c);
  np_close(c);
  ck_assert_int_eq(np_poll_wake(cp_), 0);
  flush_while_reading(s, sent);
  start = npt_now_ms();
  ck_assert_int_eq(np_poll_wait(cp_, ev, 8, WAIT_MS), 0);
  ck_assert_uint_lt(npt_now_ms() - start, WAIT_MS / 2);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* An edge of a live stream that arrives during a flush is still reported
 * by the next wait. */
START_TEST(test_flush_keeps_edge) {
  np_listener *l, *l2;
  np_stream *c, *s, *x, *xs;
  char name2[300], byte;
  size_t sent;

  open_pair(0, &l, &c, &s);
  npt_pipe_name(name2, sizeof(name2), "flush-live");
  ck_assert_int_eq(np_listen(sp_, name2, NULL, TOK_X, &l2), 0);
  ck_assert_int_eq(
      np_connect(cp_, name2, NULL, TOK_X, NP_READABLE | NP_EDGE, &x), 0);
  xs = accept_on(l2, TOK_X, TOK_X, 0);
  /* x has no data yet: the edge below can only come from the write. */
  ck_assert_int_eq(np_read(x, &byte, 1), NP_EAGAIN);

  sent = write_until_full(c);
  np_close(c);
  ck_assert_int_eq(np_write(xs, "ping", 4), 4);
  flush_while_reading(s, sent);
  ck_assert_msg(npt_wait_token(cp_, TOK_X, NP_READABLE, WAIT_MS) != 0,
                "the readable edge that came during the flush was lost");
  np_close(x);
  np_close(xs);
  np_close(s);
  np_listener_close(l2);
  np_listener_close(l);
}
END_TEST

/* np_close while the peer is itself blocked writing back to us (an echo
 * server whose echo we never read): the closed end must go on taking
 * and dropping the peer's bytes, or neither end ever moves again.  The
 * server must then get every byte we wrote, and the end. */
START_TEST(test_close_unblocks_a_peer_writing_back) {
  enum { RING = 65536 };
  static unsigned char ring[RING];
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  size_t sent, got = 0, held = 0;
  int eof = 0;
  uint64_t start;

  memset(&o, 0, sizeof(o));
  o.write_limit = 16384;
  ck_assert_int_eq(np_listen(sp_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(cp_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_on(l, TOK_L, TOK_S, NP_READABLE);
  sent = write_until_full(c);
  np_close(c);
  /* A bounded echo: the server stops reading while its ring is full and
   * its echo cannot go out. */
  start = npt_now_ms();
  while (!eof) {
    int moved = 0;
    ptrdiff_t r;

    ck_assert_msg(npt_now_ms() - start < WAIT_MS,
                  "wedged: the server got %zu of %zu bytes, holds %zu", got,
                  sent, held);
    (void)np_poll_flush(cp_, 0);
    if (held > 0) {
      r = np_write(s, ring, held);
      if (r > 0) {
        memmove(ring, ring + r, held - (size_t)r);
        held -= (size_t)r;
        moved = 1;
      } else if (r != NP_EAGAIN) {
        ck_assert_int_eq(r, NP_EPIPE); /* the client is gone: drop it */
        held = 0;
      }
    }
    if (held < RING) {
      r = np_read(s, ring + held, RING - held);
      if (r > 0) {
        check_pattern(ring + held, (size_t)r, got);
        got += (size_t)r;
        held += (size_t)r;
        moved = 1;
      } else if (r == NP_EOF) {
        eof = 1;
      } else {
        ck_assert_int_eq(r, NP_EAGAIN);
      }
    }
    if (!moved && !eof)
      npt_wait_token(sp_, TOK_S, NP_READABLE, 10);
  }
  ck_assert_uint_eq(got, sent);
  ck_assert_int_eq(np_poll_flush(cp_, WAIT_MS), 0);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* ---- bounded close ----------------------------------------------------- */

/* A listener in sp_ and a client in cp_ whose options are o. */
static void open_pair_opts(const np_options *o, np_listener **l,
                           np_stream **c, np_stream **s) {
  ck_assert_int_eq(np_listen(sp_, name_, NULL, TOK_L, l), 0);
  ck_assert_int_eq(np_connect(cp_, name_, o, TOK_C, NP_WRITABLE, c), 0);
  *s = accept_on(*l, TOK_L, TOK_S, NP_READABLE);
}

/* Reads s until its end, checking the pattern; returns the byte count. */
static size_t read_to_end(np_stream *s) {
  uint64_t start = npt_now_ms();
  size_t got = 0;
  int eof = 0;

  while (!eof) {
    ck_assert_msg(npt_now_ms() - start < WAIT_MS, "no end after %zu", got);
    got += read_available(s, got, &eof);
    if (!eof)
      npt_wait_token(sp_, TOK_S, NP_READABLE, 10);
  }
  return got;
}

/* A closed stream whose peer never reads gives up at its linger limit,
 * not before: the flush ends, and the peer finds a prefix of the bytes,
 * then the end. */
START_TEST(test_close_linger_limit_ends_delivery) {
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t sent;
  uint64_t start;

  memset(&o, 0, sizeof(o));
  o.linger_ms = 300;
  open_pair_opts(&o, &l, &c, &s);
  sent = write_until_full(c);
  start = npt_now_ms();
  np_close(c);
  ck_assert_int_eq(np_poll_flush(cp_, 100), NP_ETIMEDOUT);
  ck_assert_int_eq(np_poll_flush(cp_, WAIT_MS), 0);
  ck_assert_uint_ge(npt_now_ms() - start, 300);
  ck_assert_uint_lt(read_to_end(s), sent);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* np_abort drops what was not sent at once: nothing is left to flush. */
START_TEST(test_abort_drops_unsent_bytes) {
  np_listener *l;
  np_stream *c, *s;
  size_t sent;

  open_pair_opts(NULL, &l, &c, &s);
  sent = write_until_full(c);
  np_abort(c);
  ck_assert_int_eq(np_poll_flush(cp_, 0), 0);
  ck_assert_uint_lt(read_to_end(s), sent);
  np_abort(NULL);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* A peer that keeps sending to a closed stream and never reads cannot
 * make it read without end: either its writes fail (a pipe's closed end
 * takes no more) or the delivery gives up once the closed stream has
 * dropped NP__LINGER_DISCARD_MAX bytes, long before the linger limit.
 * Either way the peer has pushed a bounded amount. */
static void assert_discard_bounded(const char *listen_addr) {
  static unsigned char junk[CHUNK];
  char addr[300];
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t pushed = 0;
  uint64_t start;
  ptrdiff_t r = 0;

  memset(&o, 0, sizeof(o));
  o.linger_ms = 60000;
  ck_assert_int_eq(np_listen(sp_, listen_addr, NULL, TOK_L, &l), 0);
  ck_assert_int_gt(np_listener_address(l, addr, sizeof(addr)), 0);
  ck_assert_int_eq(np_connect(cp_, addr, &o, TOK_C, NP_WRITABLE, &c), 0);
  ck_assert_uint_ne(npt_wait_token(cp_, TOK_C, NP_WRITABLE, WAIT_MS), 0);
  s = accept_on(l, TOK_L, TOK_S, NP_WRITABLE);
  ck_assert_uint_gt(write_until_full(c), 0);
  np_close(c);
  start = npt_now_ms();
  /* The server writes and never reads. */
  while (r != NP_EPIPE && r != NP_ECONNRESET && np_poll_flush(cp_, 0) != 0) {
    ck_assert_msg(npt_now_ms() - start < WAIT_MS,
                  "still delivering after the peer sent %zu bytes", pushed);
    r = np_write(s, junk, sizeof(junk));
    if (r > 0)
      pushed += (size_t)r;
    else if (r == NP_EAGAIN)
      npt_wait_token(sp_, TOK_S, NP_WRITABLE, 10);
    (void)np_poll_flush(cp_, 1);
  }
  /* What the closed end dropped, plus what the buffers on the way hold
   * (the server's write limit and the kernels' queues). */
  ck_assert_uint_lt(pushed, 16u * 1024u * 1024u);
  np_close(s);
  ck_assert_int_eq(np_poll_flush(cp_, WAIT_MS), 0);
  ck_assert_uint_lt(npt_now_ms() - start, WAIT_MS);
  np_listener_close(l);
}

START_TEST(test_close_discards_bounded_input) {
  assert_discard_bounded(name_);
  assert_discard_bounded("tcp:127.0.0.1:0");
}
END_TEST

int main(void) {
  Suite *suite = suite_create("flush");
  TCase *tc = npt_tcase(suite, "flush");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_flush_nothing_pending);
  tcase_add_test(tc, test_flush_closed_stream_delivers_bytes);
  tcase_add_test(tc, test_flush_closed_stream_delivers_messages);
  tcase_add_test(tc, test_flush_peer_gone_ends_wait);
  tcase_add_test(tc, test_flush_keeps_wake);
  tcase_add_test(tc, test_flush_keeps_edge);
  tcase_add_test(tc, test_close_unblocks_a_peer_writing_back);
  tcase_add_test(tc, test_close_linger_limit_ends_delivery);
  tcase_add_test(tc, test_abort_drops_unsent_bytes);
  tcase_add_test(tc, test_close_discards_bounded_input);
  return npt_run(suite);
}
