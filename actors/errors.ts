/**
 * Error codes of the chat domain. Every failure an actor of this folder
 * reports is a ChorusError with one of these codes (or a runtime code such as
 * CHORUS_BAD_MESSAGE / CHORUS_ASK_TIMEOUT), so the edge can turn it into a
 * `{ code, message }` frame without knowing the domain.
 */
import { ChorusError } from '../runtime/index.ts';

/** The caller is a member but lacks the right (wrong role, not the author, join of a private channel, guest joining a public one). */
export const CHAT_FORBIDDEN = 'CHAT_FORBIDDEN';
/** The workspace, channel, message, invite or user does not exist (or no longer does). */
export const CHAT_NOT_FOUND = 'CHAT_NOT_FOUND';
/** The write clashes with existing state (workspace already created, channel name taken, replay outside the dedup window). */
export const CHAT_CONFLICT = 'CHAT_CONFLICT';
/** Well-formed but not acceptable here (reply to a reply, limits such as pins per channel, a DM without members). */
export const CHAT_INVALID = 'CHAT_INVALID';
/** The caller is not a member of the workspace, or of the private channel / DM it addresses. */
export const CHAT_NOT_MEMBER = 'CHAT_NOT_MEMBER';
/** A user's frames over its per-user rate at the edge (all its connections on the node together); `details.retryAfterMs`. */
export const CHAT_RATE_LIMITED = 'CHAT_RATE_LIMITED';
/** A per-workspace quota (channels, members, live invites) would be passed; `details: { quota, limit }`. */
export const QUOTA_EXCEEDED = 'QUOTA_EXCEEDED';

/** Every chat code, for docs and tests. */
export const CHAT_ERROR_CODES = [CHAT_FORBIDDEN, CHAT_NOT_FOUND, CHAT_CONFLICT, CHAT_INVALID, CHAT_NOT_MEMBER, CHAT_RATE_LIMITED, QUOTA_EXCEEDED] as const;

/** One of the chat error codes. */
export type ChatErrorCode = (typeof CHAT_ERROR_CODES)[number];

/** Builds the ChorusError of a chat failure; `details` must be serialisable. */
export function chatError(code: ChatErrorCode, message: string, details: Record<string, unknown> = {}): ChorusError {
  return new ChorusError(code, message, details);
}
