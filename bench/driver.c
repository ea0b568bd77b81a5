/*
 * The bench driver shared by every bench program: the case table, the
 * interleaved rounds (every case and family once per round, the order of
 * families alternating), same-round ratios and the result tables.  The
 * program's family file says what npipe is compared with.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npipe.h"

#include "bench.h"

#define MAX_ROUNDS BH_MAX_ROUNDS
#define MAX_FAMILIES 4
#define KIB 1024u

struct bench_case {
  const char *group; /* the table it belongs to */
  const char *label;
  enum bench_kind kind;
  int tcp;
  size_t size;
};

static const struct bench_case cases[] = {
    {"bulk", "64 B 1-way", BENCH_BULK, 0, 64},
    {"bulk", "8 KiB 1-way", BENCH_BULK, 0, 8 * KIB},
    {"bulk", "64 KiB 1-way", BENCH_BULK, 0, 64 * KIB},
    {"bulk", "256 KiB 1-way", BENCH_BULK, 0, 256 * KIB},
    {"bulk", "64 B 2-way", BENCH_BULK2, 0, 64},
    {"bulk", "8 KiB 2-way", BENCH_BULK2, 0, 8 * KIB},
    {"bulk", "64 KiB 2-way", BENCH_BULK2, 0, 64 * KIB},
    {"bulk", "256 KiB 2-way", BENCH_BULK2, 0, 256 * KIB},
    {"ping-pong", "1 B", BENCH_PING, 0, 1},
    {"ping-pong", "4 KiB", BENCH_PING, 0, 4 * KIB},
    {"connect", "connect+accept+close", BENCH_CONNECT, 0, 0},
    {"connect", "connect+1 B request/reply", BENCH_CONNRR, 0, 1},
    {"tcp", "bulk 8 KiB 1-way", BENCH_BULK, 1, 8 * KIB},
    {"tcp", "bulk 64 KiB 1-way", BENCH_BULK, 1, 64 * KIB},
    {"tcp", "bulk 256 KiB 1-way", BENCH_BULK, 1, 256 * KIB},
    {"tcp", "ping-pong 1 B", BENCH_PING, 1, 1},
    {"tcp", "ping-pong 4 KiB", BENCH_PING, 1, 4 * KIB},
    {"scale", "idle ends", BENCH_SCALE, 0, 0},
};

#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

/* Figures by case, family (0 is npipe), round and value. */
static double results[NCASES][MAX_FAMILIES][MAX_ROUNDS][BENCH_NVAL];
static int errors[NCASES][MAX_FAMILIES]; /* the first error code */
static int failed[NCASES][MAX_FAMILIES]; /* rounds that failed */
static int npipe_missing[2];             /* [tcp]: the probe's NP_E*, or 0 */

static const struct bench_family *family(int f) {
  return f == 0 ? &bench_npipe : bench_baselines[f - 1];
}

static int nfamilies(void) {
  int n = 1 + bench_nbaselines;

  return n > MAX_FAMILIES ? MAX_FAMILIES : n;
}

void bench_ctl_start(struct bench_ctl *c, double seconds) {
  c->t0 = bh_now();
  c->until = c->t0 + seconds;
  bh_store(&c->go, 1);
}

int bench_ctl_record(struct bench_ctl *c) {
  if (bh_add(&c->done, 1) != c->need)
    return 0;
  bh_store(&c->stop, 1);
  return 1;
}

void bench_fill(void *buf, size_t len) {
  unsigned char *p = buf;
  size_t i;

  for (i = 0; i < len; i++)
    p[i] = (unsigned char)(i * 7 + 1);
}

static void work_of(const struct bench_case *c, struct bench_work *w) {
  w->kind = c->kind;
  w->tcp = c->tcp;
  w->size = c->size;
  w->seconds = bh_cfg.round_s;
  w->ends = bh_cfg.ends;
}

static int selected(int c) {
  char name[96];
  struct bench_work w;
  int f;

  snprintf(name, sizeof(name), "%s %s", cases[c].group, cases[c].label);
  if (bh_cfg.only != NULL && strstr(name, bh_cfg.only) == NULL)
    return 0;
  work_of(&cases[c], &w);
  for (f = 1; f < nfamilies(); f++)
    if (family(f)->supports(&w))
      return 1;
  return 0;
}

static void measure(int c, int f, int r) {
  const struct bench_family *fam = family(f);
  struct bench_result res;
  struct bench_work w;
  int i, err;

  work_of(&cases[c], &w);
  for (i = 0; i < BENCH_NVAL; i++)
    res.v[i] = bh_nan();
  if (!fam->supports(&w) || !bh_family_chosen(fam->name))
    err = 0;
  else if (f == 0 && npipe_missing[w.tcp])
    err = npipe_missing[w.tcp];
  else if (w.kind == BENCH_SCALE)
    err = bh_child_run(fam->name, res.v, BENCH_NVAL);
  else
    err = fam->run(&w, &res);
  if (err != 0) {
    for (i = 0; i < BENCH_NVAL; i++)
      res.v[i] = bh_nan();
    if (errors[c][f] == 0)
      errors[c][f] = err;
    failed[c][f]++;
  }
  memcpy(results[c][f][r], res.v, sizeof(res.v));
}

static void run_rounds(void) {
  char what[128];
  int r, c, k, n = nfamilies();

  for (r = 0; r < bh_cfg.rounds; r++) {
    fprintf(stderr, "%s: round %d/%d\n", bench_suite_name, r + 1,
            bh_cfg.rounds);
    for (c = 0; c < NCASES; c++) {
      if (!selected(c))
        continue;
      /* Alternate the order of families so that neither always runs
       * first after a change of case. */
      for (k = 0; k < n; k++) {
        int f = r % 2 == 0 ? k : n - 1 - k;

        snprintf(what, sizeof(what), "%s %s (%s, round %d)", cases[c].group,
                 cases[c].label, family(f)->name, r + 1);
        bh_progress(what);
        measure(c, f, r);
      }
    }
  }
}

/* ---- tables ------------------------------------------------------------- */

/* Medians of value v of family fa and fb over the rounds and of their
 * same-round ratio. */
static void row_stats(int c, int fa, int va, int fb, int vb,
                      struct bh_pair_stats *s) {
  double a[MAX_ROUNDS], b[MAX_ROUNDS];
  int r;

  for (r = 0; r < bh_cfg.rounds; r++) {
    a[r] = results[c][fa][r][va];
    b[r] = results[c][fb][r][vb];
  }
  bh_pair_stats(a, b, bh_cfg.rounds, s);
}

/* The factor from a family's figure of kind k to the table's unit. */
static double unit_scale(enum bench_kind k) {
  return k == BENCH_BULK || k == BENCH_BULK2 ? 1e-6 : 1.0;
}

/* Decimals that keep two significant digits of small figures. */
static int precision(double x, int prec) {
  if (prec < 0)
    prec = x < 10 ? 2 : x < 100 ? 1 : 0;
  return prec;
}

/* prec < 0: as many decimals as precision() asks for. */
/* The figure of family f in case c, or why there is none. */
static void cell(char *buf, size_t len, double x, int c, int f, int prec) {
  int err = errors[c][f];
  size_t n;

  if (!bh_isnan(x)) {
    bh_fmt(buf, len, x, precision(x, prec));
    /* Rounds that failed are left out of the median: say so. */
    n = strlen(buf);
    if (failed[c][f] > 0 && n < len)
      snprintf(buf + n, len - n, " (%d failed)", failed[c][f]);
  } else if (err < -1)
    snprintf(buf, len, "%s", np_errname(err));
  else if (err != 0)
    snprintf(buf, len, "error");
  else
    snprintf(buf, len, "n/a");
}

/* One table row: family fa's figure, family fb's, their ratio. */
static void print_row(const char *label, const struct bh_pair_stats *s, int c,
                      int fa, int fb, int prec, const char *target) {
  char a[48], b[48], q[32], lo[32], hi[32];

  cell(a, sizeof(a), s->a, c, fa, prec);
  cell(b, sizeof(b), s->b, c, fb, prec);
  bh_fmt(q, sizeof(q), s->ratio, 2);
  bh_fmt(lo, sizeof(lo), s->lo, 2);
  bh_fmt(hi, sizeof(hi), s->hi, 2);
  printf("| %s | %s | %s | %s | %s..%s | %s |\n", label, a, b, q, lo, hi,
         target);
}

/* "want: ok" or "want: MISS" for got, or " " when there is no target.
 * want is a ratio, or with bytes set an absolute size. */
static void target_text(char *buf, size_t len, int has, double want,
                        double got, int lower_is_better, int bytes) {
  int ok = lower_is_better ? got <= want : got >= want;
  char w[32];

  snprintf(w, sizeof(w), bytes ? "%s %.0f B" : "%s %.2fx",
           lower_is_better ? "<=" : ">=", want);
  if (!has)
    snprintf(buf, len, " ");
  else
    snprintf(buf, len, "%s: %s", w,
             bh_isnan(got) ? "n/a"
             : ok          ? "ok"
                           : "MISS");
}

static void print_header(const char *title, const char *unit) {
  printf("\n### %s (%s)\n\n", title, unit);
  printf("| case | npipe | baseline | ratio | min..max | target |\n");
  printf("|---|---:|---:|---:|---|---|\n");
}

static void print_plain_group(const char *group, const char *title,
                              const char *unit) {
  char label[128], target[48];
  struct bh_pair_stats s;
  int c, f, printed = 0;

  for (c = 0; c < NCASES; c++) {
    struct bench_work w;
    double scale, want;

    if (strcmp(cases[c].group, group) != 0 || !selected(c))
      continue;
    work_of(&cases[c], &w);
    scale = unit_scale(w.kind);
    for (f = 1; f < nfamilies(); f++) {
      int has;

      if (!family(f)->supports(&w))
        continue;
      if (!printed++)
        print_header(title, unit);
      row_stats(c, 0, 0, f, 0, &s);
      s.a *= scale;
      s.b *= scale;
      has = family(f)->target != NULL && family(f)->target(&w, &want);
      target_text(target, sizeof(target), has, want, s.ratio, 0, 0);
      snprintf(label, sizeof(label), "%s vs %s", cases[c].label,
               family(f)->name);
      print_row(label, &s, c, 0, f, -1, target);
    }
  }
}

/* Per-end memory must stay under this many bytes (issue 7). */
#define PINNED_MAX 512.0
/* A wait with many ends registered may cost at most this many times one
 * with 10. */
#define WAIT_RATIO_MAX 2.0

static void print_scale(void) {
  static const struct {
    int v;
    const char *what;
    int prec;
  } rows[] = {{SCALE_COMMIT, "committed B per idle end", 0},
              {SCALE_RSS, "resident B per idle end", 0},
              {SCALE_CREATE, "us to create a connected pair", -1}};
  char label[160], target[48];
  struct bh_pair_stats s;
  size_t i;
  int c, f;

  for (c = 0; c < NCASES; c++)
    if (cases[c].kind == BENCH_SCALE && selected(c))
      break;
  if (c == NCASES)
    return;
  snprintf(label, sizeof(label),
           "scale: %d registered ends, fresh process per round", bh_cfg.ends);
  print_header(label, "lower is better");
  for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    for (f = 1; f < nfamilies(); f++) {
      struct bench_work w;

      work_of(&cases[c], &w);
      if (!family(f)->supports(&w))
        continue;
      row_stats(c, 0, rows[i].v, f, rows[i].v, &s);
      /* The memory target is absolute, on npipe's own figure. */
      target_text(target, sizeof(target), rows[i].v != SCALE_CREATE,
                  PINNED_MAX, s.a, 1, 1);
      snprintf(label, sizeof(label), "%s vs %s", rows[i].what,
               family(f)->name);
      print_row(label, &s, c, 0, f, rows[i].prec,
                rows[i].v == SCALE_CREATE ? " " : target);
    }
  }
  row_stats(c, 0, SCALE_POOL, 0, SCALE_POOL, &s);
  if (!bh_isnan(s.a)) {
    target_text(target, sizeof(target), 1, PINNED_MAX, s.a, 1, 1);
    s.b = s.ratio = s.lo = s.hi = bh_nan();
    print_row("pool buffer bytes lent per idle end (white-box)", &s, c, 0, 0,
              0, target);
  }
  for (f = 0; f < nfamilies(); f++) {
    row_stats(c, f, SCALE_WAITN, f, SCALE_WAIT10, &s);
    if (f > 0 && bh_isnan(s.a))
      continue;
    /* The target is npipe's; a baseline's own ratio shows what the
     * system adds by itself. */
    target_text(target, sizeof(target), f == 0, WAIT_RATIO_MAX, s.ratio, 1, 0);
    snprintf(label, sizeof(label),
             "us per write+wait+read, %d ends vs %s with 10", bh_cfg.ends,
             family(f)->name);
    print_row(label, &s, c, f, f, -1, target);
  }
}

static void print_tables(void) {
  print_plain_group("bulk", "Bulk throughput", "MB/s");
  print_plain_group("ping-pong", "Ping-pong", "round trips/s");
  print_plain_group("connect", "Connections", "per second");
  print_plain_group("tcp", "TCP loopback", "MB/s, round trips/s");
  print_scale();
  printf("\n");
}

/* ---- main --------------------------------------------------------------- */

static int child_main(void) {
  struct bench_result res;
  struct bench_work w = {BENCH_SCALE, 0, 0, 0, 0};
  int f, err = -1;

  w.seconds = bh_cfg.round_s;
  w.ends = bh_cfg.ends;
  for (f = 0; f < BENCH_NVAL; f++)
    res.v[f] = bh_nan();
  bh_watchdog_start(120);
  for (f = 0; f < nfamilies(); f++)
    if (strcmp(family(f)->name, bh_cfg.child) == 0)
      break;
  if (f == nfamilies())
    fprintf(stderr, "%s: no family %s\n", bh_cfg.argv0, bh_cfg.child);
  else
    err = family(f)->run(&w, &res);
  bh_child_print(err, res.v, BENCH_NVAL);
  return err == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static void print_setup(void) {
  int f;

  printf("\n## %s\n\n", bench_suite_name);
  printf("npipe %s; %d rounds x %.3g s per case, interleaved; ratios are "
         "npipe / baseline (same round); %d CPUs; wine: %s; --spin: %s\n",
         np_version_string(), bh_cfg.rounds, bh_cfg.round_s, bh_ncpu(),
         bh_under_wine() ? "yes" : "no", bh_cfg.spin ? "yes" : "no");
  printf("families: npipe");
  for (f = 1; f < nfamilies(); f++)
    printf(", %s", family(f)->name);
  printf("\n");
  if (npipe_missing[0] != 0)
    printf("npipe: not available (%s)\n", np_errname(npipe_missing[0]));
  if (npipe_missing[1] != 0)
    printf("npipe tcp: not available (%s)\n", np_errname(npipe_missing[1]));
  fflush(stdout);
}

/* Measurements that failed, told on standard error: the tables show
 * them, and the exit status makes a script notice. */
static int failures(void) {
  int c, f, n = 0;

  for (c = 0; c < NCASES; c++)
    for (f = 0; f < nfamilies(); f++)
      n += failed[c][f];
  if (n > 0)
    fprintf(stderr, "%s: %d measurements failed (see the tables)\n",
            bh_cfg.argv0, n);
  return n;
}

int main(int argc, char **argv) {
  int rc = bh_config_parse(argc, argv);

  if (rc != 0)
    return rc > 0 ? EXIT_SUCCESS : 2;
  if (bh_cfg.rounds > MAX_ROUNDS)
    bh_cfg.rounds = MAX_ROUNDS;
  if (bh_cfg.child != NULL)
    return child_main();
  bh_private_dir();
  npipe_missing[0] = bench_npipe_probe(0);
  npipe_missing[1] = bench_npipe_probe(1);
  print_setup();
  bh_watchdog_start(bh_cfg.quick ? 60 : 180);
  if (bh_cfg.spin)
    bh_spin_start();
  run_rounds();
  if (bh_cfg.spin)
    bh_spin_stop();
  bh_progress("tables");
  print_tables();
  return failures() == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
