/*
 * The portable half of the benchmark harness: settings, statistics,
 * number formatting, child results, the watchdog and the spinner loop.
 * harness-posix.c and harness-win.c hold the system calls.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SPIN_MAX 64

struct bh_config bh_cfg = {0, 5, 0.2, 0, 10000, NULL, NULL, NULL, "bench"};

static void usage(FILE *f) {
  fprintf(f,
          "usage: %s [--quick] [--rounds N] [--seconds S] [--spin]\n"
          "       [--ends N] [--only TEXT] [--family LIST]\n"
          "  --quick      ~20 ms rounds and 1,000 scale ends (smoke run)\n"
          "  --rounds N   interleaved rounds, at least 5 for a result\n"
          "  --seconds S  seconds per measurement (default 0.2)\n"
          "  --spin       keep every CPU busy at idle priority\n"
          "  --ends N     registered pipe ends in the scale case\n"
          "  --only TEXT  run only the cases whose name contains TEXT\n"
          "  --family LIST  run only these families (comma-separated names),\n"
          "               for profiling; ratios need npipe and a baseline\n",
          bh_cfg.argv0);
}

static int need_value(const char *opt, const char *val) {
  if (val != NULL)
    return 0;
  fprintf(stderr, "%s: %s needs a value\n", bh_cfg.argv0, opt);
  return -1;
}

static int parse_number(const char *opt, const char *text, double *out) {
  char *end;

  if (need_value(opt, text) < 0)
    return -1;
  *out = strtod(text, &end);
  if (*end != '\0' || !(*out > 0)) {
    fprintf(stderr, "%s: bad value for %s: %s\n", bh_cfg.argv0, opt, text);
    return -1;
  }
  return 0;
}

/* Applies one option that takes a value.  Returns 0 or -1. */
int bh_family_chosen(const char *name) {
  const char *p = bh_cfg.family;
  size_t n = strlen(name);

  if (p == NULL)
    return 1;
  for (;;) {
    if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
      return 1;
    if ((p = strchr(p, ',')) == NULL)
      return 0;
    p++;
  }
}

static int parse_valued(const char *opt, const char *val, int *seconds_set) {
  double x;

  if (strcmp(opt, "--only") == 0) {
    bh_cfg.only = val;
    return need_value(opt, val);
  }
  if (strcmp(opt, "--family") == 0) {
    bh_cfg.family = val;
    return need_value(opt, val);
  }
  if (strcmp(opt, "--child") == 0) {
    bh_cfg.child = val;
    return need_value(opt, val);
  }
  if (parse_number(opt, val, &x) < 0)
    return -1;
  if (strcmp(opt, "--rounds") == 0) {
    bh_cfg.rounds = (int)x;
  } else if (strcmp(opt, "--ends") == 0) {
    bh_cfg.ends = (int)x;
  } else {
    bh_cfg.round_s = x;
    *seconds_set = 1;
  }
  return 0;
}

int bh_config_parse(int argc, char **argv) {
  static const char *const valued[] = {"--rounds", "--seconds", "--ends",
                                       "--only",   "--family",  "--child"};
  int seconds_set = 0, ends_set = 0;
  int i;

  bh__os_init();
  bh_cfg.argv0 = argc > 0 ? argv[0] : "bench";
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    size_t k;
    int done = 0;

    if (strcmp(a, "--quick") == 0) {
      bh_cfg.quick = 1;
      continue;
    }
    if (strcmp(a, "--spin") == 0) {
      bh_cfg.spin = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 1;
    }
    for (k = 0; k < sizeof(valued) / sizeof(valued[0]) && !done; k++) {
      if (strcmp(a, valued[k]) != 0)
        continue;
      if (parse_valued(a, i + 1 < argc ? argv[i + 1] : NULL, &seconds_set) < 0)
        return -1;
      ends_set |= k == 2;
      i++;
      done = 1;
    }
    if (!done) {
      fprintf(stderr, "%s: unknown option %s\n", bh_cfg.argv0, a);
      usage(stderr);
      return -1;
    }
  }
  if (bh_cfg.quick && !seconds_set)
    bh_cfg.round_s = 0.02;
  if (bh_cfg.quick && !ends_set)
    bh_cfg.ends = 1000;
  if (bh_cfg.ends < 20)
    bh_cfg.ends = 20;
  return 0;
}

/* ---- statistics --------------------------------------------------------- */

double bh_nan(void) { return nan(""); }

int bh_isnan(double x) { return x != x; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

double bh_median(const double *v, int n) {
  double tmp[256];
  int i, m = 0;

  for (i = 0; i < n && m < 256; i++)
    if (!bh_isnan(v[i]))
      tmp[m++] = v[i];
  if (m == 0)
    return bh_nan();
  qsort(tmp, (size_t)m, sizeof(tmp[0]), cmp_double);
  return m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
}

static double extreme(const double *v, int n, int sign) {
  double best = bh_nan();
  int i;

  for (i = 0; i < n; i++)
    if (!bh_isnan(v[i]) && (bh_isnan(best) || (v[i] - best) * sign > 0))
      best = v[i];
  return best;
}

double bh_min(const double *v, int n) { return extreme(v, n, -1); }

double bh_max(const double *v, int n) { return extreme(v, n, 1); }

const char *bh_fmt(char *buf, size_t len, double x, int prec) {
  char digits[64], *p = digits;
  size_t i, intlen, o = 0;

  if (bh_isnan(x)) {
    snprintf(buf, len, "n/a");
    return buf;
  }
  snprintf(digits, sizeof(digits), "%.*f", prec, x);
  if (*p == '-' && o + 1 < len)
    buf[o++] = *p++;
  intlen = strcspn(p, ".");
  for (i = 0; p[i] != '\0' && o + 1 < len; i++) {
    if (i > 0 && i < intlen && (intlen - i) % 3 == 0)
      buf[o++] = ',';
    if (o + 1 < len)
      buf[o++] = p[i];
  }
  buf[o] = '\0';
  return buf;
}

/* ---- child runs --------------------------------------------------------- */

void bh_child_print(int err, const double *values, int n) {
  int i;

  printf("bh-result %d", err);
  for (i = 0; i < n; i++) {
    if (bh_isnan(values[i]))
      printf(" x");
    else
      printf(" %.6f", values[i]);
  }
  printf("\n");
  fflush(stdout);
}

/* Reads the "bh-result ERR V..." line out of a child's output. */
int bh__child_parse(const char *out, double *values, int n) {
  const char *p = strstr(out, "bh-result ");
  char *end;
  long err;
  int i;

  for (i = 0; i < n; i++)
    values[i] = bh_nan();
  if (p == NULL)
    return -1;
  err = strtol(p + 10, &end, 10);
  p = end;
  for (i = 0; i < n; i++) {
    while (*p == ' ')
      p++;
    if (*p == 'x') {
      p++;
      continue;
    }
    values[i] = strtod(p, &end);
    if (end == p)
      return -1;
    p = end;
  }
  return (int)err;
}

/* ---- progress watchdog -------------------------------------------------- */

static const char *volatile progress_what = "start";
static volatile unsigned progress_seq;
static double watchdog_limit;

void bh_progress(const char *what) {
  progress_what = what;
  __atomic_add_fetch(&progress_seq, 1, __ATOMIC_SEQ_CST);
}

static void watchdog(void *arg) {
  unsigned seen = ~0u;
  double since = bh_now();

  (void)arg;
  for (;;) {
    unsigned now_seq = __atomic_load_n(&progress_seq, __ATOMIC_SEQ_CST);

    if (now_seq != seen) {
      seen = now_seq;
      since = bh_now();
    } else if (bh_now() - since > watchdog_limit) {
      fprintf(stderr, "%s: watchdog: no progress for %.0f s in %s\n",
              bh_cfg.argv0, watchdog_limit, progress_what);
      fflush(stderr);
      fflush(stdout);
      _Exit(3);
    }
    bh_sleep_ms(250);
  }
}

void bh_watchdog_start(double limit_s) {
  watchdog_limit = limit_s;
  /* Never joined: it lives as long as the program. */
  (void)bh_thread_start(watchdog, NULL);
}

int bh_wait_flag(const int *flag, double timeout_s) {
  double end = bh_now() + timeout_s;
  unsigned spins = 0;

  while (!bh_load(flag)) {
    if (++spins % 64 == 0 && bh_now() > end)
      return -1;
    /* A short spin for a flag that is about to be set, then sleeps: a
     * waiter must not take a CPU from the threads being measured. */
    bh_sleep_ms(spins < 100 ? 0 : 1);
  }
  return 0;
}

/* ---- the spinner -------------------------------------------------------- */

static int spin_stop_flag;
static bh_thread *spinners[SPIN_MAX];
static int nspinners;

static void spin(void *arg) {
  volatile unsigned long n = 0;

  (void)arg;
  bh__lower_priority();
  while (!bh_load(&spin_stop_flag))
    n++;
}

void bh_spin_start(void) {
  int i, n = bh_ncpu();

  if (bh_under_wine()) {
    /* Wine maps thread priorities onto nothing on the host, so these
     * spinners would compete with the benchmark at equal priority. */
    fprintf(stderr,
            "%s: --spin is ignored under Wine: spin on the host "
            "(scripts/bench.sh --spin)\n",
            bh_cfg.argv0);
    return;
  }
  bh_store(&spin_stop_flag, 0);
  for (i = 0; i < n && i < SPIN_MAX; i++)
    spinners[nspinners++] = bh_thread_start(spin, NULL);
}

void bh_spin_stop(void) {
  int i;

  bh_store(&spin_stop_flag, 1);
  for (i = 0; i < nspinners; i++)
    bh_thread_join(spinners[i]);
  nspinners = 0;
}

int bh_child_run(const char *family, double *values, int n) {
  char ends[32], secs[32];
  const char *args[] = {"--child",   family, "--ends", ends,
                        "--seconds", secs,   NULL};

  snprintf(ends, sizeof(ends), "%d", bh_cfg.ends);
  snprintf(secs, sizeof(secs), "%g", bh_cfg.round_s);
  return bh_self_run(args, values, n);
}

void bh_pair_stats(const double *a, const double *b, int n,
                   struct bh_pair_stats *s) {
  double q[BH_MAX_ROUNDS] = {0}; /* GCC cannot see the n set below */
  int r;

  if (n > BH_MAX_ROUNDS)
    n = BH_MAX_ROUNDS;
  for (r = 0; r < n; r++)
    q[r] = !bh_isnan(a[r]) && !bh_isnan(b[r]) && b[r] > 0 ? a[r] / b[r]
                                                          : bh_nan();
  s->a = bh_median(a, n);
  s->b = bh_median(b, n);
  s->ratio = bh_median(q, n);
  s->lo = bh_min(q, n);
  s->hi = bh_max(q, n);
}
