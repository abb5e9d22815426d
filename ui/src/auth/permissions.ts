// What the UI offers to each role. It mirrors admin-api's policy.polar so that nobody is shown a
// button the API would refuse; the API enforces the policy regardless.
import type { Kind } from '../api/generated';
import type { Role } from '../api/types';

export type { Kind };

const OPERATOR_WRITES: Kind[] = ['provider', 'provider_key', 'model', 'token', 'token_defaults', 'rate_limits'];
const VIEWER_READS: Kind[] = ['provider', 'provider_key', 'model', 'token', 'usage', 'audit', 'user', 'setting'];

export function canRead(role: Role | undefined, kind: Kind): boolean {
  switch (role) {
    case 'admin':
    case 'operator':
      return true;
    case 'viewer':
      return VIEWER_READS.includes(kind);
    case 'member':
      return kind === 'token' || kind === 'usage';
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
      // Their own tokens only; the token list a member gets holds only those.
      return kind === 'token';
    default:
      return false;
  }
}

/** Whether the role sees everyone's data (tokens of other owners, other users' usage). */
export function seesEveryone(role: Role | undefined): boolean {
  return role === 'admin' || role === 'operator' || role === 'viewer';
}
