/*
 * Thread scaling of an echo server: N threads (1 and 2) share one
 * poller, epoll set or completion port and serve TB_CONNS connections of
 * a client process, each with one TB_MSG-byte message in flight.  Every
 * message costs the server WORK_US of CPU before its echo, so that two
 * threads can show a gain on a 2-CPU machine.
 *
 * The server runs in this process; "--client ADDRESS" runs the clients
 * (this program again, through npipe's single-threaded loop, the same for
 * every family).  The client opens the timed interval after a warm-up,
 * counts the round trips that end inside it, and prints the rate, its
 * own CPU time per message and under Wine the wineserver's as a
 * bh-result line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npipe.h"

#include "threads.h"

#define WORK_US 50.0
/* Set-up (connects) and any stall longer than this is an error. */
#define SETUP_S 5.0
#define MAX_ROUNDS BH_MAX_ROUNDS
#define NFAM 2
/* Figures: messages/s; wineserver and client CPU us per message (these
 * three from the client); the server process's CPU us per message. */
#define NVAL_CLIENT 3
#define V_SERVER_CPU 3
#define NVAL 4
#define NCASES ((int)(sizeof(thread_counts) / sizeof(thread_counts[0])))

static const int thread_counts[] = {1, 2};
static const struct tb_family *const families[NFAM] = {&tb_npipe, &tb_raw};

/* Figures by case, family, round and value; measurements that failed. */
static double results[NCASES][NFAM][MAX_ROUNDS][NVAL];
static int failed[NCASES][NFAM];

/* ---- the work per message ----------------------------------------------- */

static unsigned long work_iters;
static double work_us_measured;

/* A chain of dependent multiplications the compiler cannot fold. */
static unsigned spin(unsigned long n) {
  unsigned x = 1;

  while (n-- > 0) {
    x = x * 1103515245u + 12345u;
    __asm__ volatile("" : "+r"(x));
  }
  return x;
}

/* Keeps x alive without storing it anywhere shared. */
static inline void consume(unsigned x) { __asm__ volatile("" : : "r"(x)); }

void tb_work(void) { consume(spin(work_iters)); }

/* Seconds one spin(n) takes at best (the least disturbed of tries). */
static double fastest(unsigned long n, int tries) {
  double best = 1e9, t;

  while (tries-- > 0) {
    t = bh_now();
    consume(spin(n));
    t = bh_now() - t;
    if (t < best)
      best = t;
  }
  return best;
}

/* Sets work_iters from the fastest of many short timed runs, then
 * measures one tb_work the same way.  The fastest run is the one nothing
 * interrupted, which is what the work costs on a CPU of its own. */
static void calibrate(void) {
  const unsigned long n = 20000;

  (void)fastest(n, 50); /* warm-up: clock speed, caches */
  work_iters = (unsigned long)(WORK_US * 1e-6 * (double)n / fastest(n, 50));
  work_us_measured = fastest(work_iters, 50) * 1e6;
}

/* ---- server threads ----------------------------------------------------- */

void tb_threads_start(struct tb_threads *th, int n, void (*fn)(void *),
                      void *arg) {
  int i;

  th->n = n < TB_MAX_THREADS ? n : TB_MAX_THREADS;
  for (i = 0; i < th->n; i++)
    th->t[i] = bh_thread_start(fn, arg);
}

int tb_threads_stop(struct tb_threads *th, int *echoes) {
  int i;

  bh_store(&th->stop, 1);
  for (i = 0; i < th->n; i++)
    bh_thread_join(th->t[i]);
  th->n = 0;
  *echoes = bh_load(&th->echoes);
  return bh_load(&th->errors) == 0 ? 0 : -1;
}

/* ---- the client process ------------------------------------------------- */

struct client {
  np_poll *p;
  np_stream *s[TB_CONNS];
  size_t got[TB_CONNS];
  unsigned char msg[TB_MSG];
  double count; /* round trips completed */
};

static int cfail(const char *what, int err) {
  fprintf(stderr, "%s --client: %s: %s\n", bh_cfg.argv0, what,
          np_strerror(err));
  return -1;
}

/* Connects every stream (waiting for the name and for free instances)
 * and waits until all are writable.  Returns 0 or -1. */
static int client_connect(struct client *c, const char *addr) {
  double until = bh_now() + SETUP_S;
  np_options o;
  np_event ev[TB_CONNS];
  int i, n, up = 0, err;

  memset(&o, 0, sizeof(o));
  /* Under Wine a pipe that CreateNamedPipeW made with default security
   * (the raw-iocp server's) fails npipe's check of who serves the name
   * (NP_EACCES).  The check runs at connect, outside the interval, so
   * skipping it for every family changes no figure. */
  o.flags = NP_OPT_WAIT_BUSY | NP_OPT_WAIT_ABSENT | NP_OPT_ANY_SERVER;
  o.timeout_ms = (int)(SETUP_S * 1000);
  for (i = 0; i < TB_CONNS; i++)
    if ((err = np_connect(c->p, addr, &o, (uint64_t)i, NP_WRITABLE,
                          &c->s[i])) != 0)
      return cfail("np_connect", err);
  while (up < TB_CONNS && bh_now() < until) {
    if ((n = np_poll_wait(c->p, ev, TB_CONNS, 100)) < 0)
      return cfail("np_poll_wait", n);
    for (i = 0; i < n; i++) {
      np_stream *s = c->s[ev[i].token];

      if ((err = np_stream_error(s)) != 0)
        return cfail("connecting", err);
      if ((err = np_stream_set_interest(s, ev[i].token, NP_READABLE)) != 0)
        return cfail("np_stream_set_interest", err);
      up++;
    }
  }
  return up == TB_CONNS ? 0 : cfail("connecting", NP_ETIMEDOUT);
}

static int client_send(struct client *c, int i) {
  ptrdiff_t n = np_write(c->s[i], c->msg, TB_MSG);

  return n == TB_MSG ? 0 : cfail("np_write", n < 0 ? (int)n : NP_EIO);
}

/* Reads stream i until NP_EAGAIN; each whole echo counts one round trip
 * and sends the next message. */
static int client_read(struct client *c, int i) {
  unsigned char buf[TB_MSG];
  ptrdiff_t n;

  while ((n = np_read(c->s[i], buf, TB_MSG - c->got[i])) != NP_EAGAIN) {
    if (n <= 0)
      return cfail("np_read", n < 0 ? (int)n : NP_EIO);
    c->got[i] += (size_t)n;
    if (c->got[i] < TB_MSG)
      continue;
    c->got[i] = 0;
    c->count++;
    if (client_send(c, i) != 0)
      return -1;
  }
  return 0;
}

/* What the client records at each end of the timed interval. */
struct snap {
  double t, count, wine, cpu;
};

static void snap(const struct client *c, struct snap *s) {
  s->t = bh_now();
  s->count = c->count;
  s->wine = tb_wineserver_cpu();
  s->cpu = bh_cpu_time();
}

/* Runs the ping-pong until the clock passes until; fails when no echo
 * came for SETUP_S.  Returns 0 or -1. */
static int client_until(struct client *c, double until) {
  double now, progress = bh_now(), seen = c->count;
  np_event ev[TB_CONNS];
  int i, n;

  while ((now = bh_now()) < until) {
    if (c->count != seen) {
      seen = c->count;
      progress = now;
    } else if (now - progress > SETUP_S) {
      return cfail("no echo", NP_ETIMEDOUT);
    }
    if ((n = np_poll_wait(c->p, ev, TB_CONNS, 100)) < 0)
      return cfail("np_poll_wait", n);
    for (i = 0; i < n; i++)
      if (client_read(c, (int)ev[i].token) != 0)
        return -1;
  }
  return 0;
}

/* Runs the ping-pong: a warm-up, then the timed interval.  Stores the
 * rate in v[0], the wineserver's and this process's CPU microseconds per
 * message in v[1] and v[2].  Returns 0 or -1. */
static int client_run(struct client *c, double *v) {
  double warm = bh_cfg.round_s / 4, msgs;
  struct snap a, b;
  int i;

  warm = warm < 0.01 ? 0.01 : warm > 0.1 ? 0.1 : warm;
  for (i = 0; i < TB_CONNS; i++)
    if (client_send(c, i) != 0)
      return -1;
  if (client_until(c, bh_now() + warm) != 0)
    return -1;
  snap(c, &a);
  if (client_until(c, a.t + bh_cfg.round_s) != 0)
    return -1;
  snap(c, &b);
  msgs = b.count - a.count;
  v[0] = msgs / (b.t - a.t);
  v[1] = (b.wine - a.wine) * 1e6 / msgs;
  v[2] = (b.cpu - a.cpu) * 1e6 / msgs;
  return 0;
}

static int client_main(const char *addr) {
  struct client c;
  double v[NVAL_CLIENT] = {bh_nan(), bh_nan(), bh_nan()};
  int i, err = -1;

  memset(&c, 0, sizeof(c));
  for (i = 0; i < TB_MSG; i++)
    c.msg[i] = (unsigned char)(i * 7 + 1);
  bh_watchdog_start(30);
  if (np_poll_new(&c.p) == 0) {
    /* The first look finds the wineserver: outside the interval. */
    (void)tb_wineserver_cpu();
    if (client_connect(&c, addr) == 0 && client_run(&c, v) == 0)
      err = 0;
    for (i = 0; i < TB_CONNS; i++)
      np_close(c.s[i]);
    np_poll_free(c.p);
  }
  bh_child_print(err, v, NVAL_CLIENT);
  return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- rounds ------------------------------------------------------------- */

static int nthreads(int c) { return thread_counts[c]; }

static const char *case_name(int c) {
  return nthreads(c) == 1 ? "1 thread" : "2 threads";
}

static int case_chosen(int c) {
  return bh_cfg.only == NULL || strstr(case_name(c), bh_cfg.only) != NULL;
}

/* One server of family f with the case's threads, one client process. */
static void measure(int c, int f, int r) {
  const struct tb_family *fam = families[f];
  char name[64], addr[256], secs[32];
  const char *args[] = {"--client", addr, "--seconds", secs, NULL};
  double *v = results[c][f][r];
  double cpu;
  void *srv;
  int err, echoes = 0;

  bh_unique_name(name, sizeof(name), "thr");
  snprintf(secs, sizeof(secs), "%g", bh_cfg.round_s);
  cpu = bh_cpu_time();
  if ((srv = fam->start(name, nthreads(c), addr, sizeof(addr))) == NULL) {
    err = -1;
  } else {
    err = bh_self_run(args, v, NVAL_CLIENT);
    if (fam->stop(srv, &echoes) != 0 && err == 0)
      err = -1;
    /* Over the server's whole life: set-up and warm-up are a small part. */
    v[V_SERVER_CPU] = (bh_cpu_time() - cpu) * 1e6 / echoes;
  }
  if (err != 0 || bh_isnan(v[0])) {
    fprintf(stderr, "%s: %s, %s, round %d: failed\n", bh_cfg.argv0, fam->name,
            case_name(c), r + 1);
    v[0] = v[1] = v[2] = v[V_SERVER_CPU] = bh_nan();
    failed[c][f]++;
  }
}

static void run_rounds(void) {
  char what[128];
  int r, c, k, f;

  for (r = 0; r < bh_cfg.rounds; r++) {
    fprintf(stderr, "bench-threads: round %d/%d\n", r + 1, bh_cfg.rounds);
    for (c = 0; c < NCASES; c++) {
      if (!case_chosen(c))
        continue;
      /* The order of families alternates from round to round. */
      for (k = 0; k < NFAM; k++) {
        f = r % 2 == 0 ? k : NFAM - 1 - k;
        if (!bh_family_chosen(families[f]->name))
          continue;
        snprintf(what, sizeof(what), "%s, %s, round %d", families[f]->name,
                 case_name(c), r + 1);
        bh_progress(what);
        measure(c, f, r);
      }
    }
  }
}

/* ---- tables ------------------------------------------------------------- */

/* Medians of value v of (case ca, family fa) and (cb, fb) over the
 * rounds, and of their same-round ratio a / b. */
static void stats(int ca, int fa, int cb, int fb, int v,
                  struct bh_pair_stats *s) {
  double a[MAX_ROUNDS], b[MAX_ROUNDS];
  int r;

  for (r = 0; r < bh_cfg.rounds; r++) {
    a[r] = bh_family_chosen(families[fa]->name) ? results[ca][fa][r][v]
                                                : bh_nan();
    b[r] = bh_family_chosen(families[fb]->name) ? results[cb][fb][r][v]
                                                : bh_nan();
  }
  bh_pair_stats(a, b, bh_cfg.rounds, s);
}

static void print_row(const char *label, const struct bh_pair_stats *s,
                      int prec) {
  char a[32], b[32], q[32], lo[32], hi[32];

  printf("| %s | %s | %s | %s | %s..%s |\n", label,
         bh_fmt(a, sizeof(a), s->a, prec), bh_fmt(b, sizeof(b), s->b, prec),
         bh_fmt(q, sizeof(q), s->ratio, 2), bh_fmt(lo, sizeof(lo), s->lo, 2),
         bh_fmt(hi, sizeof(hi), s->hi, 2));
}

/* npipe against the raw family, one row per thread count. */
static void print_vs_raw(const char *title, int v, int prec) {
  struct bh_pair_stats s;
  int c;

  printf("\n### %s\n\n", title);
  printf("| server threads | npipe | %s | npipe / %s | min..max |\n",
         tb_raw.name, tb_raw.name);
  printf("|---|---:|---:|---:|---|\n");
  for (c = 0; c < NCASES; c++) {
    if (!case_chosen(c))
      continue;
    stats(c, 0, c, 1, v, &s);
    print_row(case_name(c), &s, prec);
  }
}

/* The row shows 1 thread first; the ratio stays 2 threads over 1. */
static struct bh_pair_stats *swapped(struct bh_pair_stats *s) {
  double t = s->a;

  s->a = s->b;
  s->b = t;
  return s;
}

/* Each family's 2-thread rate over its 1-thread rate, same round. */
static void print_scaling(void) {
  struct bh_pair_stats s;
  int f;

  if (!case_chosen(0) || !case_chosen(1))
    return;
  printf("\n### Scaling: 2 threads / 1 thread (same round)\n\n");
  printf("| family | 1 thread (msg/s) | 2 threads (msg/s) | scaling | "
         "min..max |\n");
  printf("|---|---:|---:|---:|---|\n");
  for (f = 0; f < NFAM; f++) {
    if (!bh_family_chosen(families[f]->name))
      continue;
    stats(1, f, 0, f, 0, &s);
    print_row(families[f]->name, swapped(&s), 0);
  }
}

static void print_setup(void) {
  char ideal[32];

  printf("\n## Thread scaling: echo server with N threads on one poller "
         "(%s)\n\n",
         bh_under_wine() ? "Wine" : "Linux");
  printf("npipe %s; %d rounds x %.3g s per case, interleaved; %d CPUs; "
         "wine: %s\n",
         np_version_string(), bh_cfg.rounds, bh_cfg.round_s, bh_ncpu(),
         bh_under_wine() ? "yes" : "no");
  printf("%d connections from a client process, each with one %d B "
         "message in flight; the server spends %.0f us of CPU per message "
         "(calibrated spin: %lu iterations, %.1f us measured), then echoes "
         "it; at most %s msg/s per busy thread\n",
         TB_CONNS, TB_MSG, WORK_US, work_iters, work_us_measured,
         bh_fmt(ideal, sizeof(ideal), 1e6 / work_us_measured, 0));
  printf("families: npipe (NP_ONESHOT, re-armed), %s; at most %d events "
         "per wait\n",
         tb_raw.name, TB_BATCH);
  fflush(stdout);
}

static void print_tables(void) {
  if (!case_chosen(0) && !case_chosen(1)) {
    printf("\nNo case matches --only %s (cases: 1 thread, 2 threads).\n",
           bh_cfg.only);
    return;
  }
  print_vs_raw("Messages per second", 0, 0);
  print_scaling();
  if (bh_under_wine())
    print_vs_raw("wineserver CPU per message (us, lower is better)", 1, 1);
  print_vs_raw("Server process CPU per message (us, whole run, "
               "the work included)",
               V_SERVER_CPU, 1);
  print_vs_raw("Client process CPU per message (us; the same client for "
               "every family)",
               2, 1);
  printf("\n");
}

static int failures(void) {
  int c, f, n = 0;

  for (c = 0; c < NCASES; c++)
    for (f = 0; f < NFAM; f++)
      n += failed[c][f];
  if (n > 0)
    fprintf(stderr, "%s: %d measurements failed\n", bh_cfg.argv0, n);
  return n;
}

/* "--client ADDRESS [options]": the client process. */
static int client_args(int argc, char **argv) {
  char *rest[16];
  int i, n = 0, rc;

  rest[n++] = argv[0];
  for (i = 3; i < argc && n < 15; i++)
    rest[n++] = argv[i];
  rest[n] = NULL;
  if ((rc = bh_config_parse(n, rest)) != 0)
    return rc > 0 ? EXIT_SUCCESS : 2;
  return client_main(argv[2]);
}

int main(int argc, char **argv) {
  int rc;

  if (argc >= 3 && strcmp(argv[1], "--client") == 0)
    return client_args(argc, argv);
  if ((rc = bh_config_parse(argc, argv)) != 0)
    return rc > 0 ? EXIT_SUCCESS : 2;
  if (bh_cfg.rounds > MAX_ROUNDS)
    bh_cfg.rounds = MAX_ROUNDS;
  bh_private_dir();
  calibrate();
  print_setup();
  bh_watchdog_start(60);
  run_rounds();
  bh_progress("tables");
  print_tables();
  return failures() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
