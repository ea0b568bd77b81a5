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

/* Longer messages are cut short. */
#define LINE_MAX_BYTES 2048

/* Prints one line with one call, so that the threads of pipe-server
 * --threads never interleave their messages. */
static void put_line(char *line, int len) {
  if (len < 0)
    len = 0;
  if (len > LINE_MAX_BYTES - 2)
    len = LINE_MAX_BYTES - 2;
  line[len] = '\n';
  line[len + 1] = '\0';
  fputs(line, stderr);
}

static void vreport(const char *fmt, va_list ap) {
  char line[LINE_MAX_BYTES];
  int len = snprintf(line, sizeof(line), "%s: ", tl_prog);

  if (len >= 0 && len < LINE_MAX_BYTES - 2)
    len += vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
  put_line(line, len);
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

/* Bytes per second as "12.3 MiB/s" (binary units, as dd and pv use),
 * into buf. */
static void format_rate(char *buf, size_t len, double bytes_per_s) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;

  while (bytes_per_s >= 1024.0 && u < 3) {
    bytes_per_s /= 1024.0;
    u++;
  }
  snprintf(buf, len, "%.1f %s/s", bytes_per_s, units[u]);
}

void tl_report_stats(const char *who, uint64_t in, uint64_t out, uint64_t ms) {
  double s = (double)(ms == 0 ? 1 : ms) / 1000.0;
  char line[LINE_MAX_BYTES], rate_in[32], rate_out[32];

  format_rate(rate_in, sizeof(rate_in), (double)in / s);
  format_rate(rate_out, sizeof(rate_out), (double)out / s);
  put_line(line, snprintf(line, sizeof(line),
                          "%s: %s: received %" PRIu64 " bytes, sent %" PRIu64
                          " bytes in %.3f s (%s in, %s out)",
                          tl_prog, who, in, out, (double)ms / 1000.0, rate_in,
                          rate_out));
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
