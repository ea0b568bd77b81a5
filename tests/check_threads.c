/*
 * Many threads, one poller: the thread-pool model of npipe(7) "Threads".
 *
 * The pool test: THREADS threads wait on one server poller and serve
 * CLIENTS clients with NP_ONESHOT interest.  Each stream carries a flag
 * that a thread sets (atomically) while it holds the stream's report:
 * finding it set means one report reached two threads at once.  Every
 * stream is closed by a thread other than the one that accepted it, and
 * the listener is re-armed by whichever thread took its report.  The
 * clients (the test's main thread, on a poller of their own) check every
 * byte of their echo.
 *
 * Threads never call ck_assert (Check runs without fork under Wine):
 * they count failures for the main thread, and every wait is bounded.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "internal.h" /* np__poll_core: how many threads are in the OS wait */

#define THREADS 4
#define CLIENTS 256
#define IN_FLIGHT 48   /* clients connected at once */
#define PAYLOAD_MIN 1000
#define PAYLOAD_SPREAD 7000
#define ECHO_BUF 4096
#define RUN_MS 120000  /* a pool run that takes this long has hung */
#define EVENT_MS 10000 /* a report that takes this long is not coming */

static int load(const int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static int add(int *p, int v) {
  return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

/* ---- the server: a pool of threads on one poller --------------------- */

enum { CONN_FREE, CONN_OPEN, CONN_ENDED, CONN_CLOSING, CONN_CLOSED };

struct conn {
  np_stream *s;
  int held;     /* a thread holds this stream's report */
  int state;    /* CONN_* */
  int acceptor; /* the worker that accepted it */
  unsigned char buf[ECHO_BUF];
  size_t off, len; /* echo bytes read and not yet written */
};

struct pool {
  np_poll *poll;
  np_listener *l;
  struct conn conns[CLIENTS];
  int accepted;
  int stop;
  /* What the workers found. */
  int failures;       /* an unexpected error code */
  int overlaps;       /* a report given to a second thread meanwhile */
  int stale;          /* a report for a stream already ended or closed */
  int closed;         /* streams closed */
  int closed_by_other; /* ... by a thread that did not accept them */
  int handled[THREADS]; /* stream reports each thread took */
};

struct worker {
  struct pool *pool;
  int id;
};

#define LISTENER_TOKEN 0
#define ONESHOT_IN (NP_READABLE | NP_ONESHOT)

static void take_connections(struct pool *p, int me) {
  for (;;) {
    np_stream *s;
    int i = load(&p->accepted);
    /* Accepted paused, and armed once its slot is filled in: armed at
     * once, its first report could reach another thread first. */
    int err = np_accept(p->l, 0, 0, &s);

    if (err == NP_EAGAIN)
      break;
    if (err != 0 || i >= CLIENTS) {
      add(&p->failures, 1); /* an error, or more connections than clients */
      if (err == 0)
        np_close(s);
      break;
    }
    p->conns[i].s = s;
    p->conns[i].acceptor = me;
    store(&p->conns[i].state, CONN_OPEN);
    store(&p->accepted, i + 1);
    if (np_stream_set_interest(s, (uint64_t)i + 1, ONESHOT_IN) != 0)
      add(&p->failures, 1);
  }
  if (np_listener_set_interest(p->l, LISTENER_TOKEN, ONESHOT_IN) != 0)
    add(&p->failures, 1);
}

/* Echoes what the stream has; returns the interest to re-arm with, or 0
 * when the stream ended. */
static uint32_t echo(struct pool *p, struct conn *c) {
  for (;;) {
    ptrdiff_t n;

    if (c->off < c->len) {
      n = np_write(c->s, c->buf + c->off, c->len - c->off);
      if (n == NP_EAGAIN)
        return NP_WRITABLE | NP_ONESHOT;
      if (n <= 0) {
        add(&p->failures, 1);
        return 0;
      }
      c->off += (size_t)n;
      continue;
    }
    n = np_read(c->s, c->buf, sizeof(c->buf));
    if (n == NP_EAGAIN)
      return ONESHOT_IN;
    if (n == NP_EOF)
      return 0;
    if (n <= 0) {
      add(&p->failures, 1);
      return 0;
    }
    c->off = 0;
    c->len = (size_t)n;
  }
}

static void serve_stream(struct pool *p, int me, uint64_t token) {
  struct conn *c;
  uint32_t again;

  if (token == 0 || token > (uint64_t)load(&p->accepted)) {
    add(&p->failures, 1);
    return;
  }
  c = &p->conns[token - 1];
  if (__atomic_exchange_n(&c->held, 1, __ATOMIC_SEQ_CST) != 0) {
    add(&p->overlaps, 1);
    return;
  }
  add(&p->handled[me], 1);
  if (load(&c->state) != CONN_OPEN) {
    add(&p->stale, 1);
    store(&c->held, 0);
    return;
  }
  again = echo(p, c);
  if (again == 0) {
    /* Left disarmed for a thread other than its acceptor to close. */
    store(&c->state, CONN_ENDED);
    store(&c->held, 0);
    return;
  }
  /* Let go before re-arming: from then on another thread may hold it. */
  store(&c->held, 0);
  if (np_stream_set_interest(c->s, token, again) != 0)
    add(&p->failures, 1);
}

/* Closes ended streams that another worker accepted. */
static void close_others(struct pool *p, int me) {
  int i, n = load(&p->accepted);

  for (i = 0; i < n; i++) {
    struct conn *c = &p->conns[i];
    int ended = CONN_ENDED;

    if (c->acceptor == me ||
        !__atomic_compare_exchange_n(&c->state, &ended, CONN_CLOSING, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      continue;
    np_close(c->s);
    store(&c->state, CONN_CLOSED);
    add(&p->closed_by_other, 1);
    add(&p->closed, 1);
  }
}

static void worker_main(void *arg) {
  struct worker *w = arg;
  struct pool *p = w->pool;
  uint64_t deadline = npt_now_ms() + RUN_MS;

  while (!load(&p->stop) && npt_now_ms() < deadline) {
    np_event evs[2];
    int i, n;

    close_others(p, w->id);
    n = np_poll_wait(p->poll, evs, 2, 20);
    if (n < 0) {
      add(&p->failures, 1);
      break;
    }
    for (i = 0; i < n; i++) {
      if (evs[i].token == LISTENER_TOKEN)
        take_connections(p, w->id);
      else
        serve_stream(p, w->id, evs[i].token);
    }
  }
}

/* ---- the clients: the main thread, on a poller of its own ------------ */

struct client {
  np_stream *s;
  size_t len, sent, got;
  int done;
};

static size_t payload_len(int i) {
  return PAYLOAD_MIN + (size_t)(i * 977) % PAYLOAD_SPREAD;
}

static unsigned char payload_byte(int i, size_t k) {
  return (unsigned char)(i * 31 + k * 7 + (k >> 8));
}

static void client_start(np_poll *cp, const char *address, int i,
                         struct client *c) {
  np_options o = {0};
  int err;

  o.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 30000;
  c->len = payload_len(i);
  c->sent = c->got = 0;
  c->done = 0;
  err = np_connect(cp, address, &o, (uint64_t)i, NP_READABLE | NP_WRITABLE,
                   &c->s);
  ck_assert_msg(err == 0, "client %d: connect: %s", i, np_errname(err));
}

/* Moves client i on; returns 1 when it got its whole echo. */
static int client_step(int i, struct client *c, uint32_t events) {
  unsigned char buf[ECHO_BUF];

  ck_assert_msg((events & NP_ERR) == 0, "client %d: %s", i,
                np_errname(np_stream_error(c->s)));
  while (c->sent < c->len) {
    unsigned char out[ECHO_BUF];
    size_t k, n = c->len - c->sent < sizeof(out) ? c->len - c->sent
                                                 : sizeof(out);
    ptrdiff_t w;

    for (k = 0; k < n; k++)
      out[k] = payload_byte(i, c->sent + k);
    w = np_write(c->s, out, n);
    if (w == NP_EAGAIN)
      break;
    ck_assert_msg(w > 0, "client %d: write: %s", i, np_errname((int)w));
    c->sent += (size_t)w;
    if (c->sent == c->len)
      ck_assert_int_eq(np_stream_set_interest(c->s, (uint64_t)i, NP_READABLE),
                       0);
  }
  for (;;) {
    ptrdiff_t n = np_read(c->s, buf, sizeof(buf));
    ptrdiff_t k;

    if (n == NP_EAGAIN)
      return 0;
    ck_assert_msg(n > 0, "client %d: read: %s after %zu of %zu bytes", i,
                  np_errname((int)n), c->got, c->len);
    ck_assert_msg(c->got + (size_t)n <= c->len, "client %d: too much echo",
                  i);
    /* One assertion per read: each is a system call under Check. */
    for (k = 0; k < n && buf[k] == payload_byte(i, c->got + (size_t)k); k++)
      ;
    ck_assert_msg(k == n, "client %d: byte %zu differs", i,
                  c->got + (size_t)k);
    c->got += (size_t)n;
    if (c->got == c->len)
      return 1;
  }
}

static void run_clients(const char *address) {
  static struct client cl[CLIENTS];
  np_poll *cp;
  int next = 0, live = 0, finished = 0;
  uint64_t deadline = npt_now_ms() + RUN_MS;

  ck_assert_int_eq(np_poll_new(&cp), 0);
  while (finished < CLIENTS) {
    np_event evs[64];
    int i, n;

    while (live < IN_FLIGHT && next < CLIENTS) {
      client_start(cp, address, next, &cl[next]);
      next++;
      live++;
    }
    ck_assert_msg(npt_now_ms() < deadline, "clients: %d of %d finished",
                  finished, CLIENTS);
    n = np_poll_wait(cp, evs, 64, 100);
    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++) {
      struct client *c = &cl[evs[i].token];

      if (c->done || !client_step((int)evs[i].token, c, evs[i].events))
        continue;
      c->done = 1;
      np_close(c->s);
      live--;
      finished++;
    }
  }
  ck_assert_int_eq(np_poll_flush(cp, 10000), 0);
  np_poll_free(cp);
}

static void run_pool(const char *address, const np_options *lopts) {
  static struct pool p;
  struct worker w[THREADS];
  npt_thread *t[THREADS];
  char actual[128];
  uint64_t deadline;
  int i, total = 0, busy_threads = 0;

  memset(&p, 0, sizeof(p));
  ck_assert_int_eq(np_poll_new(&p.poll), 0);
  ck_assert_int_eq(
      np_listen(p.poll, address, lopts, LISTENER_TOKEN, &p.l), 0);
  ck_assert_int_eq(np_listener_set_interest(p.l, LISTENER_TOKEN, ONESHOT_IN),
                   0);
  ck_assert_int_gt(np_listener_address(p.l, actual, sizeof(actual)), 0);
  for (i = 0; i < THREADS; i++) {
    w[i].pool = &p;
    w[i].id = i;
    t[i] = npt_thread_start(worker_main, &w[i]);
  }
  run_clients(actual);
  /* Every client has its echo; the server sees each end and closes it. */
  deadline = npt_now_ms() + RUN_MS;
  while (load(&p.closed) < CLIENTS && load(&p.failures) == 0 &&
         npt_now_ms() < deadline)
    npt_sleep_ms(5);
  store(&p.stop, 1);
  for (i = 0; i < THREADS; i++)
    npt_thread_join(t[i]);
  for (i = 0; i < THREADS; i++) {
    total += p.handled[i];
    busy_threads += p.handled[i] > 0;
  }
  printf("threads: %s: %d reports over %d threads (%d %d %d %d)\n", address,
         total, busy_threads, p.handled[0], p.handled[1], p.handled[2],
         p.handled[3]);
  ck_assert_int_eq(p.failures, 0);
  ck_assert_int_eq(p.overlaps, 0);
  ck_assert_int_eq(p.stale, 0);
  ck_assert_int_eq(p.accepted, CLIENTS);
  ck_assert_int_eq(p.closed, CLIENTS);
  ck_assert_int_eq(p.closed_by_other, CLIENTS);
  np_listener_close(p.l);
  np_poll_free(p.poll);
}

START_TEST(test_pool_oneshot_pipes) {
  char name[96];
  np_options o = {0};

  o.backlog = 16;
  npt_pipe_name(name, sizeof(name), "pool");
  run_pool(name, &o);
}
END_TEST

START_TEST(test_pool_oneshot_tcp) {
  np_options o = {0};

  o.backlog = 128;
  run_pool("tcp:127.0.0.1:0", &o);
}
END_TEST

/* ---- waiting threads are woken for work that appears without the OS -- */

struct waiters {
  np_poll *poll;
  uint64_t token;
  int reports; /* reports for token */
  int other;   /* reports for anything else */
  int failures;
  int stop, exited;
};

static void waiter_main(void *arg) {
  struct waiters *ws = arg;

  while (!load(&ws->stop)) {
    np_event evs[4];
    int i, n = np_poll_wait(ws->poll, evs, 4, -1);

    if (n < 0) {
      add(&ws->failures, 1);
      break;
    }
    for (i = 0; i < n; i++)
      add(evs[i].token == ws->token ? &ws->reports : &ws->other, 1);
  }
  add(&ws->exited, 1);
}

/* Starts n threads blocked in np_poll_wait(-1) on ws->poll, and returns
 * once every one of them is inside the OS wait. */
static void waiters_start(struct waiters *ws, npt_thread **t, int n) {
  struct np__poll_core *core = np__poll_core(ws->poll);
  uint64_t deadline = npt_now_ms() + EVENT_MS;
  unsigned in_os = 0;
  int i;

  for (i = 0; i < n; i++)
    t[i] = npt_thread_start(waiter_main, ws);
  while (in_os < (unsigned)n && npt_now_ms() < deadline) {
    npt_sleep_ms(1);
    np__core_lock(core);
    in_os = core->os_waiters;
    np__lock_release(&core->lock);
  }
  ck_assert_uint_eq(in_os, (unsigned)n);
}

static void waiters_stop(struct waiters *ws, npt_thread **t, int n) {
  uint64_t deadline = npt_now_ms() + EVENT_MS;
  int i;

  store(&ws->stop, 1);
  /* A wake-up ends one thread's wait. */
  while (load(&ws->exited) < n && npt_now_ms() < deadline) {
    ck_assert_int_eq(np_poll_wake(ws->poll), 0);
    npt_sleep_ms(1);
  }
  ck_assert_int_eq(load(&ws->exited), n);
  for (i = 0; i < n; i++)
    npt_thread_join(t[i]);
}

static int wait_reports(struct waiters *ws, int want) {
  uint64_t deadline = npt_now_ms() + EVENT_MS;

  while (load(&ws->reports) < want && npt_now_ms() < deadline)
    npt_sleep_ms(1);
  return load(&ws->reports);
}

/* A stream re-armed by a thread that does not wait, while every waiting
 * thread sleeps in the OS: the data is there already and no OS
 * notification will come, so only the core can hand the report over. */
START_TEST(test_rearm_wakes_a_waiting_thread) {
  struct waiters ws = {0};
  npt_thread *t[2];
  np_poll *cp;
  np_listener *l;
  np_stream *c, *s;
  char name[96];

  npt_pipe_name(name, sizeof(name), "rearm");
  ck_assert_int_eq(np_poll_new(&ws.poll), 0);
  ck_assert_int_eq(np_poll_new(&cp), 0);
  ck_assert_int_eq(np_listen(ws.poll, name, NULL, 1, &l), 0);
  ck_assert_int_eq(np_connect(cp, name, NULL, 2, 0, &c), 0);
  ck_assert_uint_ne(npt_wait_token(ws.poll, 1, NP_READABLE, EVENT_MS), 0);
  ck_assert_int_eq(np_accept(l, 7, ONESHOT_IN, &s), 0);
  ck_assert_int_eq(np_write(c, "ping", 4), 4);
  /* Reported once here, then disarmed with the bytes still unread. */
  ck_assert_uint_ne(npt_wait_token(ws.poll, 7, NP_READABLE, EVENT_MS), 0);
  ws.token = 7;
  waiters_start(&ws, t, 2);
  ck_assert_int_eq(np_stream_set_interest(s, 7, ONESHOT_IN), 0);
  ck_assert_int_eq(wait_reports(&ws, 1), 1);
  waiters_stop(&ws, t, 2);
  ck_assert_int_eq(ws.reports, 1); /* oneshot: one thread, once */
  ck_assert_int_eq(ws.failures, 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  np_poll_free(cp);
  np_poll_free(ws.poll);
}
END_TEST

/* A connect that waits runs on the poller's timers: armed by a thread
 * that does not wait, while the waiting threads sleep with no timer. */
START_TEST(test_timer_wakes_a_waiting_thread) {
  struct waiters ws = {0};
  npt_thread *t[2];
  np_options o = {0};
  np_stream *s;
  char name[96];
  uint64_t start;

  npt_pipe_name(name, sizeof(name), "absent");
  ck_assert_int_eq(np_poll_new(&ws.poll), 0);
  ws.token = 9;
  waiters_start(&ws, t, 2);
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 200;
  start = npt_now_ms();
  ck_assert_int_eq(
      np_connect(ws.poll, name, &o, 9, NP_WRITABLE | NP_ONESHOT, &s), 0);
  ck_assert_int_eq(wait_reports(&ws, 1), 1);
  ck_assert_uint_ge(npt_now_ms() - start, 150);
  waiters_stop(&ws, t, 2);
  ck_assert_int_eq(ws.reports, 1);
  ck_assert_int_eq(np_stream_error(s), NP_ETIMEDOUT);
  np_close(s);
  np_poll_free(ws.poll);
}
END_TEST

/* Once np_close returns, no wait reports the token, although other
 * threads wait on the poller meanwhile and the stream was ready. */
START_TEST(test_close_while_others_wait) {
  struct waiters ws = {0};
  npt_thread *t[2];
  np_poll *cp;
  np_listener *l;
  np_stream *c, *s;
  char name[96];
  int round;

  npt_pipe_name(name, sizeof(name), "close");
  ck_assert_int_eq(np_poll_new(&ws.poll), 0);
  ck_assert_int_eq(np_poll_new(&cp), 0);
  ck_assert_int_eq(np_listen(ws.poll, name, NULL, 1, &l), 0);
  ws.token = 5;
  for (round = 0; round < 20; round++) {
    int before;

    ck_assert_int_eq(np_listener_set_interest(l, 1, NP_READABLE), 0);
    ck_assert_int_eq(np_connect(cp, name, NULL, 2, 0, &c), 0);
    ck_assert_uint_ne(npt_wait_token(ws.poll, 1, NP_READABLE, EVENT_MS), 0);
    ck_assert_int_eq(np_listener_set_interest(l, 1, 0), 0);
    ck_assert_int_eq(np_accept(l, 5, NP_READABLE, &s), 0);
    store(&ws.stop, 0);
    store(&ws.exited, 0);
    waiters_start(&ws, t, 2);
    /* Level-triggered and readable: reported to the waiters until
     * closed, then never again. */
    ck_assert_int_eq(np_write(c, "x", 1), 1);
    ck_assert_int_ge(wait_reports(&ws, 1), 1);
    np_close(s);
    before = load(&ws.reports);
    waiters_stop(&ws, t, 2);
    /* A report copied out before the close may still be counted after
     * it returned; none may come from a wait that began after it. */
    ck_assert_int_le(load(&ws.reports) - before, 2);
    store(&ws.reports, 0);
    ck_assert_int_eq(np_poll_wait(ws.poll, (np_event[4]){{0}}, 4, 0), 0);
    np_close(c);
  }
  ck_assert_int_eq(ws.failures, 0);
  np_listener_close(l);
  np_poll_free(cp);
  np_poll_free(ws.poll);
}
END_TEST

/* ---- np_accept_to: connections handed to another poller -------------- */

/* Waits for token's bits on target while also draining lp, which must
 * never report token.  Draining lp matters under Wine only: without
 * FileReplaceCompletionInformation a pipe's packets keep arriving at the
 * listener's port, which forwards them (npipe(7), "Threads"). */
static uint32_t wait_target(np_poll *lp, np_poll *target, uint64_t token,
                            uint32_t bits) {
  uint64_t deadline = npt_now_ms() + EVENT_MS;

  while (npt_now_ms() < deadline) {
    np_event ev[4];
    uint32_t got;
    int i, n = np_poll_wait(lp, ev, 4, 0);

    ck_assert_int_ge(n, 0);
    for (i = 0; i < n; i++)
      ck_assert_msg(ev[i].token != token, "the listener's poller reported it");
    if ((got = npt_wait_token(target, token, bits, 10)) != 0)
      return got;
  }
  return 0;
}

static void accept_to_case(const char *address, const np_options *o) {
  np_poll *lp, *target, *cp;
  np_listener *l;
  np_stream *c, *s;
  np_event ev[4];
  char actual[128], buf[8];

  ck_assert_int_eq(np_poll_new(&lp), 0);
  ck_assert_int_eq(np_poll_new(&target), 0);
  ck_assert_int_eq(np_poll_new(&cp), 0);
  ck_assert_int_eq(np_listen(lp, address, o, 1, &l), 0);
  ck_assert_int_gt(np_listener_address(l, actual, sizeof(actual)), 0);
  ck_assert_int_eq(np_connect(cp, actual, NULL, 2, NP_WRITABLE, &c), 0);
  ck_assert_uint_ne(npt_wait_token(cp, 2, NP_WRITABLE, EVENT_MS), 0);
  ck_assert_int_eq(np_stream_set_interest(c, 2, NP_READABLE), 0);
  ck_assert_uint_ne(npt_wait_token(lp, 1, NP_READABLE, EVENT_MS), 0);
  ck_assert_int_eq(np_accept_to(l, NULL, 3, NP_READABLE, &s), NP_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(np_accept_to(l, target, 3, NP_READABLE, &s), 0);
  /* Only the stream should speak on the listener's poller from now. */
  ck_assert_int_eq(np_listener_set_interest(l, 1, 0), 0);
  ck_assert_int_eq(np_write(c, "hello", 5), 5);
  ck_assert_uint_eq(wait_target(lp, target, 3, NP_READABLE), NP_READABLE);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  ck_assert_int_eq(np_write(s, "back", 4), 4);
  ck_assert_uint_ne(npt_wait_token(cp, 2, NP_READABLE, EVENT_MS), 0);
  ck_assert_int_eq(np_read(c, buf, sizeof(buf)), 4);
  /* The listener's poller never reports the stream's token. */
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  ck_assert_int_eq(np_write(c, "more", 4), 4);
  ck_assert_uint_eq(wait_target(lp, target, 3, NP_READABLE), NP_READABLE);
  ck_assert_int_eq(np_poll_wait(lp, ev, 4, 50), 0);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), 4);
  ck_assert_int_eq(memcmp(buf, "more", 4), 0);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EAGAIN);
  np_close(c);
  ck_assert_uint_ne(wait_target(lp, target, 3, NP_READABLE), 0);
  ck_assert_int_eq(np_read(s, buf, sizeof(buf)), NP_EOF);
  np_close(s);
  /* Nothing waits: the same answer as np_accept. */
  ck_assert_int_eq(np_listener_set_interest(l, 1, NP_READABLE), 0);
  ck_assert_int_eq(np_accept_to(l, target, 4, NP_READABLE, &s), NP_EAGAIN);
  ck_assert_int_eq(np_accept_to(NULL, target, 4, NP_READABLE, &s),
                   NP_EINVAL);
  ck_assert_int_eq(np_accept_to(l, target, 4, NP_EDGE | NP_ONESHOT, &s),
                   NP_EINVAL);
  np_listener_close(l);
  ck_assert_int_eq(np_poll_flush(cp, 10000), 0);
  ck_assert_int_eq(np_poll_flush(target, 10000), 0);
  np_poll_free(cp);
  np_poll_free(target);
  np_poll_free(lp);
}

START_TEST(test_accept_to_pipe) {
  char name[96];

  npt_pipe_name(name, sizeof(name), "to");
  accept_to_case(name, NULL);
}
END_TEST

START_TEST(test_accept_to_tcp) { accept_to_case("tcp:127.0.0.1:0", NULL); }
END_TEST

/* The same poller as the listener's is allowed: np_accept's behaviour. */
START_TEST(test_accept_to_same_poller) {
  np_poll *p;
  np_listener *l;
  np_stream *c, *s;
  char name[96];

  npt_pipe_name(name, sizeof(name), "same");
  ck_assert_int_eq(np_poll_new(&p), 0);
  ck_assert_int_eq(np_listen(p, name, NULL, 1, &l), 0);
  ck_assert_int_eq(np_connect(p, name, NULL, 2, 0, &c), 0);
  ck_assert_uint_ne(npt_wait_token(p, 1, NP_READABLE, EVENT_MS), 0);
  ck_assert_int_eq(np_accept_to(l, p, 3, NP_READABLE, &s), 0);
  ck_assert_int_eq(np_write(c, "z", 1), 1);
  ck_assert_uint_ne(npt_wait_token(p, 3, NP_READABLE, EVENT_MS), 0);
  np_close(s);
  np_close(c);
  np_listener_close(l);
  np_poll_free(p);
}
END_TEST

static Suite *threads_suite(void) {
  Suite *s = suite_create("threads");
  TCase *tc = npt_tcase(s, "pool");

  tcase_add_test(tc, test_pool_oneshot_pipes);
  tcase_add_test(tc, test_pool_oneshot_tcp);
  tc = npt_tcase(s, "wake");
  tcase_add_test(tc, test_rearm_wakes_a_waiting_thread);
  tcase_add_test(tc, test_timer_wakes_a_waiting_thread);
  tcase_add_test(tc, test_close_while_others_wait);
  tc = npt_tcase(s, "accept_to");
  tcase_add_test(tc, test_accept_to_pipe);
  tcase_add_test(tc, test_accept_to_tcp);
  tcase_add_test(tc, test_accept_to_same_poller);
  return s;
}

int main(void) { return npt_run(threads_suite()); }
