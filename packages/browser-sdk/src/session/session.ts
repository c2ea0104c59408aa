/**
 * Sessions: one id per visit, renewed after 30 minutes without any event (the usual
 * analytics definition), so an open tab left overnight starts a new session.
 */
import { ulid } from '../ids/ids.ts';

export const SESSION_TIMEOUT_MS = 30 * 60 * 1000;

export interface Session {
  id: string;
  /** Epoch ms of the last event in this session. */
  at: number;
}

/** The session an event at `now` belongs to: the same one while active, a new one after the timeout. */
export function touchSession(session: Session | undefined, now: number): Session {
  return { id: session && now - session.at < SESSION_TIMEOUT_MS ? session.id : ulid(now), at: now };
}
