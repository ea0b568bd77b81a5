/*
 * What the raw Linux baseline's files share (base-unix.c: ends, pairs,
 * bulk, the family; base-unix-conn.c: ping-pong, connections, scale).
 */
#ifndef NP_BENCH_BASE_UNIX_H
#define NP_BENCH_BASE_UNIX_H

#include <stdint.h>

#include "bench.h"

/* A socket with its own epoll set and an eventfd that wakes it. */
struct bu_end {
  int fd, ep, wake;
};

/* Prints "raw-epoll: what: strerror(errno)"; returns -1. */
int bu_fail(const char *what);
/* Takes fd (non-blocking) into a new epoll set, edge-triggered for
 * events.  Returns 0 or -1; bu_end_close releases what was made. */
int bu_end_open(struct bu_end *e, int fd, uint32_t events);
void bu_end_close(struct bu_end *e);
/* Waits for an edge on e (at most 50 ms).  Returns 0 or -1. */
int bu_end_wait(struct bu_end *e);
/* Wakes e's waiter from any thread. */
void bu_end_wake(struct bu_end *e);
/* A connected non-blocking pair: AF_UNIX, or TCP on 127.0.0.1 with
 * TCP_NODELAY.  Returns 0 or -1. */
int bu_pair(int tcp, int fds[2]);

int bu_run_ping(const struct bench_work *w, struct bench_result *r);
int bu_run_connect(const struct bench_work *w, struct bench_result *r);
int bu_run_scale(const struct bench_work *w, struct bench_result *r);

#endif /* NP_BENCH_BASE_UNIX_H */
