/**
 * The demo shop's customers. Sign-in is by picking one (no passwords in a demo); the
 * shop's server then signs the userId so the Worker accepts it.
 */
export interface DemoUser {
  userId: string;
  email: string;
  name: string;
}

export const DEMO_USERS: readonly DemoUser[] = [
  { userId: 'user_ada', email: 'ada@example.com', name: 'Ada Lovelace' },
  { userId: 'user_grace', email: 'grace@example.com', name: 'Grace Hopper' },
  { userId: 'user_alan', email: 'alan@example.com', name: 'Alan Turing' },
];

export function findDemoUser(userId: string): DemoUser | undefined {
  return DEMO_USERS.find((u) => u.userId === userId);
}
