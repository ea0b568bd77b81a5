/*
 * The thread-scaling echo benchmark (bench-threads.c): what a server
 * family provides.  A server runs N threads on one poller, epoll set or
 * completion port; each message costs a fixed amount of CPU before its
 * echo.  The clients run in another process (tb_client_main).
 */
#ifndef NP_BENCH_THREADS_H
#define NP_BENCH_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Connections the client process opens, each with one message in flight. */
#define TB_CONNS 16
/* The size of every message. */
#define TB_MSG 64
/* Server threads at most. */
#define TB_MAX_THREADS 8
/* Events a server thread takes from one wait. */
#define TB_BATCH 4
/* How long a server thread waits before it looks at its stop flag (ms). */
#define TB_TICK_MS 50

/* Threads and counters shared by the families' servers. */
struct tb_threads {
  bh_thread *t[TB_MAX_THREADS];
  int n;
  int stop;   /* set by tb_threads_stop */
  int errors; /* failures the threads met (atomic) */
  int echoes; /* messages echoed (atomic) */
};

struct tb_family {
  const char *name; /* "npipe", "raw-epoll", "raw-iocp" */
  /* Starts a server named name (unique per run) with nthreads threads
   * and writes the address the clients connect to (an np_connect
   * address) into addr.  Returns the server, or NULL after a message. */
  void *(*start)(const char *name, int nthreads, char *addr, size_t len);
  /* Stops the threads, stores the messages they echoed in *echoes and
   * frees everything.  Returns 0, or -1 when a thread met an error. */
  int (*stop)(void *server, int *echoes);
};

extern const struct tb_family tb_npipe;
/* raw-epoll (threads-epoll.c) or raw-iocp (threads-iocp.c). */
extern const struct tb_family tb_raw;

/* Spends the calibrated CPU cost of one message. */
void tb_work(void);

/* Starts n threads running fn(arg). */
void tb_threads_start(struct tb_threads *th, int n, void (*fn)(void *),
                      void *arg);
/* Sets the stop flag, joins the threads and stores the messages they
 * echoed in *echoes.  Returns 0, or -1 when a thread met an error. */
int tb_threads_stop(struct tb_threads *th, int *echoes);
/* Non-zero once tb_threads_stop was called. */
static inline int tb_stopping(struct tb_threads *th) {
  return bh_load(&th->stop);
}

/* CPU seconds the wineserver serving this program has used, or NaN when
 * the program does not run under Wine or the wineserver is not found. */
double tb_wineserver_cpu(void);

#endif /* NP_BENCH_THREADS_H */
