/*
 * The security descriptor every pipe instance is created with: by
 * default the current user (the token's user, never its default owner,
 * which is Administrators in an elevated process) and SYSTEM only, the
 * DACL protected from inheritance, owned by that user; or the caller's
 * SDDL once np__sddl_check accepted it, with the right to create
 * instances taken from everyone but the server's own identities.
 *
 * No deny entry for network logons: OpenSSH sessions are network logons
 * of the same user, and remote clients are refused by
 * PIPE_REJECT_REMOTE_CLIENTS already.
 */
#include "config.h"

#include <winsock2.h>
#include <windows.h>
/* sddl.h and aclapi.h need windows.h first. */
#include <aclapi.h>
#include <sddl.h>
#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define SID_TEXT_MAX 192

/* The process token's user and default owner SIDs. */
struct self {
  union {
    TOKEN_USER user;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } user;
  union {
    TOKEN_OWNER owner;
    unsigned char bytes[sizeof(TOKEN_OWNER) + SECURITY_MAX_SID_SIZE];
  } owner;
};

static int read_self(struct self *me) {
  HANDLE token;
  DWORD len;
  int err = 0;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token))
    return np__error_from_win32(GetLastError());
  if (!GetTokenInformation(token, TokenUser, &me->user, sizeof(me->user),
                           &len) ||
      !GetTokenInformation(token, TokenOwner, &me->owner, sizeof(me->owner),
                           &len))
    err = np__error_from_win32(GetLastError());
  CloseHandle(token);
  return err;
}

/* Writes the current process user's SID as text into buf.  Returns 0 or
 * NP_E*. */
static int user_sid_text(wchar_t *buf, size_t cap) {
  struct self me;
  wchar_t *text;
  int err = read_self(&me);

  if (err != 0)
    return err;
  if (!ConvertSidToStringSidW(me.user.user.User.Sid, &text))
    return np__error_from_win32(GetLastError());
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
  wcscat(buf, L"D:P(A;;GA;;;SY)(A;;GA;;;");
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

/* Non-zero when sid is one of the server's own identities, which keep
 * the right to create instances: SYSTEM, OWNER RIGHTS, the descriptor's
 * owner (the token's default owner when it names none) and the token's
 * user. */
static int keeps_create_right(PSID sid, PSID owner, const struct self *me) {
  return IsWellKnownSid(sid, WinLocalSystemSid) ||
         IsWellKnownSid(sid, WinCreatorOwnerRightsSid) ||
         EqualSid(sid, owner != NULL ? owner : me->owner.owner.Owner) ||
         EqualSid(sid, me->user.user.User.Sid);
}

/* FILE_CREATE_PIPE_INSTANCE (FILE_APPEND_DATA, part of GENERIC_WRITE and
 * GENERIC_ALL) lets its holder create instances of the name, and so take
 * clients meant for the real server: every allow entry for anyone else
 * loses it.  Generic bits are mapped first, as the system maps them when
 * it stores the descriptor, so that the right cannot hide in them. */
static int strip_create_right(PSECURITY_DESCRIPTOR sd) {
  GENERIC_MAPPING file_map = {FILE_GENERIC_READ, FILE_GENERIC_WRITE,
                              FILE_GENERIC_EXECUTE, FILE_ALL_ACCESS};
  BOOL present, defaulted;
  PSID owner = NULL;
  PACL dacl;
  struct self me;
  DWORD i;
  int err = read_self(&me);

  if (err != 0)
    return err;
  if (!GetSecurityDescriptorOwner(sd, &owner, &defaulted) ||
      !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
    return np__error_from_win32(GetLastError());
  for (i = 0; present && dacl != NULL && i < dacl->AceCount; i++) {
    ACCESS_ALLOWED_ACE *ace;

    if (!GetAce(dacl, i, (void **)&ace))
      return np__error_from_win32(GetLastError());
    if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE ||
        keeps_create_right((PSID)&ace->SidStart, owner, &me))
      continue;
    MapGenericMask(&ace->Mask, &file_map);
    ace->Mask &= ~(ACCESS_MASK)FILE_CREATE_PIPE_INSTANCE;
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
  } else if ((err = check_parsed(*out)) != 0 ||
             (err = strip_create_right(*out)) != 0) {
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

int np__security_token_user(HANDLE token, PSID sid) {
  union {
    TOKEN_USER user;
    unsigned char bytes[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } info;
  DWORD len;

  if (!GetTokenInformation(token, TokenUser, &info, sizeof(info), &len) ||
      !CopySid(SECURITY_MAX_SID_SIZE, sid, info.user.User.Sid))
    return np__error_from_win32(GetLastError());
  return 0;
}

/* The user of the process that serves pipe h. */
static int server_process_user(HANDLE h, PSID sid) {
  HANDLE process, token;
  ULONG pid;
  int err;

  if (!GetNamedPipeServerProcessId(h, &pid))
    return np__error_from_win32(GetLastError());
  if ((process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                             pid)) == NULL)
    return NP_EACCES; /* not ours to look at: not ours to trust */
  if (!OpenProcessToken(process, TOKEN_QUERY, &token)) {
    CloseHandle(process);
    return NP_EACCES;
  }
  err = np__security_token_user(token, sid);
  CloseHandle(token);
  CloseHandle(process);
  return err;
}

int np__security_server_sid(HANDLE h, PSID sid) {
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  DWORD e = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION,
                            &owner, NULL, NULL, NULL, &sd);
  int err = 0;

  if (e != ERROR_SUCCESS)
    return np__error_from_win32(e);
  /* Windows gives every pipe an owner; Wine gives none to one created
   * without a descriptor.  Then the server process's user answers. */
  if (owner == NULL)
    err = server_process_user(h, sid);
  else if (!CopySid(SECURITY_MAX_SID_SIZE, sid, owner))
    err = np__error_from_win32(GetLastError());
  LocalFree(sd);
  return err;
}

int np__security_vet_server(HANDLE h) {
  unsigned char owner[SECURITY_MAX_SID_SIZE];
  struct self me;
  int err = read_self(&me);

  if (err != 0 || (err = np__security_server_sid(h, owner)) != 0)
    return err;
  /* The instance's owner is who created it: this user, LocalSystem,
   * Administrators (an elevated process's default owner), or whatever
   * this process would itself stamp on what it creates (its token's
   * default owner: Wine's is a group, Domain Users). */
  if (EqualSid(owner, me.user.user.User.Sid) ||
      EqualSid(owner, me.owner.owner.Owner) ||
      IsWellKnownSid(owner, WinLocalSystemSid) ||
      IsWellKnownSid(owner, WinBuiltinAdministratorsSid))
    return 0;
  return NP_EACCES;
}

void np__security_free(PSECURITY_DESCRIPTOR sd) {
  if (sd != NULL)
    LocalFree(sd);
}
