// The REST API's contract (routes, request and response schemas), shared by the server and the dashboard.
// Browser-safe: nothing here imports node modules.
import { login, logout, me, changePassword, createToken, listTokens, revokeToken, updatePreferences } from './auth.js';
import { listUsers, createUser, updateUser, resetPassword, listOrganizations, createOrganization } from './users.js';
import { listAudit, exportAudit } from './audit.js';
import {
  health,
  listGateways,
  enroll,
  gatewayKeys,
  rotateKey,
  listSecurityEvents,
  listGatewayKeys,
  listEnrollmentTokens,
  createEnrollmentToken,
  revokeEnrollmentToken,
  revokeGatewayKey,
} from './gateways.js';
import {
  listInstruments,
  getInstrument,
  instrumentRegister,
  instrumentHealthHistory,
  instrumentSeries,
  instrumentHistory,
  instrumentStatus,
  setInstrumentStatus,
  sendInstrumentCommand,
} from './instruments.js';
import { logKeys, logCheckpoint, logWitnesses, inclusionProof, consistencyProof, logEntries, measurementProof } from './log.js';
import { exportBundle, exportDisclosure, exportRun } from './export.js';
import { rawFile } from './raw-files.js';
import { listSamples, getSample, createSample } from './samples.js';
import { listMethods, getMethod, createMethod, addMethodVersion } from './methods.js';
import { listRuns, getRun, runRecords, runResults, createRun, startRun, stopRun, abortRun } from './runs.js';
import { runAlarms, acknowledgeAlarm, clearAlarm, openAlarmCount } from './alarms.js';
import { listShares, createShare, revokeShare, publicShare, publicShareReport } from './shares.js';
import {
  calibrationReminders,
  instrumentCalibrations,
  recordCalibration,
  recordCheck,
  calibrationStatus,
  attachCalibrationCertificate,
  calibrationCertificate,
} from './calibration.js';
import {
  publicAccreditation,
  listAccreditations,
  getAccreditation,
  createAccreditation,
  accreditationEvent,
  changeAccreditationScope,
} from './accreditation.js';
import {
  listCertificates,
  requestCertificate,
  getCertificate,
  certificatePdf,
  certificatePreviewPdf,
  certificateJson,
  certificateDcc,
  issueCertificate,
  amendCertificate,
  revokeCertificate,
  publicKeys,
  publicCertificate,
  verifyPage,
  verifyUpload,
} from './certificates.js';
import {
  getSubscriptions,
  putSubscriptions,
  listWebhooks,
  createWebhook,
  changeWebhook,
  deleteWebhook,
  listDeliveries,
  retryDelivery,
  testNotification,
} from './notifications.js';
import { getOverview } from './overview.js';
import { getStanding, standingReport, standingReportPdf, respondToFinding } from './standing.js';

export * from './contract.js';
export * from './errors.js';
export * from './text.js';
export * from './time.js';
export * from './common.js';
export * from './inspection-rules.js';
export * from './auth.js';
export * from './users.js';
export * from './audit.js';
export * from './gateways.js';
export * from './instruments.js';
export * from './log.js';
export * from './export.js';
export * from './samples.js';
export * from './methods.js';
export * from './runs.js';
export * from './alarms.js';
export * from './calibration.js';
export * from './accreditation.js';
export * from './certificate-content.js';
export * from './certificates.js';
export * from './notifications.js';
export * from './shares.js';
export * from './overview.js';
export * from './standing.js';

/** every route of the API by name: the dashboard's client calls `api.getRun`, the server registers each with its handler */
export const api = {
  login,
  logout,
  me,
  changePassword,
  createToken,
  listTokens,
  revokeToken,
  updatePreferences,
  listUsers,
  createUser,
  updateUser,
  resetPassword,
  listOrganizations,
  createOrganization,
  listAudit,
  exportAudit,
  health,
  listGateways,
  enroll,
  gatewayKeys,
  rotateKey,
  listSecurityEvents,
  listGatewayKeys,
  listEnrollmentTokens,
  createEnrollmentToken,
  revokeEnrollmentToken,
  revokeGatewayKey,
  listInstruments,
  getInstrument,
  instrumentRegister,
  instrumentHealthHistory,
  instrumentSeries,
  instrumentHistory,
  instrumentStatus,
  setInstrumentStatus,
  sendInstrumentCommand,
  logKeys,
  logCheckpoint,
  logWitnesses,
  inclusionProof,
  consistencyProof,
  logEntries,
  measurementProof,
  rawFile,
  exportBundle,
  exportRun,
  exportDisclosure,
  listSamples,
  getSample,
  createSample,
  listMethods,
  getMethod,
  createMethod,
  addMethodVersion,
  listRuns,
  getRun,
  runRecords,
  runResults,
  createRun,
  startRun,
  stopRun,
  abortRun,
  runAlarms,
  acknowledgeAlarm,
  clearAlarm,
  openAlarmCount,
  listShares,
  createShare,
  revokeShare,
  publicShare,
  publicShareReport,
  calibrationReminders,
  instrumentCalibrations,
  recordCalibration,
  recordCheck,
  calibrationStatus,
  attachCalibrationCertificate,
  calibrationCertificate,
  publicAccreditation,
  listAccreditations,
  getAccreditation,
  createAccreditation,
  accreditationEvent,
  changeAccreditationScope,
  listCertificates,
  requestCertificate,
  getCertificate,
  certificatePdf,
  certificatePreviewPdf,
  certificateJson,
  certificateDcc,
  issueCertificate,
  amendCertificate,
  revokeCertificate,
  publicKeys,
  publicCertificate,
  verifyPage,
  verifyUpload,
  getSubscriptions,
  putSubscriptions,
  listWebhooks,
  createWebhook,
  changeWebhook,
  deleteWebhook,
  listDeliveries,
  retryDelivery,
  testNotification,
  getOverview,
  getStanding,
  standingReport,
  standingReportPdf,
  respondToFinding,
} as const;
export type Api = typeof api;
export type RouteName = keyof Api;
