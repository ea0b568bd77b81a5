/*
 * Helpers shared by the Check suites: the runner, unique names, bounded
 * waits and threads, on both backends.
 */
#ifndef NP_TEST_HELPERS_H
#define NP_TEST_HELPERS_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "npipe.h"

/* Seconds before Check (with fork) gives up on one test. */
#define NPT_TIMEOUT_S 120

/* Runs the suite with the verbosity from CK_VERBOSITY and returns the
 * process exit status.  Prints the backend and fork mode first. */
int npt_run(Suite *suite);
/* A new test case with the suite-wide timeout, added to suite. */
TCase *npt_tcase(Suite *suite, const char *name);

/* POSIX: points $NPIPE_DIR at a fresh 0700 directory removed at exit
 * (npt_run calls it).  Windows: nothing to do. */
void npt_use_private_dir(void);

/* "iocp" or "epoll". */
const char *npt_backend(void);
/* Non-zero when running under Wine. */
int npt_under_wine(void);

/* Writes "pipe:npt-<pid>-<n>-<tag>" into buf: unique per process and
 * call, since pipe names are global per machine (or wineserver). */
void npt_pipe_name(char *buf, size_t len, const char *tag);

/* Waits (in total at most timeout_ms) until an event for token carries
 * every bit of bits.  Returns those event bits, or 0 on timeout. */
uint32_t npt_wait_token(np_poll *poll, uint64_t token, uint32_t bits,
                        int timeout_ms);

/* This process's id, as np_stream_peer reports it. */
int64_t npt_self_pid(void);
void npt_sleep_ms(int ms);
uint64_t npt_now_ms(void);

typedef struct npt_thread npt_thread;
/* Starts fn(arg) on a new thread; aborts the test on failure. */
npt_thread *npt_thread_start(void (*fn)(void *), void *arg);
/* Waits for the thread and frees it. */
void npt_thread_join(npt_thread *t);

#endif /* NP_TEST_HELPERS_H */
