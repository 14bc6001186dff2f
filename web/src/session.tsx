import { createContext, useContext } from 'react';
import type { Me, Role } from './api';

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export interface Session {
  me: Me;
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}

/** Whether the caller's role is at least `role` (viewer < operator < admin). */
export function useCan(role: Role): boolean {
  return RANK[useSession().me.role] >= RANK[role];
}
