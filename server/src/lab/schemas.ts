// The shapes of lab records as they arrive over the API: samples received, test methods, test runs. They are
// part of the API contract (@labtrace/protocols/api), shared with the dashboard.
export {
  labSampleInput,
  RESULT_STATISTICS,
  methodDefinition,
  methodInput,
  methodVersionInput,
  runInput,
  startInput,
  abortInput,
  alarmActionInput,
  instrumentStatusBody as instrumentStatusInput,
} from '@labtrace/protocols/api';
export type { LabSampleInput, ResultDefinition, MethodDefinition, RunInput } from '@labtrace/protocols/api';
