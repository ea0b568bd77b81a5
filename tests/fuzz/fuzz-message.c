/*
 * libFuzzer harness: message mode on the POSIX backend (SOCK_SEQPACKET,
 * one header byte per message, src/unix/fd-message.c), driven through
 * the public API.  Each input is a script for two connections to one
 * message-mode listener:
 *   - a foreign peer R (a raw SEQPACKET socket) and the npipe end SR that
 *     accepted it: R sends packets with chosen header bytes and sizes,
 *     empty packets included; SR's messages are received raw and their
 *     framing checked;
 *   - two npipe ends C (np_connect) and S (accepted): C writes messages
 *     of chosen sizes, S reads them with chosen buffer sizes;
 * with shutdowns, a close of the foreign peer and poll rounds in between
 * (the first byte picks C's write limit, the rest are steps).
 * A model of what is in flight checks every result exactly: each np_read
 * returns one whole message (never part of one, never two), or
 * NP_EMSGSIZE leaving it readable, or NP_EIO for one foreign packet that
 * does not carry npipe's framing; NP_EOF only after the peer's end;
 * NP_EAGAIN only when nothing is due.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "npipe.h"

#define HDR 0x6d /* npipe's header byte ('m') */

enum { TOK_L = 1, TOK_SR, TOK_C, TOK_S };

static void check_msg(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "fuzz-message: %s\n", what);
    abort();
  }
}
#define check(cond) check_msg((cond), #cond)

/* ---- the messages due at one receiver ----------------------------------- */

struct msg {
  size_t len;   /* payload length */
  uint32_t seq; /* what the payload was made from */
  int garbage;  /* a foreign packet without npipe's framing: 1, or 2 when
                   it is empty (no header byte either) */
};

struct queue {
  struct msg m[512];
  size_t head, n;
};

static int push(struct queue *q, size_t len, uint32_t seq, int garbage) {
  struct msg *m;

  if (q->n == sizeof(q->m) / sizeof(q->m[0]))
    return 0;
  m = &q->m[(q->head + q->n++) % (sizeof(q->m) / sizeof(q->m[0]))];
  m->len = len;
  m->seq = seq;
  m->garbage = garbage;
  return 1;
}

static const struct msg *peek(const struct queue *q) {
  return q->n > 0 ? &q->m[q->head] : NULL;
}

static void pop(struct queue *q) {
  q->head = (q->head + 1) % (sizeof(q->m) / sizeof(q->m[0]));
  q->n--;
}

static unsigned char pattern(uint32_t seq, size_t i) {
  uint32_t x = seq * 2654435761u + (uint32_t)i * 40503u;

  return (unsigned char)(x >> 11 ^ x >> 23 ^ i);
}

static void fill(unsigned char *p, size_t len, uint32_t seq) {
  size_t i;

  for (i = 0; i < len; i++)
    p[i] = pattern(seq, i);
}

static int same(const unsigned char *p, size_t len, uint32_t seq) {
  size_t i;

  for (i = 0; i < len; i++)
    if (p[i] != pattern(seq, i))
      return 0;
  return 1;
}

/* ---- the fixture: one listener for the whole run ------------------------ */

static np_poll *poll_;
static np_listener *listener_;
static char dir_[64];
static struct sockaddr_un sun_;
static unsigned char *wbuf_; /* payloads and raw packets */
static unsigned char *huge_; /* larger than any message may be */
#define WBUF_SIZE (300 * 1024)
#define HUGE_SIZE (4u << 20)

static void cleanup(void) {
  if (listener_ != NULL)
    np_listener_close(listener_);
  if (poll_ != NULL)
    np_poll_free(poll_);
  rmdir(dir_);
}

static void setup(void) {
  np_options o;

  snprintf(dir_, sizeof(dir_), "/tmp/npipe-fuzz-XXXXXX");
  check(mkdtemp(dir_) != NULL);
  check(setenv("NPIPE_DIR", dir_, 1) == 0);
  check(np_poll_new(&poll_) == 0);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  check(np_listen(poll_, "pipe:fz", &o, TOK_L, &listener_) == 0);
  memset(&sun_, 0, sizeof(sun_));
  sun_.sun_family = AF_UNIX;
  snprintf(sun_.sun_path, sizeof(sun_.sun_path), "%s/fz", dir_);
  wbuf_ = malloc(WBUF_SIZE);
  huge_ = calloc(1, HUGE_SIZE);
  check(wbuf_ != NULL && huge_ != NULL);
  atexit(cleanup);
}

/* One round of the poller: buffered writes go out, closed streams go. */
static void pump(int timeout_ms) {
  np_event ev[16];

  check(np_poll_wait(poll_, ev, 16, timeout_ms) >= 0);
}

static np_stream *accept_one(void) {
  np_stream *s = NULL;
  int i, err;

  for (i = 0; i < 200; i++) {
    err = np_accept(listener_, TOK_S, NP_READABLE, &s);
    if (err == 0)
      return s;
    check(err == NP_EAGAIN);
    pump(10);
  }
  check_msg(0, "no connection to accept");
  return NULL;
}

/* ---- the script ------------------------------------------------------- */

struct input {
  const unsigned char *p;
  size_t left;
};

static unsigned next(struct input *in) {
  if (in->left == 0)
    return 0;
  in->left--;
  return *in->p++;
}

/* A size from two bytes: up to 64 KiB, or up to 256 KiB with big. */
static size_t next_size(struct input *in, int big) {
  size_t v = next(in);

  v |= (size_t)next(in) << 8;
  return big ? v * 4 : v;
}

/* A receiving npipe end and what is due at it. */
struct rx {
  np_stream *s;
  struct queue q;
  int ended; /* the peer's end follows the queue */
};

/* A read buffer size around the next message's, so that the exact fit,
 * one byte short and one byte over are all common. */
static size_t read_size(struct input *in, const struct rx *r) {
  const struct msg *m = peek(&r->q);
  size_t want = m != NULL ? m->len : 0;
  unsigned sel = next(in);

  switch (sel & 3) {
  case 0:
    return want;
  case 1:
    return want > 0 ? want - 1 : 0;
  case 2:
    return want + 1 + next(in);
  default:
    return next_size(in, sel & 4);
  }
}

static void expect(ptrdiff_t got, ptrdiff_t want, size_t len) {
  if (got != want) {
    fprintf(stderr, "fuzz-message: np_read(%zu) gave %s (%td), not %s (%td)\n",
            len, got >= 0 ? "a count" : np_errname((int)got), got,
            want >= 0 ? "a count" : np_errname((int)want), want);
    abort();
  }
}

/* np_read on r with a buffer of exactly len bytes, checked against the
 * model.  Data still in the writer's buffer may need poll rounds. */
static void do_read(struct rx *r, size_t len, int null_buf) {
  const struct msg *m = peek(&r->q);
  unsigned char *buf = null_buf && len == 0 ? NULL : malloc(len);
  ptrdiff_t n;
  int tries = 0;

  check(buf != NULL || len == 0);
  for (;;) {
    n = np_read(r->s, buf, len);
    if (n != NP_EAGAIN || (m == NULL && !r->ended))
      break;
    check_msg(++tries < 500, "a due message or end never arrived");
    pump(10);
  }
  if (m == NULL) {
    expect(n, r->ended ? NP_EOF : NP_EAGAIN, len);
  } else if (m->garbage == 2 && r->ended) {
    /* An empty packet just ahead of the peer's end reads as the end
     * (fd-message.c): whatever follows it is lost. */
    expect(n, NP_EOF, len);
    r->q.n = 0;
  } else if (m->garbage) {
    expect(n, NP_EIO, len);
    pop(&r->q);
  } else if (m->len > len) {
    expect(n, NP_EMSGSIZE, len);
  } else {
    expect(n, (ptrdiff_t)m->len, len);
    check(same(buf, len > (size_t)n ? (size_t)n : len, m->seq));
    pop(&r->q);
  }
  free(buf);
}

/* np_options.write_limit 0 selects this. */
#define DEFAULT_LIMIT (1024u * 1024u)

struct state {
  int raw;          /* the foreign peer's socket, -1 once closed */
  int raw_shut;     /* it sent its end */
  struct rx sr;     /* the npipe end that accepted it */
  struct queue raw_due; /* what SR wrote, due at the raw socket */
  int sr_shut, sr_broken;
  struct rx s;      /* reads what C writes */
  np_stream *c;
  size_t c_limit; /* C's write limit: also its largest message */
  int c_shut;
  uint32_t seq;
};

static void raw_send(struct state *st, struct input *in) {
  unsigned hsel = next(in);
  size_t len = next_size(in, hsel & 0x40);
  ssize_t n;
  int empty = hsel == 0x7f;
  unsigned char hdr = hsel & 0x80 ? HDR : (unsigned char)hsel;

  if (st->raw < 0 || st->raw_shut || len + 1 > WBUF_SIZE)
    return;
  st->seq++;
  wbuf_[0] = hdr;
  fill(wbuf_ + 1, len, st->seq);
  n = send(st->raw, wbuf_, empty ? 0 : len + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0) {
    /* Full, or larger than the socket takes: nothing was sent. */
    check(errno == EAGAIN || errno == EMSGSIZE || errno == ENOBUFS);
    return;
  }
  check((size_t)n == (empty ? 0 : len + 1));
  if (!push(&st->sr.q, empty ? 0 : len, st->seq,
            empty ? 2 : hdr != HDR))
    st->raw_shut = 1; /* model full: stop sending (never happens in 512) */
}

/* np_write of len bytes on s, whose write limit is limit; returns 1
 * when accepted. */
static int npipe_write(np_stream *s, size_t limit, size_t len, uint32_t seq,
                       int shut, int *broken) {
  ptrdiff_t n;

  fill(wbuf_, len, seq);
  n = np_write(s, wbuf_, len);
  if (shut) {
    check(n == NP_ESHUTDOWN);
    return 0;
  }
  if (broken != NULL && (n == NP_EPIPE || *broken)) {
    if (len > limit) /* a gone peer is reported first */
      check(n == NP_EPIPE);
    check(n == NP_EPIPE || (size_t)n == len);
    if (n == NP_EPIPE)
      *broken = 1;
    return 0;
  }
  if (len > limit) {
    check(n == NP_EMSGSIZE); /* the limit bounds one message */
    return 0;
  }
  if (n == NP_EAGAIN)
    return 0;
  check(n >= 0 && (size_t)n == len);
  return 1;
}

/* A raw receive of what SR wrote: one packet per message, header first. */
static void raw_recv(struct state *st) {
  const struct msg *m = peek(&st->raw_due);
  size_t cap = (m != NULL ? m->len : 0) + 64;
  unsigned char *buf = malloc(cap);
  ssize_t n;
  int tries = 0;

  check(buf != NULL);
  for (;;) {
    n = recv(st->raw, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0 || errno != EAGAIN || (m == NULL && !st->sr_shut))
      break;
    check_msg(++tries < 500, "a message to the raw peer never arrived");
    pump(10);
  }
  if (m == NULL) {
    check(st->sr_shut ? n == 0 : n < 0 && errno == EAGAIN);
  } else {
    check(n >= 0 && (size_t)n == m->len + 1 && buf[0] == HDR);
    check(same(buf + 1, m->len, m->seq));
    pop(&st->raw_due);
  }
  free(buf);
}

static void step(struct state *st, struct input *in) {
  unsigned op = next(in);
  size_t len;

  switch (op % 12) {
  case 0:
    raw_send(st, in);
    break;
  case 1:
    len = read_size(in, &st->sr);
    do_read(&st->sr, len, op & 0x80);
    break;
  case 2:
    len = next_size(in, op & 0x80);
    st->seq++;
    if (npipe_write(st->c, st->c_limit, len, st->seq, st->c_shut, NULL))
      check(push(&st->s.q, len, st->seq, 0));
    break;
  case 3:
    len = read_size(in, &st->s);
    do_read(&st->s, len, op & 0x80);
    break;
  case 4:
    len = next_size(in, op & 0x80);
    st->seq++;
    if (npipe_write(st->sr.s, DEFAULT_LIMIT, len, st->seq, st->sr_shut,
                    &st->sr_broken) &&
        st->raw >= 0)
      check(push(&st->raw_due, len, st->seq, 0));
    break;
  case 5:
    if (st->raw >= 0)
      raw_recv(st);
    break;
  case 6:
    check(np_shutdown(st->c) == 0);
    st->c_shut = 1;
    st->s.ended = 1;
    break;
  case 7:
    if (st->raw >= 0 && !st->raw_shut) {
      check(shutdown(st->raw, SHUT_WR) == 0);
      st->raw_shut = 1;
      st->sr.ended = 1;
    }
    break;
  case 8:
    if (st->raw >= 0) {
      close(st->raw);
      st->raw = -1;
      st->sr.ended = 1;
    }
    break;
  case 9:
    pump(0);
    break;
  case 10:
    check(np_shutdown(st->sr.s) == 0);
    st->sr_shut = 1;
    break;
  default:
    /* Larger than any message: refused whole, nothing queued. */
    check(np_write(st->c, huge_, HUGE_SIZE) ==
          (st->c_shut ? NP_ESHUTDOWN : NP_EMSGSIZE));
    break;
  }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  static const size_t limits[4] = {0, 1, 1000, 70000};
  static struct state st;
  struct input in = {data, size};
  np_options o;
  int i;

  if (poll_ == NULL)
    setup();
  memset(&st, 0, sizeof(st));
  st.raw = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  check(st.raw >= 0);
  check(connect(st.raw, (struct sockaddr *)&sun_, sizeof(sun_)) == 0);
  st.sr.s = accept_one();
  /* The first byte picks C's write limit, which also bounds one
   * message. */
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_MESSAGE;
  o.write_limit = limits[next(&in) % 4];
  st.c_limit = o.write_limit != 0 ? o.write_limit : DEFAULT_LIMIT;
  check(np_connect(poll_, "pipe:fz", &o, TOK_C, NP_READABLE, &st.c) == 0);
  st.s.s = accept_one();
  while (in.left > 0)
    step(&st, &in);
  np_close(st.c);
  np_close(st.s.s);
  np_close(st.sr.s);
  if (st.raw >= 0)
    close(st.raw);
  /* Streams closed with bytes still buffered go when their peers do. */
  for (i = 0; i < 4; i++)
    pump(0);
  return 0;
}
