// The supervisor's compliance rules, in the order they are documented (docs/supervision.md).
import type { Rule } from '../evidence.js';
import { calibrationAtRun } from './calibration-at-run.js';
import { certificatesLogged } from './certificates-logged.js';
import { lateAmendment } from './late-amendment.js';
import { logConsistent } from './log-consistent.js';
import { logStalled } from './log-stalled.js';
import { markOutsideScope } from './mark-outside-scope.js';
import { notCosigned } from './not-cosigned.js';
import { performerApproved } from './performer-approved.js';
import { revokedKey } from './revoked-key.js';
import { sequenceGaps } from './sequence-gaps.js';
import { unacknowledgedAlarms } from './unacknowledged-alarms.js';

export const RULES: readonly Rule[] = [
  calibrationAtRun,
  performerApproved,
  unacknowledgedAlarms,
  sequenceGaps,
  revokedKey,
  certificatesLogged,
  markOutsideScope,
  lateAmendment,
  logStalled,
  notCosigned,
  logConsistent,
];

export const ruleById = (id: string): Rule | undefined => RULES.find((r) => r.id === id);
