/*
 * Command-line parsing for the tools: long options with "--name value" or
 * "--name=value", a few short ones, positional arguments anywhere, "--".
 * Nothing is copied into fixed-size buffers: values point into argv.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"

void tl_args_init(struct tl_args *a, int argc, char **argv) {
  a->argc = argc;
  a->argv = argv;
  a->next = 1;
  a->only_args = 0;
}

static const struct tl_option *find_long(const struct tl_option *table,
                                         const char *name, size_t len) {
  for (; table->name != NULL; table++)
    if (strlen(table->name) == len && strncmp(table->name, name, len) == 0)
      return table;
  return NULL;
}

static const struct tl_option *find_short(const struct tl_option *table,
                                          char c) {
  for (; table->name != NULL; table++)
    if (table->short_name != 0 && table->short_name == c)
      return table;
  return NULL;
}

/* Takes the value of opt from "=value" (inline) or the next argument. */
static int take_value(struct tl_args *a, const struct tl_option *opt,
                      const char *inline_value, const char **value) {
  *value = inline_value;
  if (opt->arg == TL_ARG_NONE) {
    if (inline_value != NULL) {
      tl_usage_error("option '--%s' takes no value", opt->name);
      return TL_ARGS_ERROR;
    }
    return opt->id;
  }
  /* An optional value must be attached, or "--wait pipe:x" would eat the
   * address. */
  if (inline_value != NULL || opt->arg == TL_ARG_OPTIONAL)
    return opt->id;
  if (a->next >= a->argc) {
    tl_usage_error("option '--%s' needs a value", opt->name);
    return TL_ARGS_ERROR;
  }
  *value = a->argv[a->next++];
  return opt->id;
}

static int next_long(struct tl_args *a, const struct tl_option *table,
                     const char *arg, const char **value) {
  const char *eq = strchr(arg, '=');
  size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
  const struct tl_option *opt = find_long(table, arg, len);

  if (opt == NULL) {
    tl_usage_error("unknown option '--%.*s'", (int)len, arg);
    return TL_ARGS_ERROR;
  }
  return take_value(a, opt, eq != NULL ? eq + 1 : NULL, value);
}

static int next_short(struct tl_args *a, const struct tl_option *table,
                      const char *arg, const char **value) {
  const struct tl_option *opt = find_short(table, arg[0]);

  if (opt == NULL || arg[1] != '\0') {
    tl_usage_error("unknown option '-%s'", arg);
    return TL_ARGS_ERROR;
  }
  return take_value(a, opt, NULL, value);
}

int tl_args_next(struct tl_args *a, const struct tl_option *table,
                 const char **value) {
  const char *arg;

  *value = NULL;
  if (a->next >= a->argc)
    return TL_ARGS_END;
  arg = a->argv[a->next++];
  if (!a->only_args && strcmp(arg, "--") == 0) {
    a->only_args = 1;
    return tl_args_next(a, table, value);
  }
  /* "-" alone is an argument, as in most tools. */
  if (a->only_args || arg[0] != '-' || arg[1] == '\0') {
    *value = arg;
    return TL_ARGS_POSITIONAL;
  }
  if (arg[1] == '-')
    return next_long(a, table, arg + 2, value);
  return next_short(a, table, arg + 1, value);
}

int tl_parse_long(const char *name, const char *text, long min, long max,
                  long *out) {
  char *end;
  long v;

  /* strtol alone would also take leading blanks and a plus sign. */
  const char *digits = text[0] == '-' ? text + 1 : text;

  errno = 0;
  v = strtol(text, &end, 10);
  if (*digits < '0' || *digits > '9' || *end != '\0' || errno != 0 ||
      v < min || v > max)
    return tl_usage_error("invalid value '%s' for --%s (%ld to %ld)", text,
                          name, min, max);
  *out = v;
  return 0;
}

int tl_address_is_tcp(const char *address) {
  return strncmp(address, "tcp:", 4) == 0;
}
