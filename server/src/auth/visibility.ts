// Which customer organizations' records (samples, runs, their records, results and alarms, certificates) a
// principal may see. One rule for every route and socket: a client sees its own organization's; an auditor
// the organizations its grant covers (all of them when the grant names none); the lab's staff see all.
import type { Principal } from './users.js';

/** who asks: a principal, or the server itself acting as a role (`{ role: 'admin', organization: null }`) */
export type Viewer = Pick<Principal, 'role' | 'organization'> & { grantOrganizations?: readonly string[] | null | undefined };

/**
 * The organizations a viewer may see, or undefined for all of them. An auditor without a known grant
 * scope (a hand-made viewer) sees none: the rule fails closed.
 */
export function visibleOrganizations(viewer: Viewer): readonly string[] | undefined {
  if (viewer.role === 'client') return viewer.organization === null ? [] : [viewer.organization];
  if (viewer.role === 'auditor') return viewer.grantOrganizations === undefined ? [] : (viewer.grantOrganizations ?? undefined);
  return undefined;
}

/** May the viewer see a record of this customer organization? Another organization's answers 404, like an unknown record. */
export function canSee(viewer: Viewer, organization: string): boolean {
  const visible = visibleOrganizations(viewer);
  return visible === undefined || visible.includes(organization);
}

/** Sees every organization's records (lab-wide measurement streams need this: they are not bound to one client). */
export function seesAll(viewer: Viewer): boolean {
  return visibleOrganizations(viewer) === undefined;
}
