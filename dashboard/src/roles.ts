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
/** who registers received samples and creates or changes methods (the server's POLICY: admin and technician) */
export const writesLabRecords = (role: Role | undefined): boolean => role === 'admin' || role === 'technician';
/** who has the samples and methods in the navigation: the lab's staff and auditors (a client opens its samples from its runs) */
export const readsLabRecords = (role: Role | undefined): boolean =>
  role === 'admin' || role === 'technician' || role === 'signatory' || role === 'auditor';
/** who reads the instrument register and instrument pages: the lab's staff and auditors (not its clients) */
export const readsInstruments = (role: Role | undefined): boolean => role !== undefined && role !== 'client';
/** who records calibrations and checks and takes instruments out of service (the server's LAB_WORKERS) */
export const recordsCalibration = (role: Role | undefined): boolean => role === 'admin' || role === 'technician';
/** who reads the lab manager's overview (the lab manager is the admin or a signatory; an auditor reads it too) */
export const readsOverview = (role: Role | undefined): boolean => role === 'admin' || role === 'signatory' || role === 'auditor';
/** who reads the test reports list (the server's POLICY: every role; a client its organization's issued ones) */
export const readsReports = (role: Role | undefined): boolean => role !== undefined;
/** who reads the lab's standing with its supervisor (the server's POLICY: admin and auditor) */
export const readsStanding = (role: Role | undefined): boolean => role === 'admin' || role === 'auditor';
/** who answers the supervisor's findings for the lab */
export const answersFindings = (role: Role | undefined): boolean => role === 'admin';
