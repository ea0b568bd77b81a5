/*
 * The npipe family, continued: connection rates (a server thread accepts,
 * the measuring thread connects) and the scale case (many idle ends on
 * one poller: memory per end and the cost of a wait).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bench-pipe.h"

#define SLOTS 256

/* ---- connection rates --------------------------------------------------- */

struct conn_server {
  np_poll *poll;
  np_listener *l;
  struct bench_ctl *ctl;
  int reply; /* read the request byte, answer, close at EOF */
  int err;
  np_stream *slot[SLOTS];
  int next;
};

static int free_slot(struct conn_server *sv) {
  int i;

  for (i = 0; i < SLOTS; i++) {
    int k = (sv->next + i) % SLOTS;

    if (sv->slot[k] == NULL) {
      sv->next = k + 1;
      return k;
    }
  }
  return -1;
}

static void accept_all(struct conn_server *sv) {
  for (;;) {
    np_stream *s;
    int k = free_slot(sv);
    int err = k < 0 ? NP_ENOMEM
                    : np_accept(sv->l, TOK_FIRST_FREE + (uint64_t)k,
                                NP_READABLE, &s);

    if (err == NP_EAGAIN)
      return;
    if (err != 0) {
      sv->err = err;
      return;
    }
    if (sv->reply)
      sv->slot[k] = s;
    else
      np_close(s);
  }
}

/* Reads the request, answers it once, closes at the client's EOF. */
static void serve(struct conn_server *sv, int k) {
  np_stream *s = sv->slot[k];
  char buf[16];
  ptrdiff_t n;

  while ((n = np_read(s, buf, sizeof(buf))) > 0)
    if (np_write(s, "y", 1) != 1)
      sv->err = NP_EIO;
  if (n != NP_EAGAIN) {
    np_close(s);
    sv->slot[k] = NULL;
  }
}

static void conn_server_thread(void *arg) {
  struct conn_server *sv = arg;
  np_event ev[64];
  int i, n;

  while (!bh_load(&sv->ctl->stop) && sv->err == 0) {
    n = np_poll_wait(sv->poll, ev, 64, NPB_WAIT_MS);
    if (n < 0)
      sv->err = n;
    for (i = 0; i < n; i++) {
      if (ev[i].token == TOK_LISTENER)
        accept_all(sv);
      else if (sv->slot[ev[i].token - TOK_FIRST_FREE] != NULL)
        serve(sv, (int)(ev[i].token - TOK_FIRST_FREE));
    }
  }
  for (i = 0; i < SLOTS; i++)
    np_close(sv->slot[i]);
}

/* One request/reply on a fresh client stream.  Returns 0 or NP_E*. */
static int request(struct npb_end *c) {
  double until = bh_now() + BENCH_SETUP_S;
  ptrdiff_t n;
  char b;

  while ((n = np_write(c->s, "x", 1)) == NP_EAGAIN)
    if (npb_wait(c, NP_READABLE | NP_WRITABLE) != 0 || bh_now() > until)
      return NP_ETIMEDOUT;
  if (n != 1)
    return n < 0 ? (int)n : NP_EIO;
  while ((n = np_read(c->s, &b, 1)) == NP_EAGAIN)
    if (npb_wait(c, NP_READABLE) != 0 || bh_now() > until)
      return NP_ETIMEDOUT;
  return n == 1 ? 0 : n < 0 ? (int)n : NP_EIO;
}

/* A connect that found the server busy completes in the background:
 * waits for it, so that only real connections are counted.  A zero-length
 * write says NP_EAGAIN only while connecting (no system call).  Returns 0
 * or NP_E*. */
static int connected(struct npb_end *c) {
  double until = bh_now() + BENCH_SETUP_S;

  while (np_write(c->s, NULL, 0) == NP_EAGAIN)
    if (npb_wait(c, NP_WRITABLE) != 0 || bh_now() > until)
      return NP_ETIMEDOUT;
  return np_stream_error(c->s);
}

static int connect_loop(struct npb_end *c, const char *addr, int reply,
                        struct bench_ctl *ctl, double seconds, double *rate) {
  uint32_t interest = reply ? NP_READABLE : 0;
  double now, count = 0;
  np_event ev[8];
  np_options o;
  int err;

  npb_connect_opts(&o);
  bench_ctl_start(ctl, seconds);
  do {
    err = np_connect(c->poll, addr, &o, TOK_CLIENT, interest, &c->s);
    if (err != 0)
      return err;
    c->interest = interest;
    err = reply ? request(c) : connected(c);
    np_close(c->s);
    c->s = NULL;
    if (err != 0)
      return err;
    /* Collect what the close left behind, as an event loop would. */
    if ((err = np_poll_wait(c->poll, ev, 8, 0)) < 0)
      return err;
    count++;
  } while ((now = bh_now()) < ctl->until);
  *rate = count / (now - ctl->t0);
  return 0;
}

int npb_run_connect(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  struct conn_server sv;
  struct npb_end c = {NULL, NULL, TOK_CLIENT, 0};
  char addr[300];
  bh_thread *t;
  int err;

  memset(&sv, 0, sizeof(sv));
  sv.ctl = &ctl;
  sv.reply = w->kind == BENCH_CONNRR;
  if ((err = np_poll_new(&sv.poll)) != 0)
    return err;
  if ((err = np_poll_new(&c.poll)) != 0 ||
      (err = npb_listen(sv.poll, w->tcp, TOK_LISTENER, addr, sizeof(addr),
                        &sv.l)) != 0) {
    np_poll_free(c.poll);
    np_poll_free(sv.poll);
    return err;
  }
  t = bh_thread_start(conn_server_thread, &sv);
  err = connect_loop(&c, addr, sv.reply, &ctl, w->seconds, &r->v[0]);
  bh_store(&ctl.stop, 1);
  np_poll_wake(sv.poll);
  bh_thread_join(t);
  np_listener_close(sv.l);
  np_poll_free(sv.poll);
  np_poll_free(c.poll);
  return err != 0 ? err : sv.err;
}

/* ---- scale -------------------------------------------------------------- */

struct scale {
  np_poll *poll;
  np_listener *l;
  char addr[300];
  np_stream **srv, **cli; /* pair i: tokens TOK_FIRST_FREE + 2i, + 2i+1 */
  int pairs;
};

static int add_pair(struct scale *sc, int i) {
  uint64_t tok = TOK_FIRST_FREE + 2 * (uint64_t)i;
  double until = bh_now() + BENCH_SETUP_S;
  np_event ev[64];
  np_options o;
  int err;

  npb_connect_opts(&o);
  err = np_connect(sc->poll, sc->addr, &o, tok + 1, NP_READABLE, &sc->cli[i]);
  while (err == 0) {
    err = np_accept(sc->l, tok, NP_READABLE, &sc->srv[i]);
    if (err != NP_EAGAIN)
      break;
    err = bh_now() > until ? NP_ETIMEDOUT : np_poll_wait(sc->poll, ev, 64, 5);
    err = err > 0 ? 0 : err;
  }
  return err;
}

/* Waits for pair i's server end to be reported readable. */
static int wait_readable(struct scale *sc, int i) {
  uint64_t tok = TOK_FIRST_FREE + 2 * (uint64_t)i;
  double until = bh_now() + BENCH_SETUP_S;
  np_event ev[64];
  int k, n;

  for (;;) {
    n = np_poll_wait(sc->poll, ev, 64, NPB_WAIT_MS);
    if (n < 0)
      return n;
    for (k = 0; k < n; k++)
      if (ev[k].token == tok && (ev[k].events & NP_READABLE))
        return 0;
    if (bh_now() > until)
      return NP_ETIMEDOUT;
  }
}

/* Microseconds per cycle of: 1 byte written to pair 0's client end, the
 * wait that reports its server end, the read (and the NP_EAGAIN that
 * clears the readiness), for `seconds`.  One pair is active; every other
 * end stays registered and idle, so what grows with their number is the
 * poller's cost, not the cache misses of touching other sockets. */
static int wait_cycles(struct scale *sc, double seconds, double *us) {
  double t0 = bh_now(), now, count = 0;
  char buf[16];
  int err = 0;

  do {
    if (np_write(sc->cli[0], "x", 1) != 1 ||
        (err = wait_readable(sc, 0)) != 0 ||
        np_read(sc->srv[0], buf, sizeof(buf)) != 1 ||
        np_read(sc->srv[0], buf, sizeof(buf)) != NP_EAGAIN)
      return err != 0 ? err : NP_EIO;
    count++;
  } while ((now = bh_now()) < t0 + seconds);
  *us = (now - t0) / count * 1e6;
  return 0;
}

static int scale_open(struct scale *sc, int pairs) {
  int err;

  memset(sc, 0, sizeof(*sc));
  sc->pairs = pairs;
  sc->srv = malloc(sizeof(*sc->srv) * (size_t)pairs);
  sc->cli = malloc(sizeof(*sc->cli) * (size_t)pairs);
  if (sc->srv == NULL || sc->cli == NULL)
    return NP_ENOMEM;
  /* Touched now, so that the arrays are not part of the delta. */
  memset(sc->srv, 0, sizeof(*sc->srv) * (size_t)pairs);
  memset(sc->cli, 0, sizeof(*sc->cli) * (size_t)pairs);
  if ((err = np_poll_new(&sc->poll)) != 0)
    return err;
  return npb_listen(sc->poll, 0, TOK_LISTENER, sc->addr, sizeof(sc->addr),
                    &sc->l);
}

/* Lets pending completions settle (reads armed on the new ends). */
static void settle(struct scale *sc) {
  np_event ev[64];
  int i;

  for (i = 0; i < 4; i++)
    np_poll_wait(sc->poll, ev, 64, 10);
}

int npb_run_scale(const struct bench_work *w, struct bench_result *r) {
  enum { FEW = 5 }; /* pairs: 10 registered ends */
  int64_t c0, r0, c1, r1;
  struct scale sc;
  double t0, lent0;
  int i, err, pairs = w->ends / 2;

  bh_raise_nofile();
  if ((err = scale_open(&sc, pairs)) != 0)
    return err;
  for (i = 0; i < FEW && err == 0; i++)
    err = add_pair(&sc, i);
  if (err != 0)
    return err;
  settle(&sc);
  /* The first cycles warm caches and buffers up: not measured. */
  if ((err = wait_cycles(&sc, w->seconds / 4, &r->v[SCALE_WAIT10])) != 0 ||
      (err = wait_cycles(&sc, w->seconds, &r->v[SCALE_WAIT10])) != 0)
    return err;
  settle(&sc);
  bh_process_memory(&c0, &r0);
  lent0 = npb_pool_lent(sc.poll);
  t0 = bh_now();
  for (i = FEW; i < pairs && err == 0; i++)
    err = add_pair(&sc, i);
  if (err != 0)
    return err;
  r->v[SCALE_CREATE] = (bh_now() - t0) / (pairs - FEW) * 1e6;
  settle(&sc);
  bh_process_memory(&c1, &r1);
  r->v[SCALE_COMMIT] = (double)(c1 - c0) / (2.0 * (pairs - FEW));
  r->v[SCALE_RSS] = (double)(r1 - r0) / (2.0 * (pairs - FEW));
  r->v[SCALE_POOL] = (npb_pool_lent(sc.poll) - lent0) / (2.0 * (pairs - FEW));
  /* The process exits after this one run: the ends are left open for
   * the operating system to reclaim, which costs nothing measured. */
  return wait_cycles(&sc, w->seconds, &r->v[SCALE_WAITN]);
}
