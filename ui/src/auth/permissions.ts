// What the UI offers to each role. It mirrors admin-api's policy.polar so that nobody is shown a
// button the API would refuse; the API enforces the policy regardless.
import type { Kind } from '../api/generated';
import type { Me, Role, Team } from '../api/types';

export type { Kind };

const OPERATOR_WRITES: Kind[] = ['provider', 'provider_key', 'model', 'token', 'token_defaults', 'rate_limits', 'team'];
const VIEWER_READS: Kind[] = ['provider', 'provider_key', 'model', 'token', 'usage', 'audit', 'user', 'setting', 'team'];

export function canRead(role: Role | undefined, kind: Kind): boolean {
  switch (role) {
    case 'admin':
    case 'operator':
      return true;
    case 'viewer':
      return VIEWER_READS.includes(kind);
    case 'member':
      // Teams: only those they belong to; the team list a member gets holds only those.
      return kind === 'token' || kind === 'usage' || kind === 'team';
    default:
      return false;
  }
}

export function canWrite(role: Role | undefined, kind: Kind): boolean {
  switch (role) {
    case 'admin':
      return true;
    case 'operator':
      return OPERATOR_WRITES.includes(kind);
    case 'member':
      // Their own tokens only (and those charged to a team they administer); the token list a
      // member gets holds only those.
      return kind === 'token';
    default:
      return false;
  }
}

/** Whether the role sees everyone's data (tokens of other owners, other users' usage). */
export function seesEveryone(role: Role | undefined): boolean {
  return role === 'admin' || role === 'operator' || role === 'viewer';
}

/**
 * Whether the user is an admin of the team: by the team's own member list when it is at hand
 * (the freshest), else by the teams `/auth/me` listed at sign-in.
 */
export function isTeamAdmin(user: Me | null | undefined, team: Pick<Team, 'id'> & Partial<Pick<Team, 'members'>>): boolean {
  if (!user) return false;
  if (team.members?.some((member) => member.user_id === user.id && member.role === 'admin')) return true;
  return (user.teams ?? []).some((entry) => entry.id === team.id && entry.role === 'admin');
}

/** Whether the user may change the team's members: whoever writes teams, and the team's own admins (members only). */
export function canEditTeamMembers(user: Me | null | undefined, team: Pick<Team, 'id'> & Partial<Pick<Team, 'members'>>): boolean {
  return canWrite(user?.role, 'team') || isTeamAdmin(user, team);
}
