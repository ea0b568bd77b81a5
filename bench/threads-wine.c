/*
 * The wineserver's CPU time, read by a Windows program under Wine: Wine
 * maps the host's root directory to drive Z:, so the host's /proc is
 * Z:\proc.  Other Wine prefixes on the same host have wineservers of
 * their own; ours is the one whose environment names our WINEPREFIX.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "threads.h"

#define ENV_MAX (256 * 1024)

/* Reads up to len - 1 bytes of a host file into buf, NUL-terminated.
 * Returns the count, or -1. */
static long read_host(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL)
    return -1;
  n = fread(buf, 1, len - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (long)n;
}

/* Whether the NUL-separated environment env[0..n) holds want. */
static int env_has(const char *env, long n, const char *want) {
  long i = 0;

  while (i < n) {
    if (strcmp(env + i, want) == 0)
      return 1;
    i += (long)strlen(env + i) + 1;
  }
  return 0;
}

/* Whether host process pid is a wineserver; with want set, also whether
 * its environment holds want ("WINEPREFIX=..."). */
static int is_ours(const char *pid, const char *want, char *env) {
  char path[64], comm[64];
  long n;

  snprintf(path, sizeof(path), "Z:\\proc\\%s\\comm", pid);
  if (read_host(path, comm, sizeof(comm)) < 0 ||
      strncmp(comm, "wineserver", 10) != 0)
    return 0;
  if (want == NULL)
    return 1;
  snprintf(path, sizeof(path), "Z:\\proc\\%s\\environ", pid);
  return (n = read_host(path, env, ENV_MAX)) > 0 && env_has(env, n, want);
}

/* The host pid of our wineserver, or 0 when none (or no single one)
 * is found. */
static long find_wineserver(void) {
  char prefix[MAX_PATH], want[MAX_PATH + 16], *env = malloc(ENV_MAX);
  WIN32_FIND_DATAA fd;
  HANDLE h;
  long found = 0;
  int matches = 0;

  if (env == NULL)
    return 0;
  want[0] = '\0';
  if (GetEnvironmentVariableA("WINEPREFIX", prefix, sizeof(prefix)) > 0)
    snprintf(want, sizeof(want), "WINEPREFIX=%s", prefix);
  h = FindFirstFileA("Z:\\proc\\*", &fd);
  if (h != INVALID_HANDLE_VALUE) {
    do {
      if (strspn(fd.cFileName, "0123456789") != strlen(fd.cFileName) ||
          !is_ours(fd.cFileName, want[0] ? want : NULL, env))
        continue;
      found = atol(fd.cFileName);
      matches++;
    } while (FindNextFileA(h, &fd));
    FindClose(h);
  }
  free(env);
  return matches == 1 ? found : 0;
}

double tb_wineserver_cpu(void) {
  static long pid = -1;
  char path[64], text[128];

  if (pid < 0)
    pid = bh_under_wine() ? find_wineserver() : 0;
  if (pid == 0)
    return bh_nan();
  /* schedstat's first field is the time on a CPU in nanoseconds (the
   * wineserver is one thread); /proc/PID/stat counts only 10 ms ticks. */
  snprintf(path, sizeof(path), "Z:\\proc\\%ld\\schedstat", pid);
  if (read_host(path, text, sizeof(text)) <= 0)
    return bh_nan();
  return strtod(text, NULL) * 1e-9;
}
