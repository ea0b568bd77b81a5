/*
 * The security descriptor every pipe instance is created with: by
 * default the current user and SYSTEM only, the network explicitly
 * denied, the DACL protected from inheritance, owned by the current
 * user; or the caller's SDDL once np__sddl_check accepted it.
 */
#include "config.h"

#include <winsock2.h>
#include <windows.h>
/* sddl.h needs windows.h first. */
#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define SID_TEXT_MAX 192

/* Writes the current process user's SID as text into buf.  Returns 0 or
 * NP_E*. */
static int user_sid_text(wchar_t *buf, size_t cap) {
  HANDLE token;
  union {
    TOKEN_USER user;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } info;
  DWORD len;
  wchar_t *text;
  int err = 0;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return np__error_from_win32(GetLastError());
  if (!GetTokenInformation(token, TokenUser, &info, sizeof(info), &len) ||
      !ConvertSidToStringSidW(info.user.User.Sid, &text))
    err = np__error_from_win32(GetLastError());
  CloseHandle(token);
  if (err != 0)
    return err;
  if (wcslen(text) >= cap)
    err = NP_ENAMETOOLONG;
  else
    wcscpy(buf, text);
  LocalFree(text);
  return err;
}

/* Builds the default descriptor's SDDL into buf. */
static int default_sddl(wchar_t *buf, size_t cap) {
  wchar_t sid[SID_TEXT_MAX];
  int err = user_sid_text(sid, NP__ARRAY_SIZE(sid));

  if (err != 0)
    return err;
  if (cap < 64 + 2 * wcslen(sid))
    return NP_ENAMETOOLONG;
  wcscpy(buf, L"O:");
  wcscat(buf, sid);
  wcscat(buf, L"D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;");
  wcscat(buf, sid);
  wcscat(buf, L")");
  return 0;
}

/* Non-zero when ace grants something to Everyone, Anonymous or Network,
 * or is of a kind the check does not know. */
static int ace_unsafe(const ACE_HEADER *ace) {
  static const WELL_KNOWN_SID_TYPE banned[] = {WinWorldSid, WinAnonymousSid,
                                               WinNetworkSid};
  PSID sid = (PSID) & ((const ACCESS_ALLOWED_ACE *)ace)->SidStart;
  size_t i;

  if (ace->AceType == ACCESS_DENIED_ACE_TYPE)
    return 0;
  if (ace->AceType != ACCESS_ALLOWED_ACE_TYPE)
    return 1;
  for (i = 0; i < NP__ARRAY_SIZE(banned); i++)
    if (IsWellKnownSid(sid, banned[i]))
      return 1;
  return 0;
}

/* The same rules as np__sddl_check, on the parsed descriptor, so that a
 * spelling the text check missed cannot slip through. */
static int check_parsed(PSECURITY_DESCRIPTOR sd) {
  BOOL present, defaulted;
  PACL dacl;
  DWORD i;

  if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) ||
      !present || dacl == NULL)
    return NP_EINVAL;
  for (i = 0; i < dacl->AceCount; i++) {
    void *ace;

    if (!GetAce(dacl, i, &ace) || ace_unsafe(ace))
      return NP_EINVAL;
  }
  return 0;
}

/* Parses a UTF-8 SDDL string (already checked) into a descriptor. */
static int parse_custom(const char *sddl, PSECURITY_DESCRIPTOR *out) {
  int n =
      MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, sddl, -1, NULL, 0);
  wchar_t *wide;
  int err = 0;

  if (n <= 0)
    return NP_EINVAL;
  wide = malloc((size_t)n * sizeof(wchar_t));
  if (wide == NULL)
    return NP_ENOMEM;
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, sddl, -1, wide, n);
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
          wide, SDDL_REVISION_1, out, NULL)) {
    err = GetLastError() == ERROR_NOT_ENOUGH_MEMORY ? NP_ENOMEM : NP_EINVAL;
  } else if ((err = check_parsed(*out)) != 0) {
    LocalFree(*out);
    *out = NULL;
  }
  free(wide);
  return err;
}

int np__security_new(const char *sddl, PSECURITY_DESCRIPTOR *out) {
  wchar_t text[2 * SID_TEXT_MAX + 64];
  int err;

  *out = NULL;
  if (sddl != NULL)
    return parse_custom(sddl, out);
  if ((err = default_sddl(text, NP__ARRAY_SIZE(text))) != 0)
    return err;
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
          text, SDDL_REVISION_1, out, NULL))
    return np__error_from_win32(GetLastError());
  return 0;
}

void np__security_free(PSECURITY_DESCRIPTOR sd) {
  if (sd != NULL)
    LocalFree(sd);
}
