// The demo lab's daily work, for `npm start`: a tensile test method, the testing machine's calibration, and
// a test run of one whole specimen at a time (started when the simulated machine mounts a new specimen,
// stopped when that specimen has broken), so that a newcomer signed in as the demo client can watch a
// run live, replay finished ones and read their results. Every record goes through the same services
// (and the audit trail) as a person's would, under the actor `demo`.
import { LabtraceError, type LiveSample } from '@labtrace/protocols';
import type { Actor } from '../audit/audit-trail.js';
import type { Certificates } from '../certificates/certificates.js';
import type { Logger } from '../log.js';
import type { Transact } from '../store/database.js';
import type { Calibration } from './calibration.js';
import type { LabRecords } from './lab-records.js';
import type { RunResultsService } from './results.js';
import type { Run, Runs } from './runs.js';
import type { MethodDefinition } from './schemas.js';

export const DEMO_ACTOR: Actor = { username: 'demo', role: 'system' };
export const DEMO_METHOD_ID = 'tensile-demo';
export const DEMO_INSTRUMENT = 'utm-1';
/** the cross-section of the demo's 10 mm bars, mm2 */
const S0 = 78.54;
/** the extensometer's gauge length, mm */
const L0 = 50;
const DAY = 86_400_000;

export const DEMO_METHOD: { id: string; standard: string; title: string; definition: MethodDefinition } = {
  id: DEMO_METHOD_ID,
  standard: 'ISO 6892-1:2019',
  title: 'Metallic materials - Tensile testing - Method of test at room temperature (demo)',
  definition: {
    measurands: [
      { name: 'force', unit: 'kN', channel: 'force' },
      { name: 'extension', unit: 'mm', channel: 'extension' },
    ],
    instrumentTypes: ['universal-testing-machine'],
    limits: [{ measurand: 'force', min: 0, max: 50 }],
    decisionRule: { kind: 'simple-acceptance' },
    results: [
      { name: 'Fm', title: 'maximum force', measurand: 'force', statistic: 'max', resolution: 0.01, repeatability: 0.05 },
      {
        name: 'Rm',
        title: 'tensile strength',
        measurand: 'force',
        statistic: 'max',
        resolution: 0.01,
        repeatability: 0.05,
        scale: { factor: 1000 / S0, unit: 'MPa', description: `1 / S0, S0 = ${S0} mm2 (10 mm bar)`, relativeUncertainty: 0.005 },
        limits: { min: 500, max: 650 },
      },
      {
        name: 'A',
        title: 'percentage elongation after fracture',
        measurand: 'extension',
        statistic: 'max',
        resolution: 0.001,
        scale: { factor: 100 / L0, unit: '%', description: `100 / L0, L0 = ${L0} mm`, relativeUncertainty: 0.002 },
        limits: { min: 16 },
      },
    ],
    rules: [
      { id: 'force-limits', kind: 'limits', severity: 'alarm', channel: 'force', low: -0.5, high: 50, warnHigh: 45, warnSeverity: 'warning' },
      { id: 'force-gap', kind: 'missing-data', severity: 'alarm', channel: 'force', maxGapMs: 3000 },
      { id: 'force-quality', kind: 'quality', severity: 'warning', channel: 'force', minimum: 'good' },
      { id: 'utm-status', kind: 'instrument-status', severity: 'critical', instrument: DEMO_INSTRUMENT },
    ],
  },
};

export interface DemoOptions {
  /** the technician the demo's runs are assigned to, who requests their certificates */
  technician: string;
  /** the signatory who approves and issues the demo's certificates (not the run's technician) */
  signatory: string;
  /** the organization whose samples the demo tests */
  organization: string;
  /** specimens left out between two runs (0: every specimen is a run) */
  pauseSpecimens: number;
}

/**
 * The services the demo works through. `transact`: the transaction each of its writes runs in: on several nodes,
 * the demo job's fenced one (lab/demo-job.ts), so that a node that lost the job's lease starts, stops or records
 * nothing; the store's own by default (one node).
 */
export interface DemoParts {
  records: LabRecords;
  runs: Runs;
  calibration: Calibration;
  instrumentExists: (id: string) => Promise<boolean>;
  /** certificates of completed demo runs: requested by the technician, issued by the signatory */
  certificates?: Pick<Certificates, 'request' | 'issue'>;
  /** the results of a completed run, kept before its certificate is requested */
  results?: Pick<RunResultsService, 'onCompleted'>;
  transact?: Transact | undefined;
}

type Phase = { kind: 'waiting'; skip: number } | { kind: 'mounting' } | { kind: 'running'; run: string; specimen: number };

export class DemoLab {
  private phase: Phase = { kind: 'waiting', skip: 0 };
  private specimen: number | undefined;
  private started = false;

  constructor(
    private readonly deps: DemoParts,
    private readonly logger: Logger,
    private readonly options: DemoOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records the demo method once; the calibration and runs follow the testing machine's samples. Two demos starting
   * at once (two nodes) record it once: the method's id is unique, and the records refuse a second method of an id
   * under their lock, which the demo takes as recorded.
   */
  async start(): Promise<void> {
    await this.deps.records.createMethod(DEMO_ACTOR, DEMO_METHOD).catch((err: unknown) => {
      if (!(err instanceof LabtraceError && err.code === 'E_CONFLICT' && err.refusal?.reason === 'record.exists')) throw err;
    });
    // a run left running by a stop of the server (or of the node that ran the demo) is ended: its specimen is gone
    for (const run of await this.deps.runs.list({ role: 'admin', organization: null }, { state: 'running' }))
      if (run.method.id === DEMO_METHOD_ID)
        await this.deps.runs.abort(DEMO_ACTOR, run.id, 'the demo lab was restarted while the run was running', this.deps.transact);
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
    await this.steps;
  }

  /**
   * Follows the testing machine's specimen counter: a new specimen starts a run, the next one ends it. The steps
   * run one after another (a step's queries are asynchronous; the samples arrive meanwhile).
   */
  onSamples(samples: readonly LiveSample[]): void {
    if (!this.started) return;
    for (const s of samples) {
      if (s.instrument !== DEMO_INSTRUMENT || s.channel !== 'specimen' || typeof s.value !== 'number') continue;
      const previous = this.specimen;
      this.specimen = s.value;
      if (previous === undefined || s.value === previous) continue;
      const specimen = s.value;
      this.steps = this.steps.then(() =>
        this.onSpecimen(specimen).catch((err: unknown) => {
          this.logger.warn({ err: err instanceof LabtraceError ? err.message : err }, 'demo run step failed');
          this.phase = { kind: 'waiting', skip: 1 };
        }),
      );
    }
  }

  /** the steps taken so far, in order (stop() waits for them) */
  private steps: Promise<void> = Promise.resolve();

  private async onSpecimen(specimen: number): Promise<void> {
    if (!this.started) return;
    const phase = this.phase;
    if (phase.kind === 'running') {
      const stopped = await this.deps.runs.stop(DEMO_ACTOR, phase.run, `specimen ${phase.specimen} broke`, this.deps.transact);
      this.logger.info({ run: phase.run }, 'demo run completed');
      await this.deps.results?.onCompleted(stopped);
      this.certify(phase.run);
      this.phase = { kind: 'waiting', skip: this.options.pauseSpecimens };
      if (this.options.pauseSpecimens > 0) return;
    }
    if (this.phase.kind === 'waiting' && this.phase.skip > 0) {
      this.phase = { kind: 'waiting', skip: this.phase.skip - 1 };
      return;
    }
    await this.ensureCalibrated();
    const id = `DEMO-${specimen}-${this.now()}`;
    const transact = this.deps.transact;
    await this.deps.records.createSample(
      DEMO_ACTOR,
      {
        id,
        organization: this.options.organization,
        description: `steel bar B500B, 10 mm, specimen ${specimen} of the demo batch`,
        condition: 'as received, no visible damage',
        receivedAt: this.now(),
      },
      transact,
    );
    const run: Run = await this.deps.runs.create(
      DEMO_ACTOR,
      { sample: id, method: DEMO_METHOD_ID, instruments: [DEMO_INSTRUMENT], technician: this.options.technician },
      transact,
    );
    try {
      await this.deps.runs.start(DEMO_ACTOR, run.id, `specimen ${specimen} mounted`, transact);
    } catch (err) {
      // not left planned (the lease lost meanwhile, say): the run was this demo's own, and nobody else knows of it
      await this.deps.runs.abort(DEMO_ACTOR, run.id, 'the demo run could not start').catch(() => undefined);
      throw err;
    }
    this.phase = { kind: 'running', run: run.id, specimen };
    this.logger.info({ run: run.id }, 'demo run started: sign in as the demo client to watch it');
  }

  /** The completed run's certificate, requested by its technician and issued by the demo signatory. */
  private certify(run: string): void {
    const certificates = this.deps.certificates;
    if (!certificates) return;
    certificates
      .request({ username: this.options.technician, role: 'technician', organization: null }, run)
      .then((draft) => certificates.issue({ username: this.options.signatory, role: 'signatory', organization: null }, draft.id))
      .then(
        (issued) => this.logger.info({ run, certificate: issued.id, verify: issued.verifyUrl }, 'demo certificate issued'),
        (err: unknown) => this.logger.warn({ run, err: err instanceof Error ? err.message : err }, 'demo certificate not issued'),
      );
  }

  /** The testing machine's calibration: recorded when it has none in force, as a calibration lab would have. */
  private async ensureCalibrated(): Promise<void> {
    if (!(await this.deps.instrumentExists(DEMO_INSTRUMENT)))
      throw new LabtraceError('E_NOT_FOUND', `instrument ${DEMO_INSTRUMENT} has not announced itself yet`);
    const status = await this.deps.calibration.status(DEMO_INSTRUMENT);
    if (status.status === 'valid' || status.status === 'due-soon') return;
    const at = this.now();
    await this.deps.calibration.record(
      DEMO_ACTOR,
      DEMO_INSTRUMENT,
      {
        calibratedAt: at - 30 * DAY,
        laboratory: 'Demo Calibration Services (not a real laboratory)',
        certificate: `DEMO-CAL-${new Date(at).getUTCFullYear()}-001`,
        results: [
          { point: '10 kN', reference: 10, indication: 10.004, unit: 'kN' },
          { point: '40 kN', reference: 40, indication: 40.012, unit: 'kN' },
        ],
        // relative to the reading (ISO 7500-1 class 0.5 machines), so it applies to force and extension alike
        uncertainty: { value: 0.3, unit: '%', k: 2 },
        acceptance: 'ISO 7500-1 class 0.5',
        nextDueAt: at + 335 * DAY,
        reason: 'demo: the machine as delivered with its calibration certificate',
      },
      this.deps.transact,
    );
  }
}
