/*
 * libFuzzer harness: address parsing.  Beyond "no crash", it checks what a
 * successful parse promises: bounded, NUL-terminated fields, pipe names
 * without separators, ports in range, and an exact round trip for the
 * "pipe:" and "tcp:" forms.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void check(int ok) {
  if (!ok)
    abort();
}

static void check_pipe(const char *text, const struct np__address *a) {
  size_t len = strlen(a->name), i;

  check(len >= 1 && len <= NP__PIPE_NAME_MAX);
  for (i = 0; i < len; i++)
    check(a->name[i] != '\\' && a->name[i] != '/' &&
          (unsigned char)a->name[i] >= 0x20);
  if (strncmp(text, "pipe:", 5) == 0)
    check(strcmp(text + 5, a->name) == 0 && strcmp(a->host, ".") == 0);
}

static void check_tcp(const char *text, const struct np__address *a) {
  char again[300];

  check(a->port <= 65535 && a->host[0] != '\0');
  if (strchr(a->host, ':') != NULL)
    snprintf(again, sizeof(again), "tcp:[%s]:%u", a->host, a->port);
  else
    snprintf(again, sizeof(again), "tcp:%s:%u", a->host, a->port);
  /* Leading zeros in the port are the one accepted non-canonical form. */
  if (strstr(text, ":0") == NULL)
    check(strcmp(again, text) == 0);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
  struct np__address a;
  char *text = malloc(size + 1);
  int err;

  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  err = np__address_parse(text, &a);
  check(err == 0 || err == NP_EINVAL || err == NP_ENAMETOOLONG);
  if (err == 0) {
    check(memchr(a.host, '\0', sizeof(a.host)) != NULL);
    check(memchr(a.name, '\0', sizeof(a.name)) != NULL);
    if (a.kind == NP__ADDR_PIPE)
      check_pipe(text, &a);
    else if (a.kind == NP__ADDR_TCP)
      check_tcp(text, &a);
    else
      check(a.kind == NP__ADDR_UNIX && a.name[0] != '\0');
  }
  free(text);
  return 0;
}
