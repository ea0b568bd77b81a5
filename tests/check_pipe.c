/*
 * The pipe suite shared by both backends: the same scenarios and the same
 * exact results on Windows (under Wine) and on Linux.  Where the systems
 * differ by design (np_shutdown in byte mode), the test states both.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
/* sddl.h needs windows.h first. */
#include <sddl.h>
#else
#include <pwd.h>
#include <unistd.h>
#endif

#include "helpers.h"

#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define WAIT_MS 10000

static np_poll *poll_;
static char name_[300];

static void setup(void) {
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  npt_pipe_name(name_, sizeof(name_), "pipe");
}

static void teardown(void) {
  np_poll_free(poll_);
  poll_ = NULL;
}

/* Byte i of a test stream with the given seed. */
static unsigned char pattern(unsigned seed, size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u;

  return (unsigned char)(x >> 13 ^ x >> 24);
}

static void fill(unsigned char *buf, size_t n, unsigned seed, size_t off) {
  size_t i;

  for (i = 0; i < n; i++)
    buf[i] = pattern(seed, off + i);
}

/* Waits for the listener, then accepts one stream. */
static np_stream *accept_one(np_listener *l, uint64_t tok, uint32_t interest) {
  np_stream *s = NULL;
  int err;

  while ((err = np_accept(l, tok, interest, &s)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS) != 0,
                  "no connection within %d ms", WAIT_MS);
  ck_assert_int_eq(err, 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

/* A listener and a connected pair in poll_, with the given flags. */
static void open_pair(uint32_t flags, np_listener **l, np_stream **c,
                      np_stream **s) {
  np_options o;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, l), 0);
  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_READABLE | NP_WRITABLE, c), 0);
  *s = accept_one(*l, TOK_S, NP_READABLE | NP_WRITABLE);
}

/* Reads until n bytes arrived (failing on EOF, error or timeout). */
static void read_exact(np_stream *s, uint64_t tok, unsigned char *buf,
                       size_t n) {
  size_t got = 0;

  while (got < n) {
    ptrdiff_t r = np_read(s, buf + got, n - got);

    if (r == NP_EAGAIN) {
      ck_assert_msg(npt_wait_token(poll_, tok, NP_READABLE, WAIT_MS) != 0,
                    "stalled after %zu of %zu bytes", got, n);
      continue;
    }
    ck_assert_msg(r > 0, "read gave %s after %zu bytes", np_errname((int)r),
                  got);
    got += (size_t)r;
  }
}

/* Waits for the next np_read result that is not NP_EAGAIN. */
static ptrdiff_t read_next(np_stream *s, uint64_t tok, void *buf, size_t n) {
  ptrdiff_t r;

  while ((r = np_read(s, buf, n)) == NP_EAGAIN)
    ck_assert_msg(npt_wait_token(poll_, tok, NP_READABLE, WAIT_MS) != 0,
                  "nothing to read within %d ms", WAIT_MS);
  return r;
}

/* Non-zero when a wait of ms reports any of bits for tok. */
static int reported_within(uint64_t tok, uint32_t bits, int ms) {
  uint32_t ev = npt_wait_token(poll_, tok, 0, ms);

  return (ev & bits) != 0;
}

/* 1. Accept before any client. */
START_TEST(test_pipe_accept_before_client) {
  np_listener *l;
  np_stream *s = (np_stream *)&s, *c;
  np_event ev[4];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_accept(l, TOK_S, NP_READABLE, &s), NP_EAGAIN);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 0), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  ck_assert_uint_eq(npt_wait_token(poll_, TOK_L, NP_READABLE, WAIT_MS),
                    NP_READABLE);
  ck_assert_int_eq(np_accept(l, TOK_S, NP_READABLE, &s), 0);
  /* One client, one connection. */
  ck_assert_int_eq(np_accept(l, TOK_S + 1, NP_READABLE, &s), NP_EAGAIN);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 2. The client opens before the server waits on the listener. */
START_TEST(test_pipe_connect_before_wait) {
  np_listener *l;
  np_stream *c, *s;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 3. Writable at once; exact bytes. */
START_TEST(test_pipe_writable_and_exact_bytes) {
  np_listener *l;
  np_stream *c, *s;
  char buf[16];

  open_pair(0, &l, &c, &s);
  ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS) &
            NP_WRITABLE);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_WRITABLE, WAIT_MS) &
            NP_WRITABLE);
  ck_assert_int_eq(np_write(c, "1234", 4), 4);
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, NP_READABLE), 0);
  ck_assert_uint_eq(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS),
                    NP_READABLE);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "1234", 4), 0);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert_int_eq(np_read(s, buf, 0), 0);
  ck_assert_int_eq(np_write(s, buf, 0), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 4. Write then close at once: every byte arrives, then NP_EOF. */
START_TEST(test_pipe_close_after_write_delivers_everything) {
  enum { N = 256 * 1024 };
  unsigned char *out = malloc(N), *in = malloc(N);
  np_listener *l;
  np_stream *c, *s;
  size_t sent = 0;

  ck_assert_ptr_nonnull(out);
  ck_assert_ptr_nonnull(in);
  fill(out, N, 4, 0);
  open_pair(0, &l, &c, &s);
  /* Everything np_write accepts before the close must arrive. */
  while (sent < N) {
    ptrdiff_t r = np_write(c, out + sent, N - sent);

    ck_assert_int_gt(r, 0);
    sent += (size_t)r;
  }
  np_close(c);
  read_exact(s, TOK_S, in, N);
  ck_assert_int_eq(memcmp(in, out, N), 0);
  ck_assert_int_eq(read_next(s, TOK_S, in, N), NP_EOF);
  ck_assert_int_eq(np_read(s, in, N), NP_EOF);
  np_close(s);
  np_listener_close(l);
  free(out);
  free(in);
}
END_TEST

/* 5. Peer closes: NP_EOF, then writes fail with NP_EPIPE. */
START_TEST(test_pipe_peer_close_gives_eof_then_epipe) {
  np_listener *l;
  np_stream *c, *s;
  char buf[8];
  uint32_t ev;
  int tries;
  ptrdiff_t r = 0;

  open_pair(0, &l, &c, &s);
  np_close(s);
  ck_assert_int_eq(np_stream_set_interest(c, TOK_C, NP_READABLE), 0);
  ev = npt_wait_token(poll_, TOK_C, NP_READABLE, WAIT_MS);
  ck_assert(ev & NP_READABLE);
  ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), NP_EOF);
  ck_assert_int_eq(np_read(c, buf, sizeof(buf)), NP_EOF);
  ck_assert(npt_wait_token(poll_, TOK_C, NP_HUP, WAIT_MS) & NP_HUP);
  for (tries = 0; tries < 100; tries++) {
    r = np_write(c, "x", 1);
    if (r == NP_EPIPE)
      break;
    ck_assert_msg(r == 1 || r == NP_EAGAIN, "write gave %s",
                  np_errname((int)r));
    npt_wait_token(poll_, TOK_C, NP_HUP, 20);
  }
  ck_assert_int_eq(r, NP_EPIPE);
  ck_assert_int_eq(np_write(c, "x", 1), NP_EPIPE);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 6a. Level: a drained stream is silent until new data. */
START_TEST(test_pipe_level_silent_after_drain) {
  np_listener *l;
  np_stream *c, *s;
  char buf[8];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, NP_READABLE), 0);
  ck_assert_int_eq(np_write(c, "a", 1), 1);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 1);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert(!reported_within(TOK_S, NP_READABLE, 100));
  ck_assert_int_eq(np_write(c, "b", 1), 1);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  /* Level: reported again while the byte waits. */
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 1);
  ck_assert_int_eq(buf[0], 'b');
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 6b. Edge: one report per arrival. */
START_TEST(test_pipe_edge_once_per_arrival) {
  np_listener *l;
  np_stream *c, *s;
  char buf[8];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, NP_READABLE | NP_EDGE),
                   0);
  ck_assert_int_eq(np_write(c, "a", 1), 1);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert(!reported_within(TOK_S, NP_READABLE, 100));
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 1);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert_int_eq(np_write(c, "b", 1), 1);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 1);
  ck_assert_int_eq(buf[0], 'b');
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 6c. Oneshot: one report until interest is set again. */
START_TEST(test_pipe_oneshot_until_rearmed) {
  np_listener *l;
  np_stream *c, *s;
  char buf[8];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(
      np_stream_set_interest(s, TOK_S, NP_READABLE | NP_ONESHOT), 0);
  ck_assert_int_eq(np_write(c, "a", 1), 1);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(np_write(c, "b", 1), 1);
  ck_assert(!reported_within(TOK_S, NP_READABLE, 100));
  ck_assert_int_eq(
      np_stream_set_interest(s, TOK_S, NP_READABLE | NP_ONESHOT), 0);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert(!reported_within(TOK_S, NP_READABLE, 100));
  ck_assert_int_ge(np_read(s, buf, sizeof(buf)), 1);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 7. A closed stream's token is never reported, even with a completion
 * already queued. */
START_TEST(test_pipe_closed_token_never_reported) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[16];
  int round, i, n;
  ptrdiff_t r;

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_write(c, "queued", 6), 6);
  npt_sleep_ms(50);
  np_close(s);
  r = np_write(c, "more", 4);
  ck_assert_msg(r == 4 || r == NP_EPIPE, "write gave %s", np_errname((int)r));
  for (round = 0; round < 5; round++) {
    n = np_poll_wait(poll_, ev, 16, 20);
    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++)
      ck_assert_msg(ev[i].token != TOK_S, "closed token reported");
  }
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 8. A client connects, writes and leaves before the server accepts. */
START_TEST(test_pipe_client_gone_before_accept) {
  np_listener *l;
  np_stream *c, *s;
  char buf[16];

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  ck_assert_int_eq(np_write(c, "bye", 3), 3);
  np_close(c);
  npt_sleep_ms(50);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 3);
  ck_assert_int_eq(memcmp(buf, "bye", 3), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  /* The listener still works. */
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, NP_READABLE);
  ck_assert_int_eq(np_write(c, "hi", 2), 2);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 2);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* An echo server for many clients in poll_, driven by readiness only. */
struct echo_conn {
  np_stream *s;
  unsigned char buf[4096];
  size_t len, off;
  int done;
};

struct echo_server {
  np_listener *l;
  struct echo_conn *conns;
  int max, accepted, finished;
};

#define TOK_ECHO 1000

static void echo_accept(struct echo_server *e) {
  np_stream *s;

  while (e->accepted < e->max &&
         np_accept(e->l, TOK_ECHO + (uint64_t)e->accepted,
                   NP_READABLE | NP_WRITABLE, &s) == 0)
    e->conns[e->accepted++].s = s;
}

/* Moves what can move on one connection without blocking. */
static void echo_step(struct echo_server *e, struct echo_conn *k) {
  for (;;) {
    ptrdiff_t r;

    if (k->off < k->len) {
      r = np_write(k->s, k->buf + k->off, k->len - k->off);
      if (r == NP_EAGAIN)
        return;
      ck_assert_msg(r > 0, "echo write: %s", np_errname((int)r));
      k->off += (size_t)r;
      continue;
    }
    r = np_read(k->s, k->buf, sizeof(k->buf));
    if (r == NP_EAGAIN)
      return;
    if (r == NP_EOF) {
      np_close(k->s);
      k->s = NULL;
      k->done = 1;
      e->finished++;
      return;
    }
    ck_assert_msg(r > 0, "echo read: %s", np_errname((int)r));
    k->len = (size_t)r;
    k->off = 0;
  }
}

static void echo_dispatch(struct echo_server *e, const np_event *ev) {
  if (ev->token == TOK_L) {
    echo_accept(e);
  } else if (ev->token >= TOK_ECHO &&
             ev->token < TOK_ECHO + (uint64_t)e->max) {
    struct echo_conn *k = &e->conns[ev->token - TOK_ECHO];

    if (!k->done)
      echo_step(e, k);
  }
}

/* 9. Ten clients served by one listener, readiness only. */
START_TEST(test_pipe_ten_clients_one_listener) {
  enum { CLIENTS = 10, MSG = 3000 };
  struct echo_conn conns[CLIENTS];
  struct echo_server e = {NULL, conns, CLIENTS, 0, 0};
  np_stream *c[CLIENTS];
  unsigned char out[CLIENTS][MSG], in[CLIENTS][MSG];
  size_t got[CLIENTS] = {0}, sent[CLIENTS] = {0};
  int i, closed = 0;
  uint64_t deadline = npt_now_ms() + 60000;
  np_options o;

  memset(conns, 0, sizeof(conns));
  memset(&o, 0, sizeof(o));
  /* Every client connects before the first accept. */
  o.backlog = CLIENTS;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &e.l), 0);
  for (i = 0; i < CLIENTS; i++) {
    fill(out[i], MSG, (unsigned)i, 0);
    ck_assert_int_eq(np_connect(poll_, name_, NULL, 100 + (uint64_t)i,
                                NP_READABLE | NP_WRITABLE, &c[i]),
                     0);
  }
  while (e.finished < CLIENTS) {
    np_event ev[32];
    int n, j;

    ck_assert_msg(npt_now_ms() < deadline, "echo stalled");
    n = np_poll_wait(poll_, ev, 32, 1000);
    ck_assert_int_ge(n, 0);
    for (j = 0; j < n; j++) {
      uint64_t t = ev[j].token;

      if (t < 100 || t >= 100 + CLIENTS) {
        echo_dispatch(&e, &ev[j]);
        continue;
      }
      i = (int)(t - 100);
      if (c[i] == NULL)
        continue;
      if (sent[i] < MSG) {
        ptrdiff_t r = np_write(c[i], out[i] + sent[i], MSG - sent[i]);

        if (r > 0)
          sent[i] += (size_t)r;
      }
      for (;;) {
        ptrdiff_t r = np_read(c[i], in[i] + got[i], MSG - got[i]);

        if (r <= 0 || got[i] + (size_t)r == MSG) {
          if (r > 0)
            got[i] += (size_t)r;
          break;
        }
        got[i] += (size_t)r;
      }
      if (got[i] == MSG) {
        ck_assert_int_eq(memcmp(in[i], out[i], MSG), 0);
        np_close(c[i]);
        c[i] = NULL;
        closed++;
      }
    }
  }
  ck_assert_int_eq(closed, CLIENTS);
  ck_assert_int_eq(e.accepted, CLIENTS);
  np_listener_close(e.l);
}
END_TEST

/* Fails at the first offset where got (read at stream offset off)
 * differs from want.  One assertion per chunk, not per byte: per-byte
 * assertions made this test take minutes under valgrind. */
static void expect_bytes(const unsigned char *got, const unsigned char *want,
                         size_t len, size_t off) {
  size_t i;

  if (memcmp(got, want, len) == 0)
    return;
  for (i = 0; got[i] == want[i]; i++)
    ;
  ck_abort_msg("byte %zu differs: 0x%02x, expected 0x%02x", off + i, got[i],
               want[i]);
}

/* Moves n bytes each way between a and b at once, checking every byte. */
static void exchange(np_stream *a, np_stream *b, size_t n) {
  enum { CHUNK = 96 * 1024 };
  unsigned char *wbuf = malloc(CHUNK), *rbuf = malloc(CHUNK);
  unsigned char *want = malloc(CHUNK);
  np_stream *side[2] = {a, b};
  size_t sent[2] = {0, 0}, got[2] = {0, 0};
  uint64_t deadline = npt_now_ms() + 120000;
  int k;

  ck_assert_ptr_nonnull(wbuf);
  ck_assert_ptr_nonnull(rbuf);
  ck_assert_ptr_nonnull(want);
  while (got[0] < n || got[1] < n) {
    np_event ev[8];

    ck_assert_msg(npt_now_ms() < deadline, "exchange stalled: %zu/%zu",
                  got[0], got[1]);
    for (k = 0; k < 2; k++) {
      ptrdiff_t r;

      while (sent[k] < n) {
        size_t len = n - sent[k] < CHUNK ? n - sent[k] : CHUNK;

        fill(wbuf, len, 10u + (unsigned)k, sent[k]);
        r = np_write(side[k], wbuf, len);
        if (r == NP_EAGAIN)
          break;
        ck_assert_msg(r > 0, "write: %s", np_errname((int)r));
        sent[k] += (size_t)r;
      }
      while (got[k] < n) {
        r = np_read(side[k], rbuf, CHUNK);
        if (r == NP_EAGAIN)
          break;
        ck_assert_msg(r > 0, "read: %s", np_errname((int)r));
        /* No more than was sent to side k, which is at most n. */
        ck_assert_uint_le(got[k] + (size_t)r, sent[!k]);
        /* side k reads what the other side wrote with seed 10 + !k */
        fill(want, (size_t)r, 10u + (unsigned)!k, got[k]);
        expect_bytes(rbuf, want, (size_t)r, got[k]);
        got[k] += (size_t)r;
      }
    }
    ck_assert_int_ge(np_poll_wait(poll_, ev, 8, 100), 0);
  }
  free(wbuf);
  free(rbuf);
  free(want);
}

/* 10a. A 1 MiB write, larger than any internal buffer, arrives intact. */
START_TEST(test_pipe_large_write_intact) {
  enum { N = 1024 * 1024 };
  unsigned char *out = malloc(N), *in = malloc(N);
  np_listener *l;
  np_stream *c, *s;

  fill(out, N, 7, 0);
  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_write(c, out, N), N);
  read_exact(s, TOK_S, in, N);
  ck_assert_int_eq(memcmp(in, out, N), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free(out);
  free(in);
}
END_TEST

/* 10b. A 128 KiB message arrives as one message. */
START_TEST(test_pipe_large_message_intact) {
  enum { N = 128 * 1024 };
  unsigned char *out = malloc(N), *in = malloc(N + 1);
  np_listener *l;
  np_stream *c, *s;

  fill(out, N, 8, 0);
  open_pair(NP_OPT_MESSAGE, &l, &c, &s);
  ck_assert_int_eq(np_write(c, out, N), N);
  ck_assert_int_eq(np_write(c, "tail", 4), 4);
  ck_assert_int_eq(read_next(s, TOK_S, in, N + 1), N);
  ck_assert_int_eq(memcmp(in, out, N), 0);
  ck_assert_int_eq(read_next(s, TOK_S, in, N + 1), 4);
  ck_assert_int_eq(memcmp(in, "tail", 4), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  free(out);
  free(in);
}
END_TEST

/* 10c. 6 MiB both directions at once, no deadlock, every byte checked. */
START_TEST(test_pipe_both_directions_6mib) {
  np_listener *l;
  np_stream *c, *s;

  open_pair(0, &l, &c, &s);
  exchange(c, s, 6u * 1024 * 1024);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 11. A full pipe clears WRITABLE; the reader draining restores it. */
START_TEST(test_pipe_full_clears_writable) {
  enum { LIMIT = 64 * 1024, CHUNK = 16 * 1024 };
  unsigned char out[CHUNK], in[CHUNK];
  np_options o;
  np_listener *l;
  np_stream *c, *s;
  size_t total = 0, drained = 0;
  ptrdiff_t r;

  memset(&o, 0, sizeof(o));
  o.write_limit = LIMIT;
  fill(out, CHUNK, 11, 0);
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, NP_WRITABLE, &c), 0);
  s = accept_one(l, TOK_S, 0);
  /* The OS buffers some, the stream LIMIT more: bounded either way. */
  while ((r = np_write(c, out, CHUNK)) > 0) {
    total += (size_t)r;
    ck_assert_msg(total < 64u * 1024 * 1024, "writes never blocked");
  }
  ck_assert_int_eq(r, NP_EAGAIN);
  ck_assert_uint_ge(total, LIMIT);
  ck_assert(!reported_within(TOK_C, NP_WRITABLE, 100));
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, NP_READABLE), 0);
  while (drained < total) {
    r = read_next(s, TOK_S, in, sizeof(in));
    ck_assert_int_gt(r, 0);
    drained += (size_t)r;
  }
  ck_assert_uint_eq(drained, total);
  ck_assert(npt_wait_token(poll_, TOK_C, NP_WRITABLE, WAIT_MS));
  ck_assert_int_gt(np_write(c, out, CHUNK), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 12. Closing with a read pending frees the name for a new listener. */
START_TEST(test_pipe_close_with_pending_read_frees_name) {
  np_listener *l;
  np_stream *c, *s;
  np_event ev[4];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 0) >= 0, 1);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, TOK_C, 0, &c), 0);
  s = accept_one(l, TOK_S, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 13a. Message mode keeps boundaries; empty messages are not EOF. */
START_TEST(test_pipe_message_boundaries) {
  np_listener *l;
  np_stream *c, *s;
  char buf[64];

  open_pair(NP_OPT_MESSAGE, &l, &c, &s);
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  ck_assert_int_eq(np_write(c, "world", 5), 5);
  ck_assert_int_eq(np_write(c, "", 0), 0);
  ck_assert_int_eq(np_write(c, "!", 1), 1);
  npt_sleep_ms(100);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 5);
  ck_assert_int_eq(memcmp(buf, "world", 5), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 0);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 1);
  ck_assert_int_eq(buf[0], '!');
  np_close(c);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* 13b. Byte mode merges writes that are waiting together. */
START_TEST(test_pipe_byte_mode_merges) {
  np_listener *l;
  np_stream *c, *s;
  char buf[64];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  ck_assert_int_eq(np_write(c, "world", 5), 5);
  npt_sleep_ms(200);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 10);
  ck_assert_int_eq(memcmp(buf, "helloworld", 10), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 13c. A message larger than the buffer stays whole and readable. */
START_TEST(test_pipe_message_too_big_stays_readable) {
  unsigned char out[100], in[100];
  np_listener *l;
  np_stream *c, *s;

  fill(out, sizeof(out), 13, 0);
  open_pair(NP_OPT_MESSAGE, &l, &c, &s);
  ck_assert_int_eq(np_write(c, out, sizeof(out)), (int)sizeof(out));
  ck_assert_int_eq(read_next(s, TOK_S, in, 10), NP_EMSGSIZE);
  ck_assert_int_eq(np_read(s, in, 99), NP_EMSGSIZE);
  ck_assert(npt_wait_token(poll_, TOK_S, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(np_read(s, in, sizeof(in)), (int)sizeof(out));
  ck_assert_int_eq(memcmp(in, out, sizeof(out)), 0);
  ck_assert_int_eq(np_read(s, in, sizeof(in)), NP_EAGAIN);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 14a. Bad input gets the documented codes. */
START_TEST(test_pipe_bad_input) {
  char longname[300];
  np_listener *l = (np_listener *)&l;
  np_stream *s = (np_stream *)&s;

  memcpy(longname, "pipe:", 5);
  memset(longname + 5, 'x', 257);
  longname[5 + 257] = '\0';
  ck_assert_int_eq(np_listen(poll_, "pipe:", NULL, 1, &l), NP_EINVAL);
  ck_assert_ptr_null(l);
  ck_assert_int_eq(np_listen(poll_, longname, NULL, 1, &l), NP_ENAMETOOLONG);
  ck_assert_int_eq(np_listen(poll_, "pipe:a\\b", NULL, 1, &l), NP_EINVAL);
  ck_assert_int_eq(np_listen(poll_, "pipe:a/b", NULL, 1, &l), NP_EINVAL);
  ck_assert_int_eq(np_listen(NULL, name_, NULL, 1, &l), NP_EINVAL);
  ck_assert_int_eq(np_listen(poll_, NULL, NULL, 1, &l), NP_EINVAL);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, 1, NULL), NP_EINVAL);
  ck_assert_int_eq(np_listen(poll_, "\\\\srv\\pipe\\x", NULL, 1, &l),
                   NP_EINVAL);
  ck_assert_int_eq(np_connect(poll_, "pipe:", NULL, 1, 0, &s), NP_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(np_connect(poll_, longname, NULL, 1, 0, &s),
                   NP_ENAMETOOLONG);
  ck_assert_int_eq(np_connect(NULL, name_, NULL, 1, 0, &s), NP_EINVAL);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, 1, 0x400, &s), NP_EINVAL);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, 1, 0, NULL), NP_EINVAL);
  ck_assert_int_eq(np_read(NULL, longname, 1), NP_EINVAL);
  ck_assert_int_eq(np_write(NULL, longname, 1), NP_EINVAL);
  ck_assert_int_eq(np_shutdown(NULL), NP_EINVAL);
  ck_assert_int_eq(np_stream_set_interest(NULL, 1, 0), NP_EINVAL);
  ck_assert_int_eq(np_stream_error(NULL), NP_EINVAL);
  ck_assert_int_eq(np_stream_peer(NULL, NULL), NP_EINVAL);
  ck_assert_int_eq(np_accept(NULL, 1, 0, &s), NP_EINVAL);
  ck_assert_int_eq(np_listener_address(NULL, longname, 10), NP_EINVAL);
  ck_assert_int_eq(np_listener_set_interest(NULL, 1, 0), NP_EINVAL);
  np_close(NULL);
  np_listener_close(NULL);
}
END_TEST

/* Waits (at most WAIT_MS) for an event for tok that carries bits.
 * Returns the event's bits. */
static uint32_t await(uint64_t tok, uint32_t bits) {
  uint32_t ev = npt_wait_token(poll_, tok, bits, WAIT_MS);

  ck_assert_msg(ev != 0, "no event 0x%x for token %llu within %d ms",
                (unsigned)bits, (unsigned long long)tok, WAIT_MS);
  return ev;
}

static np_options wait_opts(uint32_t flags, int timeout_ms) {
  np_options o;

  memset(&o, 0, sizeof(o));
  o.flags = flags;
  o.timeout_ms = timeout_ms;
  return o;
}

/* 14b. An absent name is NP_ENOENT at once; a wait with timeout 0 is
 * NP_ETIMEDOUT at once. */
START_TEST(test_pipe_connect_absent_is_enoent) {
  np_stream *s = (np_stream *)&s;
  np_options o = wait_opts(NP_OPT_WAIT_ABSENT, 0);

  ck_assert_int_eq(np_connect(poll_, name_, NULL, 1, 0, &s), NP_ENOENT);
  ck_assert_ptr_null(s);
  s = (np_stream *)&s;
  ck_assert_int_eq(np_connect(poll_, name_, &o, 1, 0, &s), NP_ETIMEDOUT);
  ck_assert_ptr_null(s);
}
END_TEST

/* 14c. A connect that waits returns at once with a stream that is
 * connecting: reads and writes say NP_EAGAIN, and once a listener
 * appears the stream becomes writable and carries bytes. */
START_TEST(test_pipe_connect_waits_for_absent) {
  np_options o = wait_opts(NP_OPT_WAIT_ABSENT | NP_OPT_WAIT_BUSY, 20000);
  unsigned char buf[4];
  np_listener *l;
  np_stream *c, *s;
  np_event ev[4];
  uint64_t start = npt_now_ms();

  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_READABLE | NP_WRITABLE, &c), 0);
  ck_assert_uint_lt(npt_now_ms() - start, 100);
  ck_assert_int_eq(np_read(c, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert_int_eq(np_write(c, "ping", 4), NP_EAGAIN);
  ck_assert_int_eq(np_stream_error(c), 0);
  /* Nothing to report while nobody listens. */
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 30), 0);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  start = npt_now_ms();
  ck_assert_uint_eq(await(TOK_C, NP_WRITABLE) & NP_ERR, 0);
  /* The retries back off to at most about 50 ms. */
  ck_assert_uint_lt(npt_now_ms() - start, 1000);
  ck_assert_int_eq(np_stream_error(c), 0);
  ck_assert_int_eq(np_write(c, "ping", 4), 4);
  s = accept_one(l, TOK_S, NP_READABLE | NP_WRITABLE);
  read_exact(s, TOK_S, buf, 4);
  ck_assert_mem_eq(buf, "ping", 4);
  ck_assert_int_eq(np_write(s, "pong", 4), 4);
  read_exact(c, TOK_C, buf, 4);
  ck_assert_mem_eq(buf, "pong", 4);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 14d. The wait ends in NP_ERR (with NP_WRITABLE) and NP_ETIMEDOUT,
 * never before timeout_ms; the error is taken once and every later read
 * and write returns it. */
START_TEST(test_pipe_connect_timeout_is_reported) {
  np_options o = wait_opts(NP_OPT_WAIT_ABSENT, 150);
  unsigned char buf[4];
  np_stream *c;
  uint64_t start = npt_now_ms();
  uint32_t ev;

  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_READABLE | NP_WRITABLE, &c), 0);
  ev = await(TOK_C, NP_ERR);
  ck_assert_uint_ge(npt_now_ms() - start, 150);
  ck_assert_uint_eq(ev & (NP_WRITABLE | NP_ERR), NP_WRITABLE | NP_ERR);
  ck_assert_int_eq(np_stream_error(c), NP_ETIMEDOUT);
  ck_assert_int_eq(np_stream_error(c), 0);
  ck_assert_int_eq(np_read(c, buf, sizeof(buf)), NP_ETIMEDOUT);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ETIMEDOUT);
  np_close(c);
}
END_TEST

/* 14e. Closing a connecting stream cancels it: its token is never
 * reported, and a listener that appears later sees no client. */
START_TEST(test_pipe_connect_close_while_waiting) {
  np_options o = wait_opts(NP_OPT_WAIT_ABSENT | NP_OPT_WAIT_BUSY, -1);
  np_listener *l;
  np_stream *c, *s = NULL;
  np_event ev[4];
  int n, i;

  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C, NP_READABLE | NP_WRITABLE, &c), 0);
  ck_assert_int_eq(np_poll_wait(poll_, ev, 4, 20), 0);
  np_close(c);
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  /* Longer than the longest retry interval: a retry left armed would
   * connect (and be reported, or be accepted) within it. */
  for (i = 0; i < 4; i++) {
    n = np_poll_wait(poll_, ev, 4, 50);
    ck_assert_int_ge(n, 0);
    while (n-- > 0)
      ck_assert_uint_ne(ev[n].token, TOK_C);
  }
  ck_assert_int_eq(np_accept(l, TOK_S, 0, &s), NP_EAGAIN);
  ck_assert_ptr_null(s);
  np_listener_close(l);
}
END_TEST

/* Accepts every waiting connection of a listener that another thread
 * drives, on its own poller: the server side of the busy tests. */
struct busy_server {
  np_poll *poll;
  np_listener *l;
  np_stream *taken[16];
  int count;
};

/* 14f. A full backlog is NP_EBUSY at once; a client that waits for it
 * becomes writable once the server accepts one of the others, and one
 * whose time runs out first reports NP_ETIMEDOUT. */
START_TEST(test_pipe_connect_busy_then_waits) {
  struct busy_server b = {NULL, NULL, {NULL}, 0};
  np_stream *c[10], *late, *late2;
  np_options o = wait_opts(0, 0);
  int n = 0, err = 0, i;
  uint64_t deadline;

  o.backlog = 1;
  ck_assert_int_eq(np_poll_new(&b.poll), 0);
  ck_assert_int_eq(np_listen(b.poll, name_, &o, TOK_L, &b.l), 0);
  /* Nobody accepts: the backlog fills within a few clients. */
  while (n < 10 && (err = np_connect(poll_, name_, NULL, 100 + (uint64_t)n,
                                     0, &c[n])) == 0)
    n++;
  ck_assert_int_eq(err, NP_EBUSY);
  ck_assert_int_ge(n, 1);
  o = wait_opts(NP_OPT_WAIT_BUSY, 150);
  ck_assert_int_eq(
      np_connect(poll_, name_, &o, TOK_C + 10, NP_WRITABLE, &late2), 0);
  ck_assert_uint_ne(await(TOK_C + 10, NP_ERR), 0);
  ck_assert_int_eq(np_stream_error(late2), NP_ETIMEDOUT);
  np_close(late2);
  o.timeout_ms = 20000;
  ck_assert_int_eq(np_connect(poll_, name_, &o, TOK_C, NP_WRITABLE, &late),
                   0);
  ck_assert_int_eq(np_write(late, "x", 1), NP_EAGAIN);
  /* The server takes one waiting client, on this thread, and the late
   * client gets its place. */
  deadline = npt_now_ms() + WAIT_MS;
  while (b.count == 0 && npt_now_ms() < deadline) {
    np_event ev[4];

    if ((err = np_accept(b.l, TOK_S, 0, &b.taken[b.count])) == 0)
      b.count++;
    else
      ck_assert_int_eq(np_poll_wait(b.poll, ev, 4, 20) >= 0, 1);
  }
  ck_assert_int_eq(b.count, 1);
  ck_assert_uint_eq(await(TOK_C, NP_WRITABLE) & NP_ERR, 0);
  ck_assert_int_eq(np_stream_error(late), 0);
  ck_assert_int_eq(np_write(late, "x", 1), 1);
  np_close(late);
  for (i = 0; i < n; i++)
    np_close(c[i]);
  for (i = 0; i < b.count; i++)
    np_close(b.taken[i]);
  np_listener_close(b.l);
  np_poll_free(b.poll);
}
END_TEST

/* 14g. Connects that wait for a name nobody serves do not slow another
 * stream of the same poller: a ping-pong runs its course meanwhile, and
 * each of its waits returns as soon as its peer has answered. */
START_TEST(test_pipe_waiting_connects_do_not_stall) {
  enum { WAITERS = 8, ROUNDS = 500 };
  char absent[300];
  np_options o = wait_opts(NP_OPT_WAIT_ABSENT, -1);
  np_stream *w[WAITERS], *c, *s;
  np_listener *l;
  unsigned char b = 0;
  uint64_t start;
  int i;

  npt_pipe_name(absent, sizeof(absent), "nobody");
  for (i = 0; i < WAITERS; i++)
    ck_assert_int_eq(np_connect(poll_, absent, &o, 200 + (uint64_t)i,
                                NP_WRITABLE, &w[i]),
                     0);
  open_pair(0, &l, &c, &s);
  start = npt_now_ms();
  for (i = 0; i < ROUNDS; i++) {
    ck_assert_int_eq(np_write(c, &b, 1), 1);
    read_exact(s, TOK_S, &b, 1);
    ck_assert_int_eq(np_write(s, &b, 1), 1);
    read_exact(c, TOK_C, &b, 1);
    b++;
  }
  /* Generous: the same loop runs thousands of rounds per second on
   * either backend; blocking connects would stall it for good. */
  ck_assert_uint_lt(npt_now_ms() - start, 20000);
  for (i = 0; i < WAITERS; i++) {
    ck_assert_int_eq(np_stream_error(w[i]), 0);
    np_close(w[i]);
  }
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* 15. 200 concurrent clients, small backlog, checksummed echo. */
struct echo_client {
  const char *name;
  unsigned seed;
  int failed; /* 0, or the line that failed */
  int err;
};

#define CLIENT_FAIL(cl, e)                                                    \
  do {                                                                        \
    (cl)->failed = __LINE__;                                                  \
    (cl)->err = (int)(e);                                                     \
  } while (0)

static void echo_client_run(struct echo_client *cl, np_poll *p) {
  enum { N = 2048 };
  unsigned char out[N], in[N];
  np_options o;
  np_stream *s;
  size_t sent = 0, got = 0;
  uint64_t deadline = npt_now_ms() + 120000;
  int err;

  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 60000;
  fill(out, N, cl->seed, 0);
  err = np_connect(p, cl->name, &o, 1, NP_READABLE | NP_WRITABLE, &s);
  if (err != 0) {
    CLIENT_FAIL(cl, err);
    return;
  }
  while (got < N && npt_now_ms() < deadline) {
    np_event ev[4];
    ptrdiff_t r;

    if (sent < N && (r = np_write(s, out + sent, N - sent)) > 0)
      sent += (size_t)r;
    r = np_read(s, in + got, N - got);
    if (r > 0)
      got += (size_t)r;
    else if (r != NP_EAGAIN)
      break;
    np_poll_wait(p, ev, 4, 100);
  }
  if (got != N || memcmp(in, out, N) != 0)
    CLIENT_FAIL(cl, (int)got);
  np_close(s);
}

static void echo_client_main(void *arg) {
  struct echo_client *cl = arg;
  np_poll *p;

  if (np_poll_new(&p) != 0) {
    CLIENT_FAIL(cl, 0);
    return;
  }
  echo_client_run(cl, p);
  np_poll_free(p);
}

START_TEST(test_pipe_200_clients_small_backlog) {
  enum { CLIENTS = 200 };
  static struct echo_conn conns[CLIENTS];
  static struct echo_client cl[CLIENTS];
  struct echo_server e = {NULL, conns, CLIENTS, 0, 0};
  npt_thread *t[CLIENTS];
  np_options o;
  uint64_t deadline = npt_now_ms() + 180000;
  int i;

  memset(conns, 0, sizeof(conns));
  memset(&o, 0, sizeof(o));
  o.backlog = 2;
  ck_assert_int_eq(np_listen(poll_, name_, &o, TOK_L, &e.l), 0);
  for (i = 0; i < CLIENTS; i++) {
    cl[i].name = name_;
    cl[i].seed = 1000u + (unsigned)i;
    cl[i].failed = 0;
    t[i] = npt_thread_start(echo_client_main, &cl[i]);
  }
  while (e.finished < CLIENTS && npt_now_ms() < deadline) {
    np_event ev[64];
    int n = np_poll_wait(poll_, ev, 64, 200), j;

    ck_assert_int_ge(n, 0);
    for (j = 0; j < n; j++)
      echo_dispatch(&e, &ev[j]);
  }
  for (i = 0; i < CLIENTS; i++) {
    npt_thread_join(t[i]);
    ck_assert_msg(cl[i].failed == 0, "client %d failed at line %d (%d)", i,
                  cl[i].failed, cl[i].err);
  }
  ck_assert_int_eq(e.accepted, CLIENTS);
  ck_assert_int_eq(e.finished, CLIENTS);
  np_listener_close(e.l);
}
END_TEST

/* Peer identity: both ends are this process. */
START_TEST(test_pipe_peer_is_this_process) {
  np_listener *l;
  np_stream *c, *s;
  np_peer peer;

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_stream_peer(s, &peer), 0);
  ck_assert_int_eq(peer.pid, npt_self_pid());
#ifdef _WIN32
  ck_assert_int_eq(peer.uid, -1);
  ck_assert_int_eq(peer.gid, -1);
#else
  ck_assert_int_eq(peer.uid, (int64_t)geteuid());
  ck_assert_int_eq(peer.gid, (int64_t)getegid());
#endif
  ck_assert_int_eq(np_stream_peer(c, &peer), 0);
  ck_assert_int_eq(peer.pid, npt_self_pid());
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* This process's account as np_stream_peer_user and np_stream_peer_sid
 * name it ("" for a SID on POSIX). */
static void self_names(char *user, size_t ulen, char *sid, size_t slen) {
#ifdef _WIN32
  union {
    TOKEN_USER user;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } info;
  char name[256], domain[256], *text;
  DWORD len, nlen = sizeof(name), dlen = sizeof(domain);
  SID_NAME_USE use;
  HANDLE token;

  ck_assert(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token));
  ck_assert(GetTokenInformation(token, TokenUser, &info, sizeof(info), &len));
  CloseHandle(token);
  ck_assert(LookupAccountSidA(NULL, info.user.User.Sid, name, &nlen, domain,
                              &dlen, &use));
  snprintf(user, ulen, "%s%s%s", domain, domain[0] ? "\\" : "", name);
  ck_assert(ConvertSidToStringSidA(info.user.User.Sid, &text));
  snprintf(sid, slen, "%s", text);
  LocalFree(text);
#else
  struct passwd *pw = getpwuid(geteuid());

  ck_assert_ptr_nonnull(pw);
  snprintf(user, ulen, "%s", pw->pw_name);
  (void)slen;
  sid[0] = '\0';
#endif
}

/* Both ends name the account at the other end: the same user here. */
START_TEST(test_pipe_peer_user_and_sid) {
  np_listener *l;
  np_stream *c, *s;
  char want[600], want_sid[200], buf[600];
  int n;

  self_names(want, sizeof(want), want_sid, sizeof(want_sid));
  open_pair(0, &l, &c, &s);
  n = (int)strlen(want);
  ck_assert_int_eq(np_stream_peer_user(s, buf, sizeof(buf)), n);
  ck_assert_str_eq(buf, want);
  ck_assert_int_eq(np_stream_peer_user(c, buf, sizeof(buf)), n);
  ck_assert_str_eq(buf, want);
  /* Exactly the room it needs, then one byte less. */
  ck_assert_int_eq(np_stream_peer_user(s, buf, (size_t)n + 1), n);
  ck_assert_int_eq(np_stream_peer_user(s, buf, (size_t)n), NP_ENAMETOOLONG);
  ck_assert_int_eq(np_stream_peer_user(s, NULL, 10), NP_EINVAL);
  ck_assert_int_eq(np_stream_peer_user(s, buf, 0), NP_EINVAL);
  ck_assert_int_eq(np_stream_peer_user(NULL, buf, sizeof(buf)), NP_EINVAL);
#ifdef _WIN32
  n = (int)strlen(want_sid);
  ck_assert_int_eq(np_stream_peer_sid(s, buf, sizeof(buf)), n);
  ck_assert_str_eq(buf, want_sid);
  ck_assert_int_eq(np_stream_peer_sid(c, buf, sizeof(buf)), n);
  ck_assert_str_eq(buf, want_sid);
  ck_assert_int_eq(np_stream_peer_sid(s, buf, (size_t)n), NP_ENAMETOOLONG);
#else
  ck_assert_int_eq(np_stream_peer_sid(s, buf, sizeof(buf)), NP_ENOTSUP);
  ck_assert_int_eq(np_stream_peer_sid(c, buf, sizeof(buf)), NP_ENOTSUP);
#endif
  ck_assert_int_eq(np_stream_peer_sid(NULL, buf, sizeof(buf)), NP_EINVAL);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* The server end acts as the client until np_revert; a client end, and
 * POSIX, cannot. */
START_TEST(test_pipe_impersonate_and_revert) {
  np_listener *l;
  np_stream *c, *s;

  ck_assert_int_eq(np_stream_impersonate(NULL), NP_EINVAL);
  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_stream_impersonate(c), NP_ENOTSUP);
#ifdef _WIN32
  {
    HANDLE token;
    SECURITY_IMPERSONATION_LEVEL level;
    DWORD len, err;
    BOOL ok;

    ck_assert(!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE,
                               &token));
    ck_assert_int_eq(np_stream_impersonate(s), 0);
    ck_assert(
        OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token));
    ck_assert(GetTokenInformation(token, TokenImpersonationLevel, &level,
                                  sizeof(level), &len));
    CloseHandle(token);
    /* The client connected without NP_OPT_IMPERSONATE: identification
     * only.  Wine hands out impersonation whatever the client asked. */
    if (!npt_under_wine())
      ck_assert_int_eq(level, SecurityIdentification);
    ck_assert_int_eq(np_revert(), 0);
    ok = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &token);
    err = GetLastError(); /* before Check's calls change it */
    ck_assert(!ok);
    ck_assert_uint_eq(err, ERROR_NO_TOKEN);
  }
#else
  ck_assert_int_eq(np_stream_impersonate(s), NP_ENOTSUP);
  ck_assert_int_eq(np_revert(), NP_ENOTSUP);
#endif
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

START_TEST(test_pipe_listener_address) {
  np_listener *l;
  char buf[300];
  int n;

  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  n = np_listener_address(l, buf, sizeof(buf));
  ck_assert_int_eq(n, (int)strlen(name_));
  ck_assert_str_eq(buf, name_);
  ck_assert_int_eq(np_listener_address(l, buf, 4), NP_ENAMETOOLONG);
  np_listener_close(l);
}
END_TEST

/* np_shutdown: a half-close on Linux; on Windows byte-mode pipes have
 * none, so the peer sees EOF only at close. */
START_TEST(test_pipe_shutdown_byte_mode) {
  np_listener *l;
  np_stream *c, *s;
  char buf[16];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_write(c, "last", 4), 4);
  ck_assert_int_eq(np_shutdown(c), 0);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ESHUTDOWN);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "last", 4), 0);
  if (strcmp(npt_backend(), "epoll") == 0) {
    ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  } else {
    ck_assert(!reported_within(TOK_S, NP_READABLE, 100));
    ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  }
  /* The other direction still works. */
  ck_assert_int_eq(np_write(s, "back", 4), 4);
  ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "back", 4), 0);
  np_close(c);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  np_listener_close(l);
}
END_TEST

/* np_shutdown in message mode: Windows sends an empty message, Linux ends
 * the stream. */
START_TEST(test_pipe_shutdown_message_mode) {
  np_listener *l;
  np_stream *c, *s;
  char buf[16];

  open_pair(NP_OPT_MESSAGE, &l, &c, &s);
  ck_assert_int_eq(np_write(c, "m", 1), 1);
  ck_assert_int_eq(np_shutdown(c), 0);
  ck_assert_int_eq(np_write(c, "x", 1), NP_ESHUTDOWN);
  ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 1);
  if (strcmp(npt_backend(), "epoll") == 0)
    ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), NP_EOF);
  else
    ck_assert_int_eq(read_next(s, TOK_S, buf, sizeof(buf)), 0);
  ck_assert_int_eq(np_write(s, "back", 4), 4);
  ck_assert_int_eq(read_next(c, TOK_C, buf, sizeof(buf)), 4);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

/* np_poll_free with everything still open and busy. */
START_TEST(test_pipe_poll_free_with_open_objects) {
  np_listener *l;
  np_stream *c, *s, *pending;
  unsigned char big[64 * 1024];

  fill(big, sizeof(big), 21, 0);
  open_pair(0, &l, &c, &s);
  ck_assert_int_gt(np_write(c, big, sizeof(big)), 0);
  ck_assert_int_gt(np_write(s, big, sizeof(big)), 0);
  ck_assert_int_eq(np_connect(poll_, name_, NULL, 9, NP_READABLE, &pending),
                   0);
  np_poll_free(poll_);
  ck_assert_int_eq(np_poll_new(&poll_), 0);
  /* The name is free again. */
  ck_assert_int_eq(np_listen(poll_, name_, NULL, TOK_L, &l), 0);
  np_listener_close(l);
}
END_TEST

/* Interest 0 pauses a stream; a listener's interest can change too. */
START_TEST(test_pipe_interest_changes) {
  np_listener *l;
  np_stream *c, *s;
  char buf[4];

  open_pair(0, &l, &c, &s);
  ck_assert_int_eq(np_stream_set_interest(s, TOK_S, 0), 0);
  ck_assert_int_eq(np_write(c, "z", 1), 1);
  ck_assert(!reported_within(TOK_S, NP_READABLE | NP_WRITABLE, 100));
  ck_assert_int_eq(np_stream_set_interest(s, 77, NP_READABLE), 0);
  ck_assert(npt_wait_token(poll_, 77, NP_READABLE, WAIT_MS));
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 1);
  ck_assert_int_eq(np_listener_set_interest(l, TOK_L, NP_WRITABLE),
                   NP_EINVAL);
  ck_assert_int_eq(np_listener_set_interest(l, 55, NP_READABLE), 0);
  ck_assert_int_eq(np_stream_set_interest(s, 77, 0x400), NP_EINVAL);
  ck_assert_int_eq(np_stream_error(s), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
}
END_TEST

int main(void) {
  Suite *su = suite_create("pipe");
  TCase *tc = npt_tcase(su, "connect");

  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_accept_before_client);
  tcase_add_test(tc, test_pipe_connect_before_wait);
  tcase_add_test(tc, test_pipe_client_gone_before_accept);
  tcase_add_test(tc, test_pipe_close_with_pending_read_frees_name);
  tcase_add_test(tc, test_pipe_listener_address);
  tcase_add_test(tc, test_pipe_peer_is_this_process);
  tcase_add_test(tc, test_pipe_peer_user_and_sid);
  tcase_add_test(tc, test_pipe_impersonate_and_revert);
  tcase_add_test(tc, test_pipe_connect_absent_is_enoent);
  tcase_add_test(tc, test_pipe_connect_waits_for_absent);
  tcase_add_test(tc, test_pipe_connect_busy_then_waits);
  tcase_add_test(tc, test_pipe_connect_timeout_is_reported);
  tcase_add_test(tc, test_pipe_connect_close_while_waiting);
  tcase_add_test(tc, test_pipe_waiting_connects_do_not_stall);
  tcase_add_test(tc, test_pipe_bad_input);
  tc = npt_tcase(su, "data");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_writable_and_exact_bytes);
  tcase_add_test(tc, test_pipe_close_after_write_delivers_everything);
  tcase_add_test(tc, test_pipe_peer_close_gives_eof_then_epipe);
  tcase_add_test(tc, test_pipe_large_write_intact);
  tcase_add_test(tc, test_pipe_both_directions_6mib);
  tcase_add_test(tc, test_pipe_full_clears_writable);
  tcase_add_test(tc, test_pipe_byte_mode_merges);
  tcase_add_test(tc, test_pipe_shutdown_byte_mode);
  tc = npt_tcase(su, "message");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_message_boundaries);
  tcase_add_test(tc, test_pipe_large_message_intact);
  tcase_add_test(tc, test_pipe_message_too_big_stays_readable);
  tcase_add_test(tc, test_pipe_shutdown_message_mode);
  tc = npt_tcase(su, "readiness");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_level_silent_after_drain);
  tcase_add_test(tc, test_pipe_edge_once_per_arrival);
  tcase_add_test(tc, test_pipe_oneshot_until_rearmed);
  tcase_add_test(tc, test_pipe_closed_token_never_reported);
  tcase_add_test(tc, test_pipe_interest_changes);
  tcase_add_test(tc, test_pipe_poll_free_with_open_objects);
  tc = npt_tcase(su, "scale");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipe_ten_clients_one_listener);
  tcase_add_test(tc, test_pipe_200_clients_small_backlog);
  return npt_run(su);
}
