// The creator stamp: who asked the API server for this pod, as the server authenticated them
// (AdmissionReview userInfo — the OIDC/SAML identity), serialised into the sluice.io/creator
// annotation the sidecar puts on every audit event. The value is derived, never trusted from the
// pod: a different value supplied by anyone is a forgery.
import { Creator } from '../../api/src/index.ts';

export interface UserInfo {
  username?: string | undefined;
  uid?: string | undefined;
  groups?: readonly string[] | undefined;
}

/** The annotation value for a user: JSON with a fixed key order, so equal identities give equal strings. */
export function creatorStamp(user: UserInfo): string {
  const creator: Creator = { username: user.username ?? '', ...(user.uid ? { uid: user.uid } : {}), groups: [...(user.groups ?? [])] };
  // Strings throughout is what the schema passes unchanged (every AdmissionReview's userInfo is
  // checked on arrival): no schema copy on each of the two or three stamps a review makes. Anything
  // else the schema still refuses by throwing.
  if (typeof creator.username === 'string' && (creator.uid === undefined || typeof creator.uid === 'string') && creator.groups.every((g) => typeof g === 'string')) {
    return JSON.stringify(creator);
  }
  return JSON.stringify(Creator.parse(creator));
}

/** Reads an annotation back (the sidecar's side); undefined when it is absent or not a stamp. */
export function parseCreatorStamp(value: string | undefined): Creator | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed = Creator.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
