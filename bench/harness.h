/*
 * The benchmark harness shared by every bench program: clock, threads,
 * process memory, child runs, statistics, a progress watchdog and the
 * command-line settings.  Portable between the POSIX and Windows builds;
 * it does not use the library.
 */
#ifndef NP_BENCH_HARNESS_H
#define NP_BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Settings from the command line (bh_config_parse). */
struct bh_config {
  int quick;          /* --quick: short rounds, fewer scale ends */
  int rounds;         /* --rounds N: interleaved rounds (default 5) */
  double round_s;     /* seconds each measurement runs */
  int spin;           /* --spin: keep every CPU busy at idle priority */
  int ends;           /* --ends N: registered ends in the scale case */
  const char *only;   /* --only TEXT: cases whose name contains TEXT */
  const char *family; /* --family LIST: only these families run */
  const char *child;  /* --child FAMILY: one scale run, result on stdout */
  const char *argv0;  /* the program, for messages */
};

extern struct bh_config bh_cfg;

/* Parses argv into bh_cfg.  Returns 0, 1 after printing --help, or -1
 * after printing a usage error. */
int bh_config_parse(int argc, char **argv);
/* Whether --family (a comma-separated list of names) lets name run. */
int bh_family_chosen(const char *name);

/* Seconds on a monotonic clock. */
double bh_now(void);
void bh_sleep_ms(int ms);
/* Non-zero when the program runs under Wine. */
int bh_under_wine(void);
/* The number of CPUs the process may run on (at least 1). */
int bh_ncpu(void);

/* Process memory in bytes: committed private memory (VmData natively,
 * PagefileUsage on Windows) and resident memory (VmRSS, WorkingSetSize).
 * Either is -1 when unknown. */
void bh_process_memory(int64_t *committed, int64_t *resident);
/* CPU seconds (user and system) this process has used, all threads. */
double bh_cpu_time(void);
/* Raises the soft limit on open files to the hard limit (POSIX; nothing
 * on Windows).  Returns the limit now in force, or -1 when unlimited or
 * unknown. */
long bh_raise_nofile(void);

/* POSIX: points $NPIPE_DIR at a fresh 0700 directory removed at exit and
 * returns it; pipe:NAME and the raw baselines' socket paths live there.
 * Windows: returns NULL. */
const char *bh_private_dir(void);
/* Writes a name unique to this process and call into buf, such as
 * "npbench-1234-7-tag". */
void bh_unique_name(char *buf, size_t len, const char *tag);

/* Threads: fn(arg) on a new thread; exits the program if that fails. */
typedef struct bh_thread bh_thread;
bh_thread *bh_thread_start(void (*fn)(void *), void *arg);
/* Waits for the thread and frees it. */
void bh_thread_join(bh_thread *t);

/* Sequentially consistent loads and stores of flags shared by threads. */
static inline int bh_load(const int *p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void bh_store(int *p, int v) {
  __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static inline int bh_add(int *p, int v) {
  return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}
/* Waits until *flag is non-zero, yielding the CPU; gives up after
 * timeout_s.  Returns 0, or -1 on timeout. */
int bh_wait_flag(const int *flag, double timeout_s);

/* Starts one spinner per CPU at the lowest priority, so that the vCPUs
 * never enter their idle state during latency runs.  Under Wine thread
 * priorities do not reach the host: the spinners are then skipped and a
 * note says to spin on the host (scripts/bench.sh --spin does). */
void bh_spin_start(void);
void bh_spin_stop(void);

/* Names what the program is measuring now.  The watchdog ends the
 * program (exit status 3) when the name has not changed for limit_s. */
void bh_progress(const char *what);
void bh_watchdog_start(double limit_s);

/* Runs this program again as "--child family --ends N" and reads the
 * "bh-result" line it prints into values[0..n-1] (NaN for "x").  A fresh
 * process is what makes memory deltas honest: freed memory of earlier
 * cases would otherwise be reused.  Returns 0, the child's negative
 * error code, or -1. */
int bh_child_run(const char *family, double *values, int n);
/* Runs this program again with the arguments args[0..] (a NULL-terminated
 * list, the program name left out) and reads the "bh-result" line it
 * prints, as bh_child_run does.  The arguments must not contain quotes. */
int bh_self_run(const char *const *args, double *values, int n);
/* Prints the result line bh_child_run reads (NaN prints as "x"). */
void bh_child_print(int err, const double *values, int n);

/* Statistics over the finite values of v[0..n-1]: the median, min and
 * max; NaN when none is finite.  bh_median reorders nothing. */
double bh_median(const double *v, int n);
double bh_min(const double *v, int n);
double bh_max(const double *v, int n);
/* The most rounds a program keeps figures for. */
#define BH_MAX_ROUNDS 64

/* Two series measured round by round (NaN: none): their medians, and
 * the median, least and greatest of their same-round ratio a / b. */
struct bh_pair_stats {
  double a, b, ratio, lo, hi;
};
void bh_pair_stats(const double *a, const double *b, int n,
                   struct bh_pair_stats *s);
/* NaN, portably. */
double bh_nan(void);
int bh_isnan(double x);

/* Formats x with thousands separators and prec decimals into buf (the
 * returned pointer); "n/a" for NaN. */
const char *bh_fmt(char *buf, size_t len, double x, int prec);

/* For the harness's halves only.  Reads a child's output; returns what
 * bh_child_run returns. */
int bh__child_parse(const char *out, double *values, int n);
/* Puts the calling thread at the lowest scheduling priority. */
void bh__lower_priority(void);
/* Process-wide set-up: ignore SIGPIPE; binary stdout on Windows. */
void bh__os_init(void);

#endif /* NP_BENCH_HARNESS_H */
