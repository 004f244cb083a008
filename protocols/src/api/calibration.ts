// Instrument calibration (ISO/IEC 17025 6.4, 6.5): calibration records, intermediate checks, and the status
// computed from them.
import { z } from 'zod';
import { defineRoute } from './contract.js';
import { CALIBRATION_STATES, idParams, idSchema, msSchema } from './common.js';
import { reviewSchema } from './instruments.js';
import { line, optionalLine, paragraph } from './text.js';
import { timeMs } from './time.js';

const instant = timeMs;

export const calibrationInput = z
  .strictObject({
    /** when the calibration was performed (ms since the epoch) */
    calibratedAt: instant,
    /** the calibrating laboratory, and the number of the certificate it issued */
    laboratory: line(200),
    certificate: line(100),
    /** the points calibrated: reference value, the instrument's indication, the unit */
    results: z
      .array(z.strictObject({ point: line(100), reference: z.number().finite(), indication: z.number().finite(), unit: optionalLine(32) }))
      .min(1, 'at least one result')
      .max(200),
    /** expanded uncertainty U with its coverage factor k (GUM) */
    uncertainty: z.strictObject({ value: z.number().finite().positive(), unit: optionalLine(32), k: z.number().finite().positive().default(2) }),
    /** adjustments made by the calibrating lab, if any */
    adjustments: paragraph(2000).optional(),
    /** the acceptance criteria the results were judged against */
    acceptance: paragraph(1000).optional(),
    nextDueAt: instant,
    /** why this record is made, when it is not routine (after a repair, correcting an earlier record) */
    reason: paragraph(500).optional(),
  })
  .refine((c) => c.nextDueAt > c.calibratedAt, { message: 'must be after calibratedAt', path: ['nextDueAt'] });
export type CalibrationInput = z.output<typeof calibrationInput>;

export const checkInput = z.strictObject({
  checkedAt: instant,
  result: z.enum(['pass', 'fail']),
  /** what was checked against what: the reference standard, the points, the finding */
  description: paragraph(1000),
});
export type CheckInput = z.output<typeof checkInput>;

export const calibrationRecordSchema = z.strictObject({
  id: z.number().int(),
  instrument: z.string(),
  calibratedAt: msSchema,
  laboratory: z.string(),
  certificate: z.string(),
  results: z.array(z.strictObject({ point: z.string(), reference: z.number(), indication: z.number(), unit: z.string() })),
  uncertainty: z.strictObject({ value: z.number(), unit: z.string(), k: z.number() }),
  adjustments: z.string().nullable(),
  acceptance: z.string().nullable(),
  nextDueAt: msSchema,
  reason: z.string().nullable(),
  recordedBy: z.string(),
  recordedAt: msSchema,
});
export type CalibrationRecord = z.output<typeof calibrationRecordSchema>;

export const checkRecordSchema = z.strictObject({
  id: z.number().int(),
  instrument: z.string(),
  checkedAt: msSchema,
  result: z.enum(['pass', 'fail']),
  description: z.string(),
  recordedBy: z.string(),
  recordedAt: msSchema,
});
export type CheckRecord = z.output<typeof checkRecordSchema>;

export const calibrationStatusSchema = z.strictObject({
  instrument: z.string(),
  status: z.enum(CALIBRATION_STATES),
  /** when the newest calibration falls due; null without one */
  dueAt: msSchema.nullable(),
  calibration: calibrationRecordSchema.pick({ id: true, calibratedAt: true, laboratory: true, certificate: true, nextDueAt: true }).nullable(),
  lastCheck: checkRecordSchema.pick({ id: true, checkedAt: true, result: true }).nullable(),
  /** the last calibration or passed check: where a review after a failure starts */
  lastGoodAt: msSchema.nullable(),
});
export type CalibrationStatus = z.output<typeof calibrationStatusSchema>;

/** a calibration certificate attached to its record: the PDF as the calibrating lab issued it, kept with its SHA-256 */
export const attachmentSchema = z.strictObject({
  filename: z.string(),
  contentType: z.string(),
  size: z.number().int(),
  /** hex SHA-256 of the stored bytes */
  sha256: z.string(),
  uploadedBy: z.string(),
  uploadedAt: msSchema,
});
export type Attachment = z.output<typeof attachmentSchema>;
/** the largest certificate file taken (bytes) */
export const ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024;
export const attachmentParams = z.strictObject({ id: idSchema, record: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
export const attachmentQuery = z.strictObject({
  /** the file's name as the user chose it (shown and offered on download) */
  filename: line(200).optional(),
});

/** the calibration records with their attached certificates, and the intermediate checks (oldest first) */
export const calibrationWithAttachmentSchema = calibrationRecordSchema.extend({ attachment: attachmentSchema.nullable() });
export type CalibrationWithAttachment = z.output<typeof calibrationWithAttachmentSchema>;

export const calibrationReminders = defineRoute({
  method: 'GET',
  path: '/api/calibration/reminders',
  response: z.array(calibrationStatusSchema),
});
export const instrumentCalibrations = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/calibrations',
  params: idParams,
  response: z.strictObject({
    instrument: z.string(),
    calibrations: z.array(calibrationWithAttachmentSchema),
    checks: z.array(checkRecordSchema),
  }),
});
export const recordCalibration = defineRoute({
  method: 'POST',
  path: '/api/instruments/:id/calibrations',
  params: idParams,
  body: calibrationInput,
  response: calibrationRecordSchema,
});
export const recordCheck = defineRoute({
  method: 'POST',
  path: '/api/instruments/:id/checks',
  params: idParams,
  body: checkInput,
  /** a failed check comes with the runs to review */
  response: z.strictObject({ check: checkRecordSchema, review: reviewSchema.optional() }),
});
/** the certificate of a calibration record: the PDF itself (application/pdf) in the body, once per record */
export const attachCalibrationCertificate = defineRoute({
  method: 'PUT',
  path: '/api/instruments/:id/calibrations/:record/certificate',
  params: attachmentParams,
  query: attachmentQuery,
  /** the file's bytes (a Buffer once express.raw has read them): checked by the route, not by a schema */
  body: z.unknown(),
  response: attachmentSchema,
});
/** the attached certificate (application/pdf), with its SHA-256 in the `digest` header */
export const calibrationCertificate = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/calibrations/:record/certificate',
  params: attachmentParams,
});

export const calibrationStatus = defineRoute({
  method: 'GET',
  path: '/api/instruments/:id/calibration-status',
  params: idParams,
  response: calibrationStatusSchema,
});
