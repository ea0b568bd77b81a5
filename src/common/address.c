/*
 * Address strings: "pipe:NAME", "\\HOST\pipe\NAME", "unix:/path" and
 * "tcp:HOST:PORT".  Parsing is portable; whether a kind is supported is
 * the backend's business.
 */
#include "config.h"

#include <string.h>

#include "internal.h"

static int has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Case-insensitive ASCII prefix test, for the "pipe" of \\.\PIPE\x. */
static int has_prefix_nocase(const char *s, const char *prefix) {
  for (; *prefix != '\0'; s++, prefix++) {
    char c = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;

    if (c != *prefix)
      return 0;
  }
  return 1;
}

static int copy_field(char *dst, size_t cap, const char *src, size_t len) {
  if (len >= cap)
    return NP_ENAMETOOLONG;
  memcpy(dst, src, len);
  dst[len] = '\0';
  return 0;
}

/* Length of the UTF-8 sequence at s (1 to 4), or 0 when it is not valid
 * UTF-8: truncated, overlong, a surrogate or above U+10FFFF.  Windows
 * names are UTF-16, so a name that cannot convert must fail on POSIX too,
 * or one command line would work on one system only. */
static size_t utf8_sequence(const unsigned char *s) {
  static const unsigned long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
  unsigned long cp;
  size_t n, i;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc0 && s[0] <= 0xdf)
    n = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf7)
    n = 4;
  else
    return 0; /* a continuation byte, or a lead byte UTF-8 never uses */
  cp = s[0] & (0x7fu >> n);
  /* A NUL stops the loop too: it is no continuation byte. */
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0u) != 0x80u)
      return 0;
    cp = cp << 6 | (s[i] & 0x3fu);
  }
  if (cp < min_cp[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return n;
}

/* A pipe name is what follows \\.\pipe\ on Windows and a file name in the
 * private directory on POSIX, so both systems' rules apply. */
static int check_pipe_name(const char *name) {
  size_t len = strlen(name);
  size_t i;

  if (len == 0)
    return NP_EINVAL;
  if (len > NP__PIPE_NAME_MAX)
    return NP_ENAMETOOLONG;
  for (i = 0; i < len;) {
    unsigned char c = (unsigned char)name[i];
    size_t n = utf8_sequence((const unsigned char *)name + i);

    if (n == 0 || c < 0x20 || c == 0x7f || c == '\\' || c == '/')
      return NP_EINVAL;
    i += n;
  }
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return NP_EINVAL;
  return 0;
}

static int parse_pipe(const char *name, const char *host, size_t host_len,
                      struct np__address *out) {
  int err = check_pipe_name(name);

  if (err == 0)
    err = copy_field(out->host, sizeof(out->host), host, host_len);
  if (err == 0)
    err = copy_field(out->name, sizeof(out->name), name, strlen(name));
  out->kind = NP__ADDR_PIPE;
  return err;
}

/* "\\HOST\pipe\NAME": HOST is "." for this machine. */
static int parse_unc(const char *text, struct np__address *out) {
  const char *host = text + 2;
  const char *sep = strchr(host, '\\');

  if (sep == NULL || sep == host || !has_prefix_nocase(sep, "\\pipe\\"))
    return NP_EINVAL;
  return parse_pipe(sep + 6, host, (size_t)(sep - host), out);
}

static int parse_port(const char *s, unsigned *port) {
  unsigned long v = 0;

  if (*s == '\0')
    return NP_EINVAL;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return NP_EINVAL;
    v = v * 10 + (unsigned long)(*s - '0');
    if (v > 65535)
      return NP_EINVAL;
  }
  *port = (unsigned)v;
  return 0;
}

/* Host names and IPv4 literals: letters, digits, '.', '-' and '_';
 * bracketed IPv6 literals: hex digits, ':', '.' and a '%' zone. */
static int check_host(const char *host, size_t len, int bracketed) {
  size_t i;
  int colons = 0;

  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)host[i];
    int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                (c >= 'A' && c <= 'Z');

    if (c == ':')
      colons++;
    else if (!alnum && c != '.' && c != '-' && c != '_' &&
             !(bracketed && c == '%'))
      return NP_EINVAL;
  }
  /* Brackets are for IPv6 literals only, and those need them. */
  return (bracketed ? colons >= 2 : colons == 0) ? 0 : NP_EINVAL;
}

/* "HOST:PORT" or "[V6]:PORT". */
static int parse_tcp(const char *hp, struct np__address *out) {
  const char *host = hp, *colon;
  size_t host_len;
  int err;

  out->kind = NP__ADDR_TCP;
  if (*hp == '[') {
    const char *close = strchr(hp, ']');

    if (close == NULL || close[1] != ':')
      return NP_EINVAL;
    host = hp + 1;
    host_len = (size_t)(close - host);
    colon = close + 1;
  } else {
    colon = strrchr(hp, ':');
    if (colon == NULL)
      return NP_EINVAL;
    host_len = (size_t)(colon - hp);
  }
  if (host_len == 0)
    return NP_EINVAL;
  if ((err = check_host(host, host_len, host != hp)) != 0)
    return err;
  if (copy_field(out->host, sizeof(out->host), host, host_len) != 0)
    return NP_ENAMETOOLONG;
  return parse_port(colon + 1, &out->port);
}

static int parse_unix(const char *path, struct np__address *out) {
  out->kind = NP__ADDR_UNIX;
  if (*path == '\0')
    return NP_EINVAL;
  return copy_field(out->name, sizeof(out->name), path, strlen(path));
}

int np__address_parse(const char *text, struct np__address *out) {
  if (text == NULL || out == NULL)
    return NP_EINVAL;
  memset(out, 0, sizeof(*out));
  if (has_prefix(text, "pipe:"))
    return parse_pipe(text + 5, ".", 1, out);
  if (has_prefix(text, "\\\\"))
    return parse_unc(text, out);
  if (has_prefix(text, "tcp:"))
    return parse_tcp(text + 4, out);
  if (has_prefix(text, "unix:"))
    return parse_unix(text + 5, out);
  return NP_EINVAL;
}
