import { describe, expect, it } from 'vitest';
import { SESSION_TIMEOUT_MS, touchSession } from './session.ts';

describe('touchSession', () => {
  const start = Date.parse('2026-01-01T10:00:00Z');

  it('starts a session when there is none', () => {
    const session = touchSession(undefined, start);
    expect(session).toEqual({ id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/), at: start });
  });

  it('keeps the session while events keep coming, each within 30 minutes of the last', () => {
    let session = touchSession(undefined, start);
    const first = session.id;
    for (let i = 1; i <= 10; i++) session = touchSession(session, start + i * 25 * 60 * 1000);
    expect(session.id).toBe(first);
  });

  it('starts a new session after 30 minutes without events', () => {
    const session = touchSession(undefined, start);
    expect(touchSession(session, start + SESSION_TIMEOUT_MS - 1).id).toBe(session.id);
    expect(touchSession(session, start + SESSION_TIMEOUT_MS).id).not.toBe(session.id);
  });
});
