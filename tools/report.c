/*
 * What the tools print on standard error: one-line errors that name the
 * address and the cause, -v notes, --stats lines and the progress meter.
 * Standard output carries only relayed data.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "tools.h"

const char *tl_prog = "npipe";
int tl_verbose;

static void vreport(const char *fmt, va_list ap) {
  fprintf(stderr, "%s: ", tl_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void tl_error(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
}

void tl_note(const char *fmt, ...) {
  va_list ap;

  if (!tl_verbose)
    return;
  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
}

int tl_usage_error(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vreport(fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try '%s --help'.\n", tl_prog);
  return TL_EXIT_USAGE;
}

int tl_address_error(const char *address, int err, int other_status) {
  switch (err) {
  case NP_EINVAL:
  case NP_ENAMETOOLONG:
  case NP_ENOTSUP:
    return tl_usage_error("%s: %s", address, np_strerror(err));
  default:
    tl_error("%s: %s", address, np_strerror(err));
    return other_status;
  }
}

/* Bytes per second as "12.3 MiB/s" (binary units, as dd and pv use). */
static void print_rate(double bytes_per_s) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;

  while (bytes_per_s >= 1024.0 && u < 3) {
    bytes_per_s /= 1024.0;
    u++;
  }
  fprintf(stderr, "%.1f %s/s", bytes_per_s, units[u]);
}

void tl_report_stats(const char *who, uint64_t in, uint64_t out, uint64_t ms) {
  double s = (double)(ms == 0 ? 1 : ms) / 1000.0;

  fprintf(stderr,
          "%s: %s: received %" PRIu64 " bytes, sent %" PRIu64
          " bytes in %.3f s (",
          tl_prog, who, in, out, (double)ms / 1000.0);
  print_rate((double)in / s);
  fputs(" in, ", stderr);
  print_rate((double)out / s);
  fputs(" out)\n", stderr);
}

void tl_report_progress(uint64_t sent, uint64_t total, int done) {
  double mib = (double)sent / (1024.0 * 1024.0);

  if (total > 0)
    fprintf(stderr, "\r%s: sent %.1f of %.1f MiB (%3u%%)", tl_prog, mib,
            (double)total / (1024.0 * 1024.0),
            (unsigned)(sent >= total ? 100 : sent * 100 / total));
  else
    fprintf(stderr, "\r%s: sent %.1f MiB", tl_prog, mib);
  if (done)
    fputc('\n', stderr);
}
