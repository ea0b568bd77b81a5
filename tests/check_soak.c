/*
 * Load without loss: a soak test with a fixed amount of work.
 *
 * 256 client threads, each with its own poller, connect to one echo
 * server (the test's main thread: one poller, level-triggered, bounded
 * buffers, non-blocking reads and writes that honour NP_EAGAIN and
 * NP_WRITABLE), send a stream, read its echo and disconnect, for a fixed
 * number of rounds.  Every stream is a pure function of a key (its first
 * eight bytes, or its first message), so the server checks what arrives
 * and the client checks what comes back without either keeping a copy:
 * a lost, duplicated or reordered byte is found where it happens.
 *
 * Some clients abort: they close right after a write, having read only
 * part of the echo.  The server must then see exactly the bytes np_write
 * accepted (for pipes: accepted bytes are delivered while the peer lives;
 * TCP may drop them with a reset, so there only a prefix is required).
 * An aborting client may leave up to ABORT_WINDOW bytes of echo unread,
 * far more than the server's ring and write queue hold: the server then
 * blocks writing to a closed stream that is still flushing, and only
 * the closed stream discarding what arrives keeps both ends moving
 * (this wedged both backends before np_close learnt to discard).
 *
 * Nothing here relies on Check's timeout (it does not exist without
 * fork, as under Wine): the run fails when the server moves nothing for
 * STALL_MS, every wait of a thread ends soon after, threads never call
 * ck_assert (they record failures for the main thread), and the main
 * thread joins a thread only after it said it is done.
 *
 * NPT_SOAK_SEED=N replays a run; the seed is printed first.
 */
#include "config.h"

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#else
#include <dirent.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#ifdef _WIN32
#include "win/pipe.h" /* np__pipe_live: Wine reports no handle count */
#endif

#define CLIENTS 256
#define RING (64 * 1024)    /* server echo buffer per connection */
#define SERVER_WLIMIT 16384 /* small, so server writes meet EAGAIN */
#define ABORT_WINDOW (1024 * 1024) /* unread echo an aborting client allows */
#define MSG_MAX 12000       /* largest message of the message variant */
#define MSG_WLIMIT 32768    /* server write limit in message mode */
/* A run fails when the server moves nothing for STALL_MS (a hang, even
 * under Wine, where Check has no timeout), or when it lasts RUN_MS (a
 * livelock: slow runners such as valgrind still progress). */
#define STALL_MS 60000
#define RUN_MS (20 * 60000)
#define CONNECT_SLICE_MS                                                      \
  10000 /* np_connect timeout; retried while the run                          \
           lives, so a stopped run ends it soon */
#define GRACE_MS (CONNECT_SLICE_MS + 5000) /* threads after the run */
#define TOK_PIPE_L 1
#define TOK_TCP_L 2
#define TOK_CLIENT 7

struct variant {
  const char *name;
  int message; /* message mode */
  int tcp;     /* half of the connections over TCP */
  int rounds;  /* connections per client */
};

/* ---- deterministic streams -------------------------------------------- */

static uint64_t salt_; /* from the seed: every run sends other bytes */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* Eight bytes of key's stream: the key itself first, so that the stream
 * names itself, then pseudo-random words. */
static uint64_t stream_word(uint64_t key, uint64_t block) {
  return block == 0 ? key : mix64(key ^ salt_ ^ mix64(block));
}

static void stream_fill(uint64_t key, uint64_t pos, unsigned char *buf,
                        size_t len) {
  uint64_t word = stream_word(key, pos / 8);
  size_t i;

  for (i = 0; i < len; i++, pos++) {
    if (pos % 8 == 0 && i > 0)
      word = stream_word(key, pos / 8);
    buf[i] = (unsigned char)(word >> (8 * (pos % 8)));
  }
}

/* Returns the index of the first byte of buf that differs from key's
 * stream at pos, or len when all match. */
static size_t stream_diff(uint64_t key, uint64_t pos, const unsigned char *buf,
                          size_t len) {
  uint64_t word = stream_word(key, pos / 8);
  size_t i;

  for (i = 0; i < len; i++, pos++) {
    if (pos % 8 == 0 && i > 0)
      word = stream_word(key, pos / 8);
    if (buf[i] != (unsigned char)(word >> (8 * (pos % 8))))
      return i;
  }
  return len;
}

/* Message idx of key's conversation: message 0 is the key (8 bytes);
 * later ones have a length from 0 to MSG_MAX and content of their own. */
static size_t msg_len(uint64_t key, uint64_t idx) {
  uint64_t r = mix64(key ^ salt_ ^ (idx << 40));

  if (idx == 0)
    return 8;
  if (r % 16 == 0)
    return 0; /* empty messages must survive too */
  return (size_t)((r >> 8) % (r % 4 == 0 ? MSG_MAX + 1 : 600));
}

static uint64_t msg_key(uint64_t key, uint64_t idx) {
  return mix64(key + idx * 0x100000001b3u);
}

static void msg_fill(uint64_t key, uint64_t idx, unsigned char *buf) {
  if (idx == 0)
    stream_fill(key, 0, buf, 8);
  else
    stream_fill(msg_key(key, idx), 8, buf, msg_len(key, idx));
}

static int msg_matches(uint64_t key, uint64_t idx, const unsigned char *buf,
                       size_t len) {
  if (len != msg_len(key, idx))
    return 0;
  if (idx == 0)
    return stream_diff(key, 0, buf, len) == len;
  return stream_diff(msg_key(key, idx), 8, buf, len) == len;
}

/* key = tag | client | round: the server finds the record from it. */
#define KEY_TAG 0x5a00000000000000u
static uint64_t make_key(int client, int round) {
  return KEY_TAG | (uint64_t)client << 24 | (uint64_t)round;
}

static uint64_t get_le64(const unsigned char *b) {
  uint64_t v = 0;
  int i;

  for (i = 7; i >= 0; i--)
    v = v << 8 | b[i];
  return v;
}

/* ---- the run's shared state ------------------------------------------- */

struct rng {
  uint64_t s;
};

static uint64_t rng_next(struct rng *r) { return mix64(r->s++); }
static uint64_t rng_below(struct rng *r, uint64_t n) {
  return rng_next(r) % n;
}

/* One connection of one client. */
struct rec {
  /* the client's side, read by the main thread after the join */
  int started, tcp, aborted, short_stream, lazy;
  int srv_blocked; /* atomic: a server write on it met NP_EAGAIN */
  uint64_t sent;   /* bytes, or messages, that np_write accepted */
  uint64_t echoed; /* bytes of echo verified */
  /* the server's side; done is stored last, with release */
  int claimed, srv_end, srv_werr, srv_bad;
  uint64_t srv_units, srv_bytes;
  int done;
};

enum { PHASE_IDLE, PHASE_CONNECT, PHASE_STREAM, PHASE_DRAIN };

struct client {
  struct soak *sk;
  int id;
  struct rng rng;
  int fail_line;
  char fail[200];
  uint64_t connect_max_ms; /* longest np_connect */
  int phase;               /* atomic: a PHASE_*, for a stall report */
  int done;                /* atomic: the thread touches nothing any more */
};

struct soak {
  const struct variant *v;
  int rounds;
  char pipe_addr[128], tcp_addr[128];
  struct rec *recs; /* CLIENTS * rounds */
  struct client cl[CLIENTS];
  size_t capacity;        /* what a pipe holds for a reader that waits */
  uint64_t deadline;      /* RUN_MS after the start */
  uint64_t last_progress; /* the server's, for STALL_MS */
  int stop;               /* atomic: give up, the run failed */
  int polls_live;         /* atomic: pollers created and not freed */
  /* the server's, main thread only */
  uint64_t connections, shorts, accept_aborts, srv_eagain;
  int srv_fail_line;
  char srv_fail[200];
};

static int load_int(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store_int(int *p, int v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static void add_int(int *p, int v) {
  __atomic_add_fetch(p, v, __ATOMIC_ACQ_REL);
}

static struct rec *rec_of(struct soak *sk, int client, int round) {
  return &sk->recs[(size_t)client * (size_t)sk->rounds + (size_t)round];
}

static int run_over(struct soak *sk) {
  return load_int(&sk->stop) || npt_now_ms() >= sk->deadline;
}

/* Records the first failure of a client; the main thread reports it. */
static void client_fail(struct client *c, int line, const char *fmt, ...) {
  va_list ap;

  if (c->fail_line != 0)
    return;
  c->fail_line = line;
  va_start(ap, fmt);
  vsnprintf(c->fail, sizeof(c->fail), fmt, ap);
  va_end(ap);
}

static void server_fail(struct soak *sk, int line, const char *fmt, ...) {
  va_list ap;

  if (sk->srv_fail_line == 0) {
    sk->srv_fail_line = line;
    va_start(ap, fmt);
    vsnprintf(sk->srv_fail, sizeof(sk->srv_fail), fmt, ap);
    va_end(ap);
  }
  store_int(&sk->stop, 1);
}

/* ---- the client -------------------------------------------------------- */

/* What one connection does, drawn from the client's PRNG. */
struct plan {
  uint64_t key;
  uint64_t total;   /* bytes, or messages, of the whole stream */
  uint64_t stop_at; /* abort: close right after sending this many */
  uint64_t read_to; /* abort: read no echo past this many */
  size_t wchunk, rchunk;
  int abort, tcp;
  int lazy; /* reads only once everything is sent: fills the server */
};

static uint64_t pick_len(struct rng *r) {
  uint64_t k = rng_below(r, 100);

  if (k < 50)
    return rng_below(r, 4096);
  if (k < 88)
    return 4096 + rng_below(r, 60 * 1024);
  return 64 * 1024 + rng_below(r, 128 * 1024);
}

static size_t pick_chunk(struct rng *r) {
  static const size_t sizes[] = {64, 1500, 16384, 65536};

  return sizes[rng_below(r, 4)];
}

/* An aborting client stops reading at read_to and closes right after
 * sending stop_at: the bytes between stay within ABORT_WINDOW, so the
 * server can always take what the client sends. */
static void plan_abort(struct client *c, struct plan *p) {
  uint64_t most = p->total, used = 0;

  p->abort = 1;
  p->read_to = rng_below(&c->rng, p->total + 1);
  if (!c->sk->v->message && p->total - p->read_to > ABORT_WINDOW)
    most = p->read_to + ABORT_WINDOW;
  if (c->sk->v->message) {
    for (most = p->read_to; most < p->total; most++) {
      used += msg_len(p->key, most);
      if (used > ABORT_WINDOW)
        break;
    }
  }
  p->stop_at = p->read_to + rng_below(&c->rng, most - p->read_to + 1);
  /* TCP: a close with echo unread is a reset, which may drop what the
   * client sent last, so TCP clients end gracefully mid-stream. */
  if (p->tcp)
    p->read_to = p->stop_at;
}

/* A lazy client reads nothing before it sent everything.  A lazy byte
 * stream is longer than twice what the pipe holds for an idle reader
 * plus the server's ring, so the server must meet NP_EAGAIN and wait
 * for NP_WRITABLE; the client reads only once that happened.  Its own
 * write limit (1 MiB) takes all it sends: no deadlock. */
static void plan_lazy(struct client *c, struct plan *p) {
  p->lazy = 1;
  if (!c->sk->v->message)
    p->total = 8 + 2 * c->sk->capacity + RING + rng_below(&c->rng, 65536);
  p->stop_at = p->read_to = p->total;
}

static void make_plan(struct client *c, int round, struct plan *p) {
  struct rng *r = &c->rng;
  uint64_t kind;

  memset(p, 0, sizeof(*p));
  p->key = make_key(c->id, round);
  p->tcp = c->sk->v->tcp && rng_below(r, 2) == 0;
  p->total = c->sk->v->message ? 1 + rng_below(r, 40) : 8 + pick_len(r);
  p->wchunk = pick_chunk(r);
  p->rchunk = pick_chunk(r);
  p->stop_at = p->read_to = p->total;
  kind = rng_below(r, 100);
  if (kind < 4) { /* connect and leave at once, or within the key */
    p->abort = 1;
    p->read_to = 0;
    p->stop_at = c->sk->v->message ? 0 : rng_below(r, 8);
  } else if (kind < 20) {
    plan_abort(c, p);
  } else if (kind < 24 && (c->sk->v->message || !p->tcp)) {
    plan_lazy(c, p);
  }
}

/* One stream being sent and checked: bytes or messages. */
struct flow {
  struct client *c;
  struct plan *p;
  struct rec *rec;
  np_stream *s;
  unsigned char *wbuf, *rbuf;
  uint64_t sent, got; /* bytes, or messages */
  uint64_t out_bytes; /* message mode: sent but not echoed */
  struct rng io;      /* write sizes: apart, so plans replay exactly */
  uint32_t interest;
  int closed;
};

static void flow_close(struct flow *f) {
  f->rec->sent = f->sent;
  f->rec->short_stream = f->sent < (f->c->sk->v->message ? 1u : 8u);
  np_close(f->s);
  f->closed = 1;
}

/* Whether the flow reads now: a lazy one not before all is sent (nor,
 * for bytes, before the server was refused a write). */
static int flow_reads(const struct flow *f) {
  if (f->got >= f->p->read_to || f->got >= f->sent)
    return 0;
  if (!f->p->lazy)
    return 1;
  return f->sent == f->p->stop_at &&
         (f->c->sk->v->message || load_int(&f->rec->srv_blocked));
}

/* Sends what the plan and the stream allow.  Returns 1 on progress. */
static int bytes_send(struct flow *f) {
  struct plan *p = f->p;
  int moved = 0;

  while (!f->closed && f->sent < p->stop_at) {
    uint64_t n = p->stop_at - f->sent;
    ptrdiff_t w;

    if (p->abort && n > ABORT_WINDOW - (f->sent - f->got))
      n = ABORT_WINDOW - (f->sent - f->got);
    if (n == 0)
      break;
    n = 1 + rng_below(&f->io, n < p->wchunk ? n : p->wchunk);
    stream_fill(p->key, f->sent, f->wbuf, (size_t)n);
    w = np_write(f->s, f->wbuf, (size_t)n);
    if (w == NP_EAGAIN)
      break;
    if (w <= 0) {
      client_fail(f->c, __LINE__, "write at %llu: %s",
                  (unsigned long long)f->sent, np_errname((int)w));
      return 0;
    }
    f->sent += (uint64_t)w;
    moved = 1;
    if (p->abort && !p->tcp && f->sent == p->stop_at)
      flow_close(f); /* right after the write */
  }
  return moved;
}

/* Reads and checks echoed bytes up to the plan's limit. */
static int bytes_recv(struct flow *f) {
  struct plan *p = f->p;
  int moved = 0;

  while (!f->closed && flow_reads(f)) {
    uint64_t n = p->read_to - f->got;
    ptrdiff_t r;
    size_t bad;

    r = np_read(f->s, f->rbuf, (size_t)(n < p->rchunk ? n : p->rchunk));
    if (r == NP_EAGAIN)
      break;
    if (r <= 0) {
      client_fail(f->c, __LINE__, "read at %llu of %llu: %s",
                  (unsigned long long)f->got, (unsigned long long)p->total,
                  np_errname((int)r));
      return 0;
    }
    bad = stream_diff(p->key, f->got, f->rbuf, (size_t)r);
    if (bad != (size_t)r) {
      client_fail(f->c, __LINE__, "echo byte %llu differs",
                  (unsigned long long)(f->got + bad));
      return 0;
    }
    f->got += (uint64_t)r;
    f->rec->echoed += (uint64_t)r;
    moved = 1;
  }
  return moved;
}

static int msgs_send(struct flow *f) {
  struct plan *p = f->p;
  int moved = 0;

  while (!f->closed && f->sent < p->stop_at) {
    size_t len = msg_len(p->key, f->sent);
    ptrdiff_t w;

    /* An aborting client keeps its unread echo within the window. */
    if (p->abort && f->out_bytes > 0 && f->out_bytes + len > ABORT_WINDOW)
      break;
    msg_fill(p->key, f->sent, f->wbuf);
    w = np_write(f->s, f->wbuf, len);
    if (w == NP_EAGAIN)
      break;
    if (w != (ptrdiff_t)len) {
      client_fail(f->c, __LINE__, "message %llu: write gave %s",
                  (unsigned long long)f->sent, np_errname((int)w));
      return 0;
    }
    f->sent++;
    f->out_bytes += len;
    moved = 1;
    if (p->abort && f->sent == p->stop_at)
      flow_close(f);
  }
  return moved;
}

static int msgs_recv(struct flow *f) {
  struct plan *p = f->p;
  int moved = 0;

  while (!f->closed && flow_reads(f)) {
    ptrdiff_t r = np_read(f->s, f->rbuf, MSG_MAX);

    if (r == NP_EAGAIN)
      break;
    if (r < 0 || !msg_matches(p->key, f->got, f->rbuf, (size_t)r)) {
      client_fail(f->c, __LINE__, "echo of message %llu: %s (%lld bytes)",
                  (unsigned long long)f->got,
                  r < 0 ? np_errname((int)r) : "wrong length or content",
                  (long long)r);
      return 0;
    }
    f->out_bytes -= (size_t)r;
    f->got++;
    f->rec->echoed += (uint64_t)r;
    moved = 1;
  }
  return moved;
}

/* The interest the flow waits with: reading while echo is due, writing
 * while the plan has more to send. */
static uint32_t flow_want(const struct flow *f) {
  uint32_t want = 0;

  if (flow_reads(f))
    want |= NP_READABLE;
  if (f->sent < f->p->stop_at)
    want |= NP_WRITABLE;
  return want;
}

/* Waits for a connect to finish (TCP, or a pipe that waited for a free
 * instance).  Returns 0, NP_ETIMEDOUT for a pipe whose wait ran out (to
 * be tried again), or -1 having failed the client. */
static int await_connected(struct flow *f, np_poll *poll) {
  while (!run_over(f->c->sk)) {
    np_event ev[4];
    int n = np_poll_wait(poll, ev, 4, 100), i, err;

    for (i = 0; i < n; i++) {
      if (!(ev[i].events & NP_WRITABLE))
        continue;
      err = np_stream_error(f->s);
      if (err == NP_ETIMEDOUT && !f->p->tcp)
        return err;
      if (err != 0) {
        client_fail(f->c, __LINE__, "connect: %s", np_errname(err));
        return -1;
      }
      return 0;
    }
  }
  client_fail(f->c, __LINE__, "connect never finished");
  return -1;
}

static int flow_connect(struct flow *f, np_poll *poll) {
  struct soak *sk = f->c->sk;
  uint64_t start = npt_now_ms();
  np_options o;
  int err;

  memset(&o, 0, sizeof(o));
  /* 256 clients share 4 instances, and whoever opens first wins: one
   * client may wait long while the others progress.  The server's
   * progress watch tells a stall from that. */
  o.flags = NP_OPT_WAIT_BUSY | (sk->v->message ? NP_OPT_MESSAGE : 0u);
  o.timeout_ms = CONNECT_SLICE_MS;
  /* Every accepted byte must arrive, however slow the run (under Wine a
   * closed stream may wait longer than the default linger for a server
   * that serves 256 others): the progress watch bounds the run. */
  o.linger_ms = -1;
  store_int(&f->c->phase, PHASE_CONNECT);
  do {
    err = np_connect(poll, f->p->tcp ? sk->tcp_addr : sk->pipe_addr, &o,
                     TOK_CLIENT, NP_WRITABLE, &f->s);
    /* Connected, or connecting: writable once the outcome is known. */
    if (err == 0 && (err = await_connected(f, poll)) != 0)
      np_close(f->s);
  } while (err == NP_ETIMEDOUT && !run_over(sk));
  if (npt_now_ms() - start > f->c->connect_max_ms)
    f->c->connect_max_ms = npt_now_ms() - start;
  if (err == -1)
    return -1;
  if (err != 0) {
    client_fail(f->c, __LINE__, "connect %s: %s", f->p->tcp ? "tcp" : "pipe",
                np_errname(err));
    return -1;
  }
  store_int(&f->c->phase, PHASE_STREAM);
  f->rec->started = 1;
  f->interest = NP_WRITABLE;
  return 0;
}

/* One connection: stream, check the echo, close (early if aborting). */
static void client_conn(struct client *c, np_poll *poll, int round,
                        unsigned char *wbuf, unsigned char *rbuf) {
  struct plan p;
  struct flow f;
  int message = c->sk->v->message;

  make_plan(c, round, &p);
  memset(&f, 0, sizeof(f));
  f.c = c;
  f.p = &p;
  f.rec = rec_of(c->sk, c->id, round);
  f.rec->tcp = p.tcp;
  f.rec->aborted = p.abort;
  f.rec->lazy = p.lazy;
  f.wbuf = wbuf;
  f.rbuf = rbuf;
  f.io.s = mix64(p.key ^ salt_);
  if (flow_connect(&f, poll) != 0)
    return;
  while (!f.closed && c->fail_line == 0) {
    int moved = message ? msgs_send(&f) : bytes_send(&f);
    uint32_t want;
    np_event ev[4];

    if (f.closed || c->fail_line != 0)
      break;
    moved |= message ? msgs_recv(&f) : bytes_recv(&f);
    if (c->fail_line != 0)
      break;
    if (f.sent == p.stop_at && f.got >= p.read_to) {
      flow_close(&f); /* everything sent and echoed */
      break;
    }
    if (moved)
      continue;
    want = flow_want(&f);
    if (run_over(c->sk)) {
      client_fail(c, __LINE__, "stalled at %llu/%llu sent, %llu echoed",
                  (unsigned long long)f.sent, (unsigned long long)p.total,
                  (unsigned long long)f.got);
      break;
    }
    if (want != f.interest) {
      np_stream_set_interest(f.s, TOK_CLIENT, want);
      f.interest = want;
    }
    /* No interest: a lazy client waits for the server to block, which
     * no event of its own tells. */
    np_poll_wait(poll, ev, 4, want != 0 ? 100 : 2);
  }
  if (!f.closed)
    flow_close(&f);
  if (p.abort)
    f.rec->aborted = f.sent < p.total || f.got < p.total;
}

/* Keeps the poller turning (closed streams may still be flushing) until
 * the server has seen the end of each of this client's streams. */
static void client_drain(struct client *c, np_poll *poll) {
  int round = 0;

  while (round < c->sk->rounds && !run_over(c->sk)) {
    struct rec *r = rec_of(c->sk, c->id, round);
    np_event ev[4];

    if (!r->started || r->short_stream || load_int(&r->done)) {
      round++;
      continue;
    }
    np_poll_wait(poll, ev, 4, 10);
  }
}

static void client_main(void *arg) {
  struct client *c = arg;
  struct soak *sk = c->sk;
  unsigned char *wbuf = malloc(65536), *rbuf = malloc(65536);
  np_poll *poll = NULL;
  int round, err;

  if (wbuf == NULL || rbuf == NULL) {
    client_fail(c, __LINE__, "out of memory");
  } else if ((err = np_poll_new(&poll)) != 0) {
    client_fail(c, __LINE__, "np_poll_new: %s", np_errname(err));
  } else {
    add_int(&sk->polls_live, 1);
    for (round = 0; round < sk->rounds && c->fail_line == 0; round++) {
      /* Arrive at random: a quarter of the connections wait a little. */
      if (rng_below(&c->rng, 4) == 0)
        npt_sleep_ms((int)rng_below(&c->rng, 3));
      if (run_over(sk))
        break;
      client_conn(c, poll, round, wbuf, rbuf);
    }
    store_int(&c->phase, PHASE_DRAIN);
    client_drain(c, poll);
    np_poll_free(poll);
    add_int(&sk->polls_live, -1);
  }
  free(wbuf);
  free(rbuf);
  store_int(&c->done, 1);
}

/* ---- the echo server ---------------------------------------------------- */

struct sconn {
  np_stream *s;
  uint32_t gen, interest;
  int tcp, drain, werr, bad;
  struct rec *rec;
  uint64_t key;
  unsigned char head[8];
  uint64_t units, bytes; /* bytes (messages) and bytes received */
  size_t start, len;     /* ring: unechoed bytes; message: its length */
  int pending;           /* message mode: buf holds a message to echo */
  unsigned char *buf;    /* echo ring, or the message to echo; kept */
};

struct server {
  struct soak *sk;
  np_poll *poll;
  np_listener *pipe_l, *tcp_l;
  struct sconn **conns;
  size_t nconns, cap, open;
  size_t *free_slots;
  size_t nfree;
  unsigned char *scratch;
  int idle_reported;
};

static uint64_t conn_token(size_t slot, uint32_t gen) {
  return (uint64_t)gen << 32 | (uint64_t)(slot + 16);
}

/* Finds the connection's record from its key: once, and only a valid
 * one.  Returns 0 or fails the server. */
static int claim(struct server *sv, struct sconn *k, uint64_t key) {
  struct soak *sk = sv->sk;
  uint64_t client = (key >> 24) & 0xffffffffu, round = key & 0xffffffu;

  if ((key & 0xff00000000000000u) != KEY_TAG || client >= CLIENTS ||
      round >= (uint64_t)sk->rounds) {
    server_fail(sk, __LINE__, "bad stream key %016llx",
                (unsigned long long)key);
    return -1;
  }
  k->key = key;
  k->rec = rec_of(sk, (int)client, (int)round);
  if (k->rec->claimed++) {
    server_fail(sk, __LINE__, "stream key %016llx seen twice",
                (unsigned long long)key);
    return -1;
  }
  return 0;
}

/* Checks n new bytes at data against the stream.  Returns 0 or -1. */
static int server_check(struct server *sv, struct sconn *k,
                        const unsigned char *data, size_t n) {
  size_t i, bad;

  for (i = 0; i < n && k->bytes + i < 8; i++)
    k->head[k->bytes + i] = data[i];
  if (k->rec == NULL && k->bytes + n >= 8 &&
      claim(sv, k, get_le64(k->head)) != 0)
    return -1;
  if (k->rec != NULL && (bad = stream_diff(k->key, k->bytes, data, n)) != n) {
    k->bad = 1;
    server_fail(sv->sk, __LINE__, "key %016llx: byte %llu differs",
                (unsigned long long)k->key,
                (unsigned long long)(k->bytes + bad));
    return -1;
  }
  k->bytes += n;
  k->units += n;
  return 0;
}

static int server_check_msg(struct server *sv, struct sconn *k,
                            const unsigned char *data, size_t n) {
  if (k->units == 0) {
    if (n != 8) {
      server_fail(sv->sk, __LINE__, "first message of %zu bytes", n);
      return -1;
    }
    if (claim(sv, k, get_le64(data)) != 0)
      return -1;
  } else if (!msg_matches(k->key, k->units, data, n)) {
    k->bad = 1;
    server_fail(sv->sk, __LINE__, "key %016llx: message %llu (%zu bytes)",
                (unsigned long long)k->key, (unsigned long long)k->units, n);
    return -1;
  }
  k->units++;
  k->bytes += n;
  return 0;
}

/* The stream ended (end is NP_EOF, the error, or 0 after a failure):
 * publish what the server saw and free the slot. */
static void server_end(struct server *sv, size_t slot, int end) {
  struct sconn *k = sv->conns[slot];

  sv->sk->last_progress = npt_now_ms();
  if (k->rec != NULL) {
    k->rec->srv_end = end;
    k->rec->srv_werr = k->werr;
    k->rec->srv_bad = k->bad;
    k->rec->srv_units = k->units;
    k->rec->srv_bytes = k->bytes;
    store_int(&k->rec->done, 1);
  } else {
    sv->sk->shorts++;
  }
  np_close(k->s);
  k->s = NULL;
  k->gen++;
  sv->open--;
  sv->free_slots[sv->nfree++] = slot;
}

/* The echo is dead (the peer stopped reading): keep reading to the end,
 * checking, so that every byte the peer sent is still accounted for. */
static void server_drain(struct sconn *k, ptrdiff_t err) {
  k->werr = (int)err;
  k->drain = 1;
  k->len = 0;
  k->pending = 0;
}

/* Byte mode: moves what can move without blocking.  Returns 0 while the
 * stream lives, or the code that ended it. */
static int step_bytes(struct server *sv, struct sconn *k) {
  for (;;) {
    int moved = 0;
    ptrdiff_t r;

    if (!k->drain && k->len > 0) {
      size_t n = RING - k->start < k->len ? RING - k->start : k->len;

      r = np_write(k->s, k->buf + k->start, n);
      if (r > 0) {
        k->start = (k->start + (size_t)r) % RING;
        k->len -= (size_t)r;
        moved = 1;
      } else if (r == NP_EAGAIN) {
        sv->sk->srv_eagain++;
        if (k->rec != NULL && !k->rec->srv_blocked)
          store_int(&k->rec->srv_blocked, 1);
      } else {
        server_drain(k, r);
      }
    }
    if (k->drain || k->len < RING) {
      size_t tail = (k->start + k->len) % RING;
      size_t room = k->drain ? RING : RING - k->len;
      unsigned char *to = k->drain ? sv->scratch : k->buf + tail;

      if (!k->drain && room > RING - tail)
        room = RING - tail;
      r = np_read(k->s, to, room);
      if (r > 0) {
        if (server_check(sv, k, to, (size_t)r) != 0)
          return -100;
        if (!k->drain)
          k->len += (size_t)r;
        moved = 1;
      } else if (r != NP_EAGAIN) {
        return (int)(r == 0 ? -100 : r);
      }
    }
    if (!moved)
      return 0;
    sv->sk->last_progress = npt_now_ms();
  }
}

/* Message mode: one message read, one echoed, in turn. */
static int step_msgs(struct server *sv, struct sconn *k) {
  for (;;) {
    ptrdiff_t r;

    if (k->pending) {
      r = np_write(k->s, k->buf, k->len);
      if (r == NP_EAGAIN) {
        sv->sk->srv_eagain++;
        return 0;
      }
      if (r == (ptrdiff_t)k->len)
        k->pending = 0;
      else
        server_drain(k, r < 0 ? r : NP_EIO);
      continue;
    }
    r = np_read(k->s, k->drain ? sv->scratch : k->buf, MSG_MAX);
    if (r == NP_EAGAIN)
      return 0;
    if (r < 0)
      return (int)r;
    sv->sk->last_progress = npt_now_ms();
    if (server_check_msg(sv, k, k->drain ? sv->scratch : k->buf, (size_t)r) !=
        0)
      return -100;
    if (!k->drain) {
      k->len = (size_t)r;
      k->pending = 1;
    }
  }
}

static void server_step(struct server *sv, size_t slot) {
  struct sconn *k = sv->conns[slot];
  int end = sv->sk->v->message ? step_msgs(sv, k) : step_bytes(sv, k);
  uint32_t want = NP_READABLE;

  if (end != 0) {
    server_end(sv, slot, end);
    return;
  }
  /* Level-triggered: ask only for what can be used, or the poller would
   * report a full ring as readable forever. */
  if (sv->sk->v->message ? k->pending : (!k->drain && k->len == RING))
    want = NP_WRITABLE;
  else if (!k->drain && k->len > 0)
    want |= NP_WRITABLE;
  if (want != k->interest) {
    np_stream_set_interest(k->s, conn_token(slot, k->gen), want);
    k->interest = want;
  }
}

static size_t server_slot(struct server *sv) {
  size_t slot;

  if (sv->nfree > 0)
    return sv->free_slots[--sv->nfree];
  if (sv->nconns == sv->cap) {
    sv->cap = sv->cap ? sv->cap * 2 : 64;
    sv->conns = realloc(sv->conns, sv->cap * sizeof(*sv->conns));
    sv->free_slots = realloc(sv->free_slots, sv->cap * sizeof(size_t));
    ck_assert_ptr_nonnull(sv->conns);
    ck_assert_ptr_nonnull(sv->free_slots);
  }
  slot = sv->nconns++;
  sv->conns[slot] = calloc(1, sizeof(struct sconn));
  ck_assert_ptr_nonnull(sv->conns[slot]);
  sv->conns[slot]->buf = malloc(RING > MSG_MAX ? RING : MSG_MAX);
  ck_assert_ptr_nonnull(sv->conns[slot]->buf);
  return slot;
}

static void server_accept(struct server *sv, np_listener *l, int tcp) {
  for (;;) {
    size_t slot = server_slot(sv);
    struct sconn *k = sv->conns[slot];
    uint32_t gen = k->gen;
    np_stream *s;
    int err = np_accept(l, conn_token(slot, gen), NP_READABLE, &s);

    if (err != 0) {
      sv->free_slots[sv->nfree++] = slot;
      /* A client that left before the accept is no failure. */
      if (err == NP_ECONNABORTED || err == NP_ECONNRESET) {
        sv->sk->accept_aborts++;
        continue;
      }
      if (err != NP_EAGAIN)
        server_fail(sv->sk, __LINE__, "accept: %s", np_errname(err));
      return;
    }
    memset(k, 0, offsetof(struct sconn, buf));
    k->s = s;
    k->gen = gen;
    k->tcp = tcp;
    k->interest = NP_READABLE;
    sv->sk->last_progress = npt_now_ms();
    sv->open++;
    sv->sk->connections++;
    server_step(sv, slot);
  }
}

static void server_event(struct server *sv, const np_event *ev) {
  size_t slot = (size_t)(ev->token & 0xffffffffu) - 16;
  uint32_t gen = (uint32_t)(ev->token >> 32);

  if (ev->token == TOK_PIPE_L)
    server_accept(sv, sv->pipe_l, 0);
  else if (ev->token == TOK_TCP_L)
    server_accept(sv, sv->tcp_l, 1);
  else if (slot < sv->nconns && sv->conns[slot]->s != NULL &&
           sv->conns[slot]->gen == gen)
    server_step(sv, slot);
}

static int clients_done(struct soak *sk) {
  int i, n = 0;

  for (i = 0; i < CLIENTS; i++)
    n += load_int(&sk->cl[i].done);
  return n;
}

/* Serves until every client is done and every stream ended, or until
 * nothing moved for STALL_MS. */
/* Says once, after 5 s without progress, what the clients are doing. */
static void report_idle(struct server *sv, uint64_t idle_ms) {
  static const char *names[] = {"idle", "connecting", "streaming", "draining"};
  int count[4] = {0, 0, 0, 0}, i, first[4] = {-1, -1, -1, -1};

  if (idle_ms < 5000 || sv->idle_reported)
    return;
  sv->idle_reported = 1;
  for (i = 0; i < CLIENTS; i++) {
    int ph = load_int(&sv->sk->cl[i].phase);

    if (load_int(&sv->sk->cl[i].done))
      continue;
    if (count[ph]++ == 0)
      first[ph] = i;
  }
  printf("soak %s: no progress for %llu ms; %zu streams open;",
         sv->sk->v->name, (unsigned long long)idle_ms, sv->open);
  for (i = 0; i < 4; i++)
    if (count[i] > 0)
      printf(" %s: %d (first: client %d)", names[i], count[i], first[i]);
  printf("\n");
  fflush(stdout);
}

static void server_run(struct server *sv) {
  struct soak *sk = sv->sk;

  while (sv->open > 0 || clients_done(sk) < CLIENTS) {
    np_event ev[64];
    int n, i;

    uint64_t now = npt_now_ms();

    if (now - sk->last_progress >= STALL_MS || now >= sk->deadline) {
      server_fail(sk, __LINE__, "%s: %zu streams open, %d clients done",
                  now >= sk->deadline ? "too slow" : "no progress", sv->open,
                  clients_done(sk));
      return;
    }
    report_idle(sv, now - sk->last_progress);
    n = np_poll_wait(sv->poll, ev, 64, 100);
    if (n < 0) {
      server_fail(sk, __LINE__, "np_poll_wait: %s", np_errname(n));
      return;
    }
    for (i = 0; i < n; i++)
      server_event(sv, &ev[i]);
  }
}

static void server_open(struct server *sv) {
  struct soak *sk = sv->sk;
  np_options o;

  memset(&o, 0, sizeof(o));
  /* A small backlog: most clients find the pipe busy and must wait. */
  o.backlog = 4;
  o.flags = sk->v->message ? NP_OPT_MESSAGE : 0u;
  o.write_limit = sk->v->message ? MSG_WLIMIT : SERVER_WLIMIT;
  o.linger_ms = -1; /* as for the clients, see flow_connect */
  ck_assert_int_eq(np_poll_new(&sv->poll), 0);
  npt_pipe_name(sk->pipe_addr, sizeof(sk->pipe_addr), "soak");
  ck_assert_int_eq(
      np_listen(sv->poll, sk->pipe_addr, &o, TOK_PIPE_L, &sv->pipe_l), 0);
  if (sk->v->tcp) {
    o.backlog = 128;
    ck_assert_int_eq(
        np_listen(sv->poll, "tcp:127.0.0.1:0", &o, TOK_TCP_L, &sv->tcp_l), 0);
    ck_assert_int_gt(
        np_listener_address(sv->tcp_l, sk->tcp_addr, sizeof(sk->tcp_addr)), 0);
  }
  sv->scratch = malloc(RING);
  ck_assert_ptr_nonnull(sv->scratch);
}

static void server_free(struct server *sv) {
  size_t i;

  np_listener_close(sv->pipe_l);
  np_listener_close(sv->tcp_l);
  np_poll_free(sv->poll);
  for (i = 0; i < sv->nconns; i++) {
    free(sv->conns[i]->buf);
    free(sv->conns[i]);
  }
  free(sv->conns);
  free(sv->free_slots);
  free(sv->scratch);
}

/* ---- the run ------------------------------------------------------------ */

/* Open descriptors (POSIX) or handles (Windows); -1 when unknown. */
static long open_handles(void) {
#ifdef _WIN32
  DWORD n = 0;

  if (!GetProcessHandleCount(GetCurrentProcess(), &n) || n == 0)
    return -1; /* Wine reports 0 */
  return (long)n;
#else
  DIR *d = opendir("/proc/self/fd");
  long n = 0;

  if (d == NULL)
    return -1;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
#endif
}

static long pipe_objects(void) {
#ifdef _WIN32
  return (long)np__pipe_live;
#else
  return 0; /* the descriptor count covers it */
#endif
}

static uint64_t soak_seed(void) {
  const char *env = getenv("NPT_SOAK_SEED");

  if (env != NULL && *env != '\0')
    return strtoull(env, NULL, 0);
  return (uint64_t)time(NULL) * 1000003u + npt_now_ms() % 1000u;
}

struct totals {
  uint64_t srv_bytes, echo_bytes, aborted, shorts, connect_max_ms;
  uint64_t lazy_pipes;
};

/* Every stream: the server saw exactly what np_write accepted, checked,
 * then a clean end. */
static void check_records(struct soak *sk, struct totals *t) {
  int c, round;

  for (c = 0; c < CLIENTS; c++) {
    for (round = 0; round < sk->rounds; round++) {
      struct rec *r = rec_of(sk, c, round);

      ck_assert_msg(r->started, "client %d round %d never connected", c,
                    round);
      if (r->short_stream) {
        t->shorts++;
        continue;
      }
      ck_assert_msg(r->done, "client %d round %d: no end at the server", c,
                    round);
      ck_assert_msg(r->srv_units == r->sent,
                    "client %d round %d (%s%s): sent %llu, server got %llu", c,
                    round, r->tcp ? "tcp" : "pipe",
                    r->aborted ? ", aborted" : "", (unsigned long long)r->sent,
                    (unsigned long long)r->srv_units);
      ck_assert_msg(r->srv_end == NP_EOF, "client %d round %d: ended by %s", c,
                    round, np_errname(r->srv_end));
      ck_assert_msg(r->aborted || r->srv_werr == 0,
                    "client %d round %d (%s%s): echo failed: %s after "
                    "%llu bytes, %llu echoed",
                    c, round, r->tcp ? "tcp" : "pipe", r->lazy ? ", lazy" : "",
                    np_errname(r->srv_werr), (unsigned long long)r->sent,
                    (unsigned long long)r->echoed);
      t->aborted += r->aborted != 0;
      /* A lazy client read its echo only after the server blocked. */
      t->lazy_pipes += r->lazy && !r->tcp && !sk->v->message;
      t->srv_bytes += r->srv_bytes;
      t->echo_bytes += r->echoed;
    }
  }
  ck_assert_msg(sk->shorts + sk->accept_aborts == t->shorts,
                "server saw %llu short streams, clients sent %llu",
                (unsigned long long)(sk->shorts + sk->accept_aborts),
                (unsigned long long)t->shorts);
}

/* Waits for every client thread to say it is done.  Returns how many
 * did; a thread still running after this is wedged. */
static int await_clients(struct soak *sk, uint64_t until) {
  int n;

  while ((n = clients_done(sk)) < CLIENTS && npt_now_ms() < until)
    npt_sleep_ms(10);
  return n;
}

/* Bytes a server stream (with the server's write limit) accepts while
 * its peer reads nothing: the kernel's, or Wine's, pipe buffer plus the
 * write limit.  Writes stop being accepted for good once it is full. */
static size_t measure_capacity(void) {
  unsigned char *buf = calloc(1, 65536);
  np_poll *p;
  np_listener *l;
  np_stream *c, *s;
  np_options o;
  char name[128];
  size_t total = 0;

  ck_assert_ptr_nonnull(buf);
  memset(&o, 0, sizeof(o));
  o.write_limit = SERVER_WLIMIT;
  npt_pipe_name(name, sizeof(name), "capacity");
  ck_assert_int_eq(np_poll_new(&p), 0);
  ck_assert_int_eq(np_listen(p, name, &o, 1, &l), 0);
  ck_assert_int_eq(np_connect(p, name, NULL, 2, 0, &c), 0);
  ck_assert(npt_wait_token(p, 1, NP_READABLE, 10000));
  ck_assert_int_eq(np_accept(l, 3, NP_WRITABLE, &s), 0);
  for (;;) {
    ptrdiff_t r = np_write(s, buf, 65536);

    if (r > 0) {
      total += (size_t)r;
      continue;
    }
    ck_assert_int_eq(r, NP_EAGAIN);
    /* Room comes back only while the pipe still takes bytes. */
    if (!npt_wait_token(p, 3, NP_WRITABLE, 1000))
      break;
  }
  np_close(s);
  np_close(c);
  np_listener_close(l);
  np_poll_free(p);
  free(buf);
  return total;
}

static void run_soak(const struct variant *v) {
  struct soak *sk = calloc(1, sizeof(*sk));
  struct server sv;
  npt_thread *t[CLIENTS];
  struct totals tot;
  uint64_t seed = soak_seed(), start = npt_now_ms();
  long handles, pipes;
  int i, done;

  ck_assert_ptr_nonnull(sk);
  sk->capacity = v->message ? 0 : measure_capacity();
  handles = open_handles();
  pipes = pipe_objects();
  printf("soak %s: seed=%llu (NPT_SOAK_SEED=%llu replays it)\n", v->name,
         (unsigned long long)seed, (unsigned long long)seed);
  fflush(stdout);
  salt_ = mix64(seed);
  sk->v = v;
  sk->rounds = v->rounds;
  sk->deadline = start + RUN_MS;
  sk->last_progress = start;
  sk->recs = calloc((size_t)CLIENTS * (size_t)sk->rounds, sizeof(*sk->recs));
  ck_assert_ptr_nonnull(sk->recs);
  memset(&sv, 0, sizeof(sv));
  sv.sk = sk;
  server_open(&sv);
  for (i = 0; i < CLIENTS; i++) {
    sk->cl[i].sk = sk;
    sk->cl[i].id = i;
    sk->cl[i].rng.s = mix64(seed ^ mix64((uint64_t)i + 1));
  }
  for (i = 0; i < CLIENTS; i++)
    t[i] = npt_thread_start(client_main, &sk->cl[i]);
  server_run(&sv);
  /* A stopped run ends every wait of a client within CONNECT_SLICE_MS. */
  done = await_clients(sk, npt_now_ms() + GRACE_MS);
  /* Wedged threads still use sk and the server's pipes: leak them. */
  ck_assert_msg(done == CLIENTS, "%d client threads wedged (%s)",
                CLIENTS - done, sk->srv_fail);
  for (i = 0; i < CLIENTS; i++)
    npt_thread_join(t[i]);
  server_free(&sv);
  ck_assert_msg(sk->srv_fail_line == 0, "server, line %d: %s",
                sk->srv_fail_line, sk->srv_fail);
  for (i = 0; i < CLIENTS; i++)
    ck_assert_msg(sk->cl[i].fail_line == 0, "client %d, line %d: %s", i,
                  sk->cl[i].fail_line, sk->cl[i].fail);
  memset(&tot, 0, sizeof(tot));
  check_records(sk, &tot);
  ck_assert_int_eq(load_int(&sk->polls_live), 0);
  ck_assert_int_eq(pipe_objects(), pipes);
  if (handles < 0)
    printf("soak %s: handle count unavailable (Wine reports 0): "
           "not compared\n",
           v->name);
  else
    ck_assert_int_eq(open_handles(), handles);
  for (i = 0; i < CLIENTS; i++)
    if (sk->cl[i].connect_max_ms > tot.connect_max_ms)
      tot.connect_max_ms = sk->cl[i].connect_max_ms;
  printf("soak %s: clients=%d connections=%llu rounds=%d "
         "bytes verified=%llu (server %llu, echo %llu) "
         "aborted streams checked=%llu short=%llu\n",
         v->name, CLIENTS, (unsigned long long)sk->connections, sk->rounds,
         (unsigned long long)(tot.srv_bytes + tot.echo_bytes),
         (unsigned long long)tot.srv_bytes, (unsigned long long)tot.echo_bytes,
         (unsigned long long)tot.aborted, (unsigned long long)tot.shorts);
  printf("soak %s: server writes refused (NP_EAGAIN)=%llu, lazy streams "
         "(pipe capacity %zu) that blocked the server=%llu, "
         "longest connect wait=%llums, time=%.1fs\n",
         v->name, (unsigned long long)sk->srv_eagain, sk->capacity,
         (unsigned long long)tot.lazy_pipes,
         (unsigned long long)tot.connect_max_ms,
         (double)(npt_now_ms() - start) / 1000.0);
  fflush(stdout);
  free(sk->recs);
  free(sk);
}

static const struct variant bytes_ = {"bytes", 0, 0, 8};
static const struct variant messages_ = {"messages", 1, 0, 3};
static const struct variant mixed_ = {"pipe+tcp", 0, 1, 4};

/* Byte streams over pipes: echo, aborts, every byte checked. */
START_TEST(test_soak_pipe_bytes) { run_soak(&bytes_); }
END_TEST

/* Message mode: every message's length and content checked. */
START_TEST(test_soak_pipe_messages) { run_soak(&messages_); }
END_TEST

/* Pipes and TCP on one server poller. */
START_TEST(test_soak_pipe_and_tcp) { run_soak(&mixed_); }
END_TEST

int main(void) {
  Suite *su = suite_create("soak");

  /* One case each, so that CK_RUN_CASE=bytes runs one variant. */
  tcase_add_test(npt_tcase(su, "bytes"), test_soak_pipe_bytes);
  tcase_add_test(npt_tcase(su, "messages"), test_soak_pipe_messages);
  tcase_add_test(npt_tcase(su, "mixed"), test_soak_pipe_and_tcp);
  return npt_run(su);
}
