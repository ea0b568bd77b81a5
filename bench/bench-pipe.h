/*
 * What the npipe family's two files share (bench-pipe.c: set-up, bulk,
 * ping-pong; bench-pipe-conn.c: connection rates and scale).  Public
 * API only.
 */
#ifndef NP_BENCH_PIPE_H
#define NP_BENCH_PIPE_H

#include <stddef.h>
#include <stdint.h>

#include "npipe.h"

#include "bench.h"

enum {
  TOK_LISTENER = 1,
  TOK_SERVER = 2,
  TOK_CLIENT = 3,
  TOK_FIRST_FREE = 16 /* tokens from here on: per-connection slots */
};

/* Every wait is bounded by this, so stop flags are seen in time. */
#define NPB_WAIT_MS 50

/* One stream and the poller that only its thread uses. */
struct npb_end {
  np_poll *poll;
  np_stream *s;
  uint64_t token;
  uint32_t interest; /* as registered now */
};

/* Starts listening on a fresh name (pipe) or 127.0.0.1:0 (tcp) and
 * writes the address a client connects to into addr.  Returns 0 or
 * NP_E*; *out is NULL on failure. */
int npb_listen(np_poll *poll, int tcp, uint64_t token, char *addr, size_t len,
               np_listener **out);
/* Options for a client connect: pipes wait for a busy server. */
void npb_connect_opts(np_options *o);
/* Makes e's interest want (if it differs) and waits up to NPB_WAIT_MS
 * for an event on its poller.  Returns 0 or NP_E*. */
int npb_wait(struct npb_end *e, uint32_t want);

/* Bytes of I/O buffers the poller's pool has lent to its streams (a
 * white-box figure: pool-win.c), or NaN where the backend has no pool
 * (pool-none.c). */
double npb_pool_lent(np_poll *poll);

/* Connection rates (bench-pipe-conn.c). */
int npb_run_connect(const struct bench_work *w, struct bench_result *r);
/* Scale: w->ends idle ends on one poller (bench-pipe-conn.c). */
int npb_run_scale(const struct bench_work *w, struct bench_result *r);

#endif /* NP_BENCH_PIPE_H */
