// What certificates need of the lab's other modules, asked through these interfaces rather than by reading their
// tables (issue 17, item 1): the run and its results, the sample, the method's title, the customer, the
// instruments' identity and calibration, the accreditation, and the transparency log the events enter. Each method
// may answer synchronously or with a promise, so that an owner satisfies it before and after it moves onto async
// Kysely. Certificates never calls these inside one of its transactions (a transaction awaits only its own queries).
import type { Kysely, Transaction } from 'kysely';
import type { Accreditations } from '../lab/accreditation.js';
import type { Calibration, CalibrationStatus, Review } from '../lab/calibration.js';
import type { RunResults, RunResultsSource } from '../lab/contracts.js';
import type { LabRecords } from '../lab/lab-records.js';
import type { Run, Runs } from '../lab/runs.js';
import type { LogStore } from '../log/log-store.js';
import type { TransparencyLog } from '../log/transparency-log.js';
import type { Registry } from '../store/registry.js';
import type { Tables } from '../store/tables.js';
import type { ComposeInput } from './compose.js';

export type Awaitable<T> = T | Promise<T>;

/** an instrument's identity as a report prints it */
export type InstrumentIdentity = NonNullable<ComposeInput['instruments'][number]['identity']>;

/** the customer's name and the sample of a run, as the records hold them now (a certificate list shows them) */
export interface CertificateSubject {
  customer: string;
  sample: { id: string; description: string };
}

/** What certificates read of the lab's records, each from its owner. */
export interface CertificateSources {
  /** a run, whoever's it is (runs/) */
  run(id: string): Awaitable<Run | undefined>;
  /** the computed results of a completed run (runs/results) */
  results(run: string): Awaitable<RunResults | undefined>;
  /** a sample as received (lab records) */
  sample(id: string): Awaitable<ComposeInput['sample'] | undefined>;
  /** the title of a method version (lab records) */
  methodTitle(id: string, version: number): Awaitable<string | undefined>;
  /** the customer: an organization's name and contact (auth/) */
  customer(organization: string): Awaitable<{ name: string; contact: string | null } | undefined>;
  /** an instrument's identity (the registry) */
  instrumentIdentity(id: string): Awaitable<InstrumentIdentity | undefined>;
  /** an instrument's calibration status at a time, now when `at` is left out (calibration) */
  calibrationStatus(instrument: string, at?: number): Awaitable<CalibrationStatus>;
  /** the runs under review since an instrument's last good check or calibration (calibration) */
  calibrationReview(instrument: string): Awaitable<Pick<Review, 'since' | 'runs'>>;
  /** whether an accreditation (body and number) is current at a time: the mark is printed only then (accreditation) */
  accreditationCurrent(accreditation: { body: string; number: string }, at: number): Awaitable<boolean>;
  /** the customer's name and the sample of each run (runs, lab records, auth) */
  subjects(runs: readonly string[]): Awaitable<Map<string, CertificateSubject>>;
  /**
   * the runs whose customer's name, sample id or sample description contain `text` (a certificate list's search;
   * case-insensitive at least for ASCII letters, like SQLite's LIKE)
   */
  runsAbout(text: string): Awaitable<readonly string[]>;
}

/** The transparency log as certificates use it: one entry per event, in the caller's transaction. */
export interface CertificateLog {
  /** appends one certificate event inside `trx` (it is kept only if `trx` commits); its index */
  append(trx: Transaction<Tables>, entry: Uint8Array, at: number): Promise<number>;
  /** the latest signed checkpoint (a signed note), signing a new one first if one is due; outside any transaction */
  checkpoint(now: number): Promise<string>;
  /** the latest signed checkpoint, without signing */
  latestCheckpoint(): Promise<string>;
}

/**
 * The log store shared by the nodes on one database (log/log-store.ts): appends take its lock inside the caller's
 * transaction, on PostgreSQL as on SQLite.
 */
export function logStoreLog(store: LogStore): CertificateLog {
  return {
    append: (trx, entry, at) => store.append(trx, 'certificate-event', [entry], at),
    checkpoint: (now) => store.checkpoint(now),
    latestCheckpoint: async () => (await store.latestCheckpoint()).note,
  };
}

/**
 * The embedded SQLite server's synchronous log (log/transparency-log.ts): it writes on the same connection as the
 * store's Kysely, so an append made inside a Kysely transaction on that store is part of it. SQLite only.
 */
export function transparencyLogLog(log: TransparencyLog): CertificateLog {
  return {
    append: (_trx, entry, at) => Promise.resolve(log.append('certificate-event', [entry], at)),
    checkpoint: (now) => Promise.resolve(log.checkpoint(now)),
    latestCheckpoint: () => Promise.resolve(log.latestCheckpoint().note),
  };
}

/** the lab's own view of runs (every organization's) */
const LAB = { role: 'admin' as const, organization: null };

/** rows per page when the search pages through the samples */
const SEARCH_PAGE = 500;

/**
 * The sources as the owners answer today (the runs, lab records, calibration and results still synchronous on
 * SQLite; the registry and the organizations through async Kysely). Where an owner has no method for a question
 * yet (the runs about a text), it is put together here from the methods the owners have; each owner replaces its
 * part when it offers the question itself.
 */
export function labSources(owners: {
  db: Kysely<Tables>;
  runs: Pick<Runs, 'get' | 'list'>;
  records: Pick<LabRecords, 'sample' | 'method' | 'samplesPage'>;
  calibration: Pick<Calibration, 'status' | 'review'>;
  results: () => RunResultsSource | undefined;
  registry: Pick<Registry, 'instrument'>;
  organizations: () => Promise<{ id: string; name: string; contact: string | null }[]>;
  accreditations: Pick<Accreditations, 'list'>;
}): CertificateSources {
  const { runs, records, calibration } = owners;
  const customers = async (): Promise<Map<string, { name: string; contact: string | null }>> =>
    new Map((await owners.organizations()).map((o) => [o.id, { name: o.name, contact: o.contact }]));
  return {
    run: (id) => runs.get(LAB, id),
    results: (run) => owners.results()?.resultsOf(run),
    sample: (id) => records.sample(id),
    methodTitle: async (id, version) => (await records.method(id, version))?.title,
    customer: async (organization) => (await customers()).get(organization),
    instrumentIdentity: async (id) => (await owners.registry.instrument(id))?.identity,
    calibrationStatus: (instrument, at) => (at === undefined ? calibration.status(instrument) : calibration.status(instrument, at)),
    calibrationReview: (instrument) => calibration.review(instrument),
    accreditationCurrent: async (a, at) =>
      (await owners.accreditations.list(at)).some((v) => v.body === a.body && v.number === a.number && v.status === 'active'),
    subjects: async (ids) => {
      const names = await customers();
      const out = new Map<string, CertificateSubject>();
      for (const id of ids) {
        const run = await runs.get(LAB, id);
        const sample = run === undefined ? undefined : await records.sample(run.sample);
        out.set(id, {
          customer: run === undefined ? '' : (names.get(run.organization)?.name ?? ''),
          sample: { id: sample?.id ?? '', description: sample?.description ?? '' },
        });
      }
      return out;
    },
    runsAbout: async (text) => {
      const needle = text.toLowerCase();
      const names = await customers();
      const samples = new Set<string>();
      let cursor: string | undefined;
      do {
        const page = await records.samplesPage({ limit: SEARCH_PAGE, ...(cursor === undefined ? {} : { cursor }) }, undefined);
        for (const s of page.items)
          if (
            s.id.toLowerCase().includes(needle) ||
            s.description.toLowerCase().includes(needle) ||
            (names.get(s.organization)?.name.toLowerCase().includes(needle) ?? false)
          )
            samples.add(s.id);
        cursor = page.next ?? undefined;
      } while (cursor !== undefined);
      const ids: string[] = [];
      for (const sample of samples) for (const r of await runs.list(LAB, { sample })) ids.push(r.id);
      return ids;
    },
  };
}
