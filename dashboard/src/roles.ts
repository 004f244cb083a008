// What each role may do in the dashboard: which views and actions it is offered. The server decides what is
// allowed and refuses the rest anyway; these only keep a user from being shown what they cannot use.
import type { Role } from '@labtrace/protocols/api';

/** who changes lab records (acknowledges and clears alarms) */
export const canActOnAlarms = (role: Role | undefined): boolean => role === 'admin' || role === 'technician';
/** who plans, starts and stops test runs */
export const isTechnician = (role: Role | undefined): boolean => role === 'technician';
/** who approves, issues, amends and revokes certificates */
export const isSignatory = (role: Role | undefined): boolean => role === 'signatory';
/** who administers users and organizations */
export const isAdmin = (role: Role | undefined): boolean => role === 'admin';
/** who reads the audit trail */
export const readsAuditTrail = (role: Role | undefined): boolean => role === 'admin' || role === 'auditor';
/** who reads the lab manager's overview (the lab manager is the admin or a signatory; an auditor reads it too) */
export const readsOverview = (role: Role | undefined): boolean => role === 'admin' || role === 'signatory' || role === 'auditor';
