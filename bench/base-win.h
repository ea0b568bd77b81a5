/*
 * What the Windows baselines share (base-win.c: pairs, the blocking
 * pair, the families; base-win-iocp.c: the raw overlapped loop and the
 * mio emulation; base-win-conn.c: connection rates and scale).
 */
#ifndef NP_BENCH_BASE_WIN_H
#define NP_BENCH_BASE_WIN_H

#include <winsock2.h>
#include <windows.h>

#include "bench.h"

/* In and out buffer size of every pipe the baselines create (the size
 * libuv and mio use). */
#define BW_PIPE_BUF 65536
/* mio's internal read buffer. */
#define BW_MIO_READ 8192
/* Completion key of a wake-up packet (no OVERLAPPED). */
#define BW_KEY_WAKE 1
#define BW_KEY_IO 2

/* A connected pair: a pipe (srv from CreateNamedPipe, cli from
 * CreateFile) or two TCP sockets, cast to HANDLE. */
struct bw_pair {
  HANDLE srv, cli;
  int tcp;
};

/* Prints "name: what: error N"; returns -1. */
int bw_fail(const char *name, const char *what);
/* Writes a fresh "\\.\pipe\..." name into buf. */
void bw_pipe_name(char *buf, size_t len);
/* Creates one server instance of name (byte mode, BW_PIPE_BUF buffers,
 * overlapped or not).  Returns the handle or INVALID_HANDLE_VALUE. */
HANDLE bw_pipe_instance(const char *name, int overlapped);
/* A connected pipe (or TCP, both overlapped) pair.  Returns 0 or -1. */
int bw_pair_open(struct bw_pair *p, int tcp, int overlapped);
void bw_pair_close(struct bw_pair *p);

/* The raw overlapped loop (mio 0) and the mio emulation (mio 1). */
int bw_iocp_run(const struct bench_work *w, struct bench_result *r, int mio);
/* Connection rates with a raw overlapped server (base-win-conn.c). */
int bw_run_connect(const struct bench_work *w, struct bench_result *r);
/* Scale: idle pairs each with a read of rsize bytes pending. */
int bw_run_scale(const struct bench_work *w, struct bench_result *r,
                 DWORD rsize);

#endif /* NP_BENCH_BASE_WIN_H */
