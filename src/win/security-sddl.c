/*
 * The check that a caller's SDDL string keeps a pipe private enough,
 * done on the text alone so that a bad descriptor is refused before any
 * system call.  It is deliberately narrow: whatever it does not
 * understand, it refuses.
 *
 * Accepted shape: sections "O:", "G:", "D:" and "S:", each at most once,
 * with a DACL whose flags are P, AI or AR and whose ACEs are plain
 * allow ("A") or deny ("D") entries of six fields.  Refused: no DACL, a
 * NULL DACL ("D:NO_ACCESS_CONTROL"), and any allow ACE for Everyone
 * (WD), Anonymous (AN) or Network (NU), by alias or by SID.
 */
#include "config.h"

#include <string.h>

#include "win/pipe.h"

#define ACE_FIELDS 6
#define FIELD_MAX 200

/* ASCII case-insensitive equality of a counted string and a C string. */
static int field_is(const char *s, size_t len, const char *word) {
  size_t i;

  if (strlen(word) != len)
    return 0;
  for (i = 0; i < len; i++) {
    char c = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];

    if (c != word[i])
      return 0;
  }
  return 1;
}

/* Non-zero when sid (an SDDL alias or S-1-... string) is one of the
 * trustees nothing may be granted to. */
static int forbidden_trustee(const char *sid, size_t len) {
  static const char *const names[] = {"WD",      "AN",      "NU",
                                      "S-1-1-0", "S-1-5-7", "S-1-5-2"};
  size_t i;

  for (i = 0; i < NP__ARRAY_SIZE(names); i++)
    if (field_is(sid, len, names[i]))
      return 1;
  return 0;
}

/* Checks one ACE, the text between its parentheses.  Returns 0 or
 * NP_EINVAL. */
static int check_ace(const char *ace, size_t len) {
  const char *field[ACE_FIELDS];
  size_t flen[ACE_FIELDS];
  size_t i, start = 0;
  int n = 0;

  for (i = 0; i <= len; i++) {
    if (i < len && ace[i] != ';')
      continue;
    if (n == ACE_FIELDS || i - start > FIELD_MAX)
      return NP_EINVAL;
    field[n] = ace + start;
    flen[n++] = i - start;
    start = i + 1;
  }
  if (n != ACE_FIELDS || flen[5] == 0)
    return NP_EINVAL;
  if (field_is(field[0], flen[0], "D"))
    return 0;
  if (!field_is(field[0], flen[0], "A"))
    return NP_EINVAL;
  return forbidden_trustee(field[5], flen[5]) ? NP_EINVAL : 0;
}

/* Checks the DACL section's text (after "D:").  Returns 0 or NP_EINVAL. */
static int check_dacl(const char *s, size_t len) {
  size_t i = 0;

  /* Flags come first; NO_ACCESS_CONTROL would make the DACL NULL. */
  while (i < len && s[i] != '(') {
    if (len - i >= 2 && (field_is(s + i, 2, "AI") || field_is(s + i, 2, "AR")))
      i += 2;
    else if (s[i] == 'P' || s[i] == 'p')
      i++;
    else
      return NP_EINVAL;
  }
  while (i < len) {
    const char *close;
    int err;

    if (s[i] != '(')
      return NP_EINVAL;
    close = memchr(s + i + 1, ')', len - i - 1);
    if (close == NULL || memchr(s + i + 1, '(', (size_t)(close - s - i - 1)))
      return NP_EINVAL;
    if ((err = check_ace(s + i + 1, (size_t)(close - s - i - 1))) != 0)
      return err;
    i = (size_t)(close - s) + 1;
  }
  return 0;
}

/* Non-zero when s starts a section: "O:", "G:", "D:" or "S:". */
static int section_start(const char *s) {
  return (s[0] == 'O' || s[0] == 'G' || s[0] == 'D' || s[0] == 'S') &&
         s[1] == ':';
}

/* The length of the section body starting at s: up to the next section
 * start outside parentheses.  Returns (size_t)-1 for unbalanced
 * parentheses. */
static size_t section_length(const char *s) {
  size_t i = 0;
  int depth = 0;

  for (; s[i] != '\0'; i++) {
    if (s[i] == '(')
      depth++;
    else if (s[i] == ')' && --depth < 0)
      return (size_t)-1;
    else if (depth == 0 && section_start(s + i))
      break;
  }
  return depth == 0 ? i : (size_t)-1;
}

int np__sddl_check(const char *sddl) {
  unsigned seen = 0;
  const char *s = sddl;
  int have_dacl = 0;

  if (sddl == NULL)
    return NP_EINVAL;
  while (*s != '\0') {
    unsigned bit;
    size_t len;
    int err;

    if (!section_start(s))
      return NP_EINVAL;
    bit = 1u << (strchr("OGDS", s[0]) - "OGDS");
    if (seen & bit)
      return NP_EINVAL;
    seen |= bit;
    len = section_length(s + 2);
    if (len == (size_t)-1)
      return NP_EINVAL;
    if (s[0] == 'D') {
      if ((err = check_dacl(s + 2, len)) != 0)
        return err;
      have_dacl = 1;
    }
    s += 2 + len;
  }
  return have_dacl ? 0 : NP_EINVAL;
}
