/*
 * What the bench driver asks of an implementation ("family"): npipe
 * itself (bench-pipe.c) and each baseline (base-unix.c, base-uv.c,
 * base-win*.c).  Every family runs the same workloads with the same
 * protocol, so their figures can be divided.
 */
#ifndef NP_BENCH_BENCH_H
#define NP_BENCH_BENCH_H

#include <stddef.h>

#include "harness.h"

enum bench_kind {
  BENCH_BULK,    /* one direction: bytes/s received */
  BENCH_BULK2,   /* both directions at once: bytes/s received, summed */
  BENCH_PING,    /* ping-pong: round trips/s */
  BENCH_CONNECT, /* connect + accept + close: connections/s */
  BENCH_CONNRR,  /* connect + 1-byte request/reply + close: per second */
  BENCH_SCALE    /* many idle ends on one poller: see enum bench_scale */
};

/* The figures of a scale run, in bench_result.v. */
enum bench_scale {
  SCALE_COMMIT = 0, /* committed bytes per idle end */
  SCALE_RSS = 1,    /* resident bytes per idle end */
  SCALE_CREATE = 2, /* microseconds to create one connected pair */
  SCALE_WAIT10 = 3, /* microseconds: write, wait, read with 10 ends */
  SCALE_WAITN = 4,  /* the same with bench_work.ends ends registered */
  SCALE_POOL = 5,   /* npipe, white-box: pool bytes lent per idle end */
  SCALE_NVAL = 6
};

#define BENCH_NVAL SCALE_NVAL

/* Read buffer of every receiver: the larger of the write size and this,
 * the same for every family. */
#define BENCH_READ_MIN (64 * 1024)
/* Pending connections a server keeps (listen backlog, pipe instances),
 * the same for every family. */
#define BENCH_BACKLOG 4
/* Connections that fail to settle within this time are an error. */
#define BENCH_SETUP_S 5.0

struct bench_work {
  enum bench_kind kind;
  int tcp;        /* TCP loopback instead of a pipe */
  size_t size;    /* write size (bulk) or message size (ping-pong) */
  double seconds; /* how long the measurement runs */
  int ends;       /* scale: registered ends (pairs = ends / 2) */
};

struct bench_result {
  double v[BENCH_NVAL]; /* v[0] for every kind but BENCH_SCALE */
};

struct bench_family {
  const char *name; /* short: "npipe", "raw-epoll", "libuv", ... */
  /* Non-zero when the family implements w. */
  int (*supports)(const struct bench_work *w);
  /* Measures w into r.  Returns 0, or a negative code (NP_E* for npipe,
   * -1 for the baselines after a message on stderr). */
  int (*run)(const struct bench_work *w, struct bench_result *r);
  /* The same-run target for npipe / this family on w, if any: returns 1
   * and the least acceptable ratio in *min. */
  int (*target)(const struct bench_work *w, double *min);
};

/* npipe, through the public API only (bench-pipe.c). */
extern const struct bench_family bench_npipe;
/* Returns 0 when npipe can listen on a pipe name (tcp 0) or a TCP
 * address here, else the NP_E* code np_listen gave (NP_ENOTSUP while a
 * backend is still missing). */
int bench_npipe_probe(int tcp);

/* What each program compares npipe with: defined by its family file. */
extern const char bench_suite_name[];
extern const struct bench_family *const bench_baselines[];
extern const int bench_nbaselines;

/* The read buffer size for w (see BENCH_READ_MIN). */
static inline size_t bench_read_len(const struct bench_work *w) {
  return w->size > BENCH_READ_MIN ? w->size : BENCH_READ_MIN;
}

/* Shared by the two sides of one two-party measurement. */
struct bench_ctl {
  int go;       /* set when the measured interval starts */
  int stop;     /* set when every recorder has its figure */
  int need;     /* recorders in this run (1 or 2) */
  int done;     /* recorders finished */
  double t0;    /* start of the measured interval */
  double until; /* t0 + seconds */
};

/* Starts the measured interval: sets t0, until and go. */
void bench_ctl_start(struct bench_ctl *c, double seconds);
/* A recorder has its figure; returns non-zero when it was the last one,
 * in which case stop is set and the caller wakes the other side. */
int bench_ctl_record(struct bench_ctl *c);

/* Fills buf with a fixed pattern (payload for every family). */
void bench_fill(void *buf, size_t len);

#endif /* NP_BENCH_BENCH_H */
