/*
 * Connects that wait (NP_OPT_WAIT_ABSENT / NP_OPT_WAIT_BUSY), measured
 * through the public API:
 *
 *  - the latency from np_listen to the waiting client's NP_WRITABLE,
 *    that is how soon the poller's retries find a server that appears;
 *  - the ping-pong rate of a stream while 8 connects wait on the same
 *    poller for a name nobody serves, against the same ping-pong with
 *    none waiting, in interleaved rounds of the same run.
 *
 * Both ends of every pair live on one poller and one thread, as in an
 * event loop that is client and server at once.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "npipe.h"

#define WAITERS 8
#define TOK_L 1
#define TOK_C 2
#define TOK_S 3
#define TOK_W 100
#define MAX_ROUNDS BH_MAX_ROUNDS

static np_event scratch_[16]; /* events of waits that only turn the loop */

static int fail(const char *what, int err) {
  fprintf(stderr, "%s: %s: %s\n", bh_cfg.argv0, what, np_strerror(err));
  return -1;
}

/* Waits (at most 5 s) until tok reports bits.  Returns 0 or -1. */
static int await(np_poll *p, uint64_t tok, uint32_t bits) {
  double until = bh_now() + 5.0;
  np_event ev[16];
  int n, i;

  while (bh_now() < until) {
    n = np_poll_wait(p, ev, 16, 100);
    if (n < 0)
      return fail("np_poll_wait", n);
    for (i = 0; i < n; i++)
      if (ev[i].token == tok && (ev[i].events & bits))
        return 0;
  }
  return fail("waiting", NP_ETIMEDOUT);
}

/* Microseconds from np_listen to the waiting client's NP_WRITABLE. */
static double connect_latency(np_poll *p) {
  np_options o;
  np_listener *l;
  np_stream *c;
  char name[64], addr[96];
  double t0, us;
  int err;

  bh_unique_name(name, sizeof(name), "dial");
  snprintf(addr, sizeof(addr), "pipe:%s", name);
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = 5000;
  if ((err = np_connect(p, addr, &o, TOK_C, NP_WRITABLE, &c)) != 0)
    return fail("np_connect", err), bh_nan();
  /* Let the retries back off to their longest interval first: they run
   * while the poller is waited on. */
  t0 = bh_now() + 0.2;
  while (bh_now() < t0)
    (void)np_poll_wait(p, scratch_, 16, 10);
  t0 = bh_now();
  if ((err = np_listen(p, addr, NULL, TOK_L, &l)) != 0) {
    np_close(c);
    return fail("np_listen", err), bh_nan();
  }
  us = await(p, TOK_C, NP_WRITABLE) == 0 && np_stream_error(c) == 0
           ? (bh_now() - t0) * 1e6
           : bh_nan();
  np_close(c);
  np_listener_close(l);
  return us;
}

/* Round trips of one byte per second between two ends on p, for the
 * configured round length. */
static double ping_rate(np_poll *p, np_stream *c, np_stream *s) {
  double t0 = bh_now(), until = t0 + bh_cfg.round_s, count = 0;
  unsigned char b = 0;

  while (bh_now() < until) {
    if (np_write(c, &b, 1) != 1)
      return bh_nan();
    while (np_read(s, &b, 1) != 1)
      if (await(p, TOK_S, NP_READABLE) != 0)
        return bh_nan();
    if (np_write(s, &b, 1) != 1)
      return bh_nan();
    while (np_read(c, &b, 1) != 1)
      if (await(p, TOK_C, NP_READABLE) != 0)
        return bh_nan();
    count++;
  }
  return count / (bh_now() - t0);
}

/* Starts (n > 0) or ends (n == 0) the connects that wait in vain. */
static int set_waiters(np_poll *p, np_stream **w, int n) {
  np_options o;
  char name[64], addr[96];
  int i, err;

  for (i = 0; i < WAITERS; i++) {
    np_close(w[i]);
    w[i] = NULL;
  }
  memset(&o, 0, sizeof(o));
  o.flags = NP_OPT_WAIT_ABSENT;
  o.timeout_ms = -1;
  bh_unique_name(name, sizeof(name), "nobody");
  snprintf(addr, sizeof(addr), "pipe:%s", name);
  for (i = 0; i < n; i++)
    if ((err = np_connect(p, addr, &o, TOK_W + (uint64_t)i, NP_WRITABLE,
                          &w[i])) != 0)
      return fail("np_connect (waiter)", err);
  return 0;
}

static int open_pair(np_poll *p, np_listener **l, np_stream **c,
                     np_stream **s) {
  char name[64], addr[96];
  double until = bh_now() + 5.0;
  int err;

  bh_unique_name(name, sizeof(name), "pp");
  snprintf(addr, sizeof(addr), "pipe:%s", name);
  if ((err = np_listen(p, addr, NULL, TOK_L, l)) != 0 ||
      (err = np_connect(p, addr, NULL, TOK_C, NP_READABLE, c)) != 0)
    return fail("pair", err);
  while ((err = np_accept(*l, TOK_S, NP_READABLE, s)) == NP_EAGAIN &&
         bh_now() < until)
    (void)np_poll_wait(p, scratch_, 16, 10);
  return err == 0 ? 0 : fail("np_accept", err);
}

int main(int argc, char **argv) {
  double lat[MAX_ROUNDS], with[MAX_ROUNDS], without[MAX_ROUNDS];
  double ratio[MAX_ROUNDS];
  np_stream *w[WAITERS] = {NULL}, *c, *s;
  np_listener *l;
  np_poll *p;
  char b1[32], b2[32], b3[32];
  int r, rounds, err;

  if ((err = bh_config_parse(argc, argv)) != 0)
    return err > 0 ? 0 : 2;
  bh_private_dir();
  rounds = bh_cfg.rounds < MAX_ROUNDS ? bh_cfg.rounds : MAX_ROUNDS;
  if ((err = np_poll_new(&p)) != 0)
    return fail("np_poll_new", err), 1;
  if (open_pair(p, &l, &c, &s) != 0)
    return 1;
  for (r = 0; r < rounds; r++) {
    lat[r] = connect_latency(p);
    if (set_waiters(p, w, 0) != 0)
      return 1;
    without[r] = ping_rate(p, c, s);
    if (set_waiters(p, w, WAITERS) != 0)
      return 1;
    with[r] = ping_rate(p, c, s);
    ratio[r] = with[r] / without[r];
    if (bh_isnan(lat[r]) || bh_isnan(ratio[r]))
      return fail("a round", NP_EIO), 1;
  }
  set_waiters(p, w, 0);
  printf("\n## Connects that wait (%s)\n\n",
         bh_under_wine() ? "Wine" : "Linux");
  printf("%d rounds x %.2f s, medians (min..max)\n\n", rounds, bh_cfg.round_s);
  printf("| case | figure |\n|---|---:|\n");
  printf("| server appears -> waiting client writable (us) | %s (%s..%s) |\n",
         bh_fmt(b1, sizeof(b1), bh_median(lat, rounds), 0),
         bh_fmt(b2, sizeof(b2), bh_min(lat, rounds), 0),
         bh_fmt(b3, sizeof(b3), bh_max(lat, rounds), 0));
  printf("| 1 B ping-pong, no connect waiting (round trips/s) | %s |\n",
         bh_fmt(b1, sizeof(b1), bh_median(without, rounds), 0));
  printf("| 1 B ping-pong, %d connects waiting (round trips/s) | %s |\n",
         WAITERS, bh_fmt(b1, sizeof(b1), bh_median(with, rounds), 0));
  printf("| ratio, same round | %s (%s..%s) |\n",
         bh_fmt(b1, sizeof(b1), bh_median(ratio, rounds), 2),
         bh_fmt(b2, sizeof(b2), bh_min(ratio, rounds), 2),
         bh_fmt(b3, sizeof(b3), bh_max(ratio, rounds), 2));
  np_close(s);
  np_close(c);
  np_listener_close(l);
  np_poll_free(p);
  return 0;
}
