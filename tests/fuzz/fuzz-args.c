/*
 * libFuzzer harness: the tools' command lines.  The input is split at NUL
 * bytes into argv words (each its own allocation, so that reading past a
 * word or past argv is caught), then parsed three ways:
 *   - by pipe-server's and pipe-client's own parse() (args-server.c,
 *     args-client.c), checking the status, what was printed, and that a
 *     successful parse left a consistent configuration;
 *   - by tl_args_next alone over each tool's table, continuing past
 *     errors, checking that it always advances and that every value
 *     points into argv (nothing is copied);
 *   - every word through tl_parse_long, checking that an accepted number
 *     is in range and written in plain decimal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-args.h"

static void check(int ok) {
  if (!ok)
    abort();
}

static int starts_with(const char *s, size_t len, const char *prefix) {
  size_t n = strlen(prefix);

  return len >= n && memcmp(s, prefix, n) == 0;
}

static int ends_with(const char *s, size_t len, const char *suffix) {
  size_t n = strlen(suffix);

  return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Non-zero when p points into one of argv[1..argc), its NUL included. */
static int in_argv(const char *p, int argc, char **argv) {
  int i;

  for (i = 1; i < argc; i++)
    if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
      return 1;
  return 0;
}

static int has_newline(int argc, char **argv) {
  int i;

  for (i = 1; i < argc; i++)
    if (strchr(argv[i], '\n') != NULL)
      return 1;
  return 0;
}

static size_t count_newlines(const char *s, size_t len) {
  size_t i, n = 0;

  for (i = 0; i < len; i++)
    n += s[i] == '\n';
  return n;
}

/* Captures what a parse prints: the tools print through stdout and
 * stderr, which are swapped for memory streams meanwhile (sanitizer and
 * libFuzzer reports bypass stdio, so they still reach the terminal). */
struct capture {
  FILE *saved_out, *saved_err;
  char *out, *err;
  size_t out_len, err_len;
};

static void capture_start(struct capture *c) {
  c->saved_out = stdout;
  c->saved_err = stderr;
  stdout = open_memstream(&c->out, &c->out_len);
  stderr = open_memstream(&c->err, &c->err_len);
  check(stdout != NULL && stderr != NULL);
}

static void capture_end(struct capture *c) {
  check(fclose(stdout) == 0 && fclose(stderr) == 0);
  stdout = c->saved_out;
  stderr = c->saved_err;
}

static void check_tool(const char *prog,
                       int (*parse)(int, char **, struct fz_parsed *),
                       int argc, char **argv) {
  struct fz_parsed p;
  struct capture c;
  char line[64];
  int status;

  tl_prog = prog;
  tl_verbose = 0;
  memset(&p, 0, sizeof(p));
  capture_start(&c);
  status = parse(argc, argv, &p);
  capture_end(&c);
  switch (status) {
  case 0: /* parsed: nothing printed, a consistent configuration */
    check(c.out_len == 0 && c.err_len == 0);
    check(p.address != NULL && in_argv(p.address, argc, argv));
    check(!p.needs_other || p.other != NULL);
    check(p.other == NULL || in_argv(p.other, argc, argv));
    check(!p.bad_combination);
    check(!(p.message && strncmp(p.address, "tcp:", 4) == 0));
    break;
  case -1: /* --help or --version on stdout */
    check(c.err_len == 0);
    snprintf(line, sizeof(line), "%s (npipe) ", prog);
    check(starts_with(c.out, c.out_len, "Usage: ") ||
          starts_with(c.out, c.out_len, line));
    break;
  case TL_EXIT_USAGE: /* "PROG: reason" and the hint, on stderr only */
    check(c.out_len == 0);
    snprintf(line, sizeof(line), "%s: ", prog);
    check(starts_with(c.err, c.err_len, line));
    snprintf(line, sizeof(line), "\nTry '%s --help'.\n", prog);
    check(ends_with(c.err, c.err_len, line));
    /* One line of reason (unless an argument quoted in it has one). */
    check(has_newline(argc, argv) || count_newlines(c.err, c.err_len) == 2);
    break;
  default:
    check(0);
  }
  free(c.out);
  free(c.err);
}

/* tl_args_next alone, carrying on after errors as far as it goes. */
static void check_walk(const struct tl_option *table, int argc, char **argv) {
  struct tl_args a;
  struct capture c;
  const char *value;
  int id, before;

  capture_start(&c);
  tl_args_init(&a, argc, argv);
  for (;;) {
    before = a.next;
    id = tl_args_next(&a, table, &value);
    if (id == TL_ARGS_END) {
      check(a.next >= argc && value == NULL);
      break;
    }
    check(a.next > before && a.next <= argc);
    check(value == NULL || in_argv(value, argc, argv));
    check(id != TL_ARGS_POSITIONAL || value != NULL);
    check(id == TL_ARGS_POSITIONAL || id == TL_ARGS_ERROR || id > 0);
  }
  capture_end(&c);
  free(c.out);
  free(c.err);
}

static void check_number(const char *text) {
  struct capture c;
  const char *d = text[0] == '-' ? text + 1 : text;
  long v = 12345;
  int err;

  capture_start(&c);
  err = tl_parse_long("n", text, -1000, 1000000, &v);
  capture_end(&c);
  if (err == 0) {
    check(v >= -1000 && v <= 1000000 && c.err_len == 0);
    check(*d != '\0' && strspn(d, "0123456789") == strlen(d));
    check(strtol(text, NULL, 10) == v);
  } else {
    check(err == TL_EXIT_USAGE && v == 12345 && c.err_len > 0);
  }
  free(c.out);
  free(c.err);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  enum { MAX_WORDS = 64 };
  char *argv[MAX_WORDS + 2];
  char **exact;
  int argc = 1, i;
  size_t start = 0, k;

  /* argv[0] and then one word per NUL-terminated piece. */
  argv[0] = strdup("tool");
  for (k = 0; k <= size && argc <= MAX_WORDS; k++) {
    if (k == size || data[k] == '\0') {
      if (k == size && k == start && argc > 1)
        break; /* a trailing NUL ends the last word, adds none */
      argv[argc] = malloc(k - start + 1);
      check(argv[argc] != NULL);
      memcpy(argv[argc], data + start, k - start);
      argv[argc][k - start] = '\0';
      argc++;
      start = k + 1;
    }
  }
  /* An argv array of exactly argc + 1 entries. */
  exact = malloc(sizeof(char *) * (size_t)(argc + 1));
  check(argv[0] != NULL && exact != NULL);
  memcpy(exact, argv, sizeof(char *) * (size_t)argc);
  exact[argc] = NULL;

  check_tool("pipe-server", fz_server_parse, argc, exact);
  check_tool("pipe-client", fz_client_parse, argc, exact);
  check_walk(fz_server_options, argc, exact);
  check_walk(fz_client_options, argc, exact);
  for (i = 1; i < argc; i++)
    check_number(exact[i]);

  for (i = 0; i < argc; i++)
    free(exact[i]);
  free(exact);
  return 0;
}
