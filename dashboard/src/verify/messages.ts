// What the page and the verifier's worker say to each other (verify.worker.ts).
import type { AuditVerifyReport, VerifyReport } from '@labtrace/protocols/verify';

export type VerifyRequest =
  { id: number; kind: 'bundle'; archive: ArrayBuffer; savedCheckpoint?: string; logKey?: string } | { id: number; kind: 'audit'; text: string };

export interface BundleResult {
  /** the bundle's folder in the archive (one per gateway of a run) */
  dir: string;
  report: VerifyReport;
  /** the bundle's keys.json, compared with the lab's published keys */
  keys: string;
}

export type VerifyAnswer =
  | { id: number; kind: 'bundle'; reports: BundleResult[]; ms: number }
  | { id: number; kind: 'audit'; report: AuditVerifyReport; ms: number }
  /** the input is not a bundle or an audit export at all (known), or the verifier failed (not known) */
  | { id: number; kind: 'unusable'; message: string; known: boolean };

/** a request before it is numbered (each member of the union without its id) */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** Runs one request in a worker started for it (and ended after it); the worker's module loads with this view only. */
export function runVerifier(request: WithoutId<VerifyRequest>, transfer: Transferable[] = []): Promise<VerifyAnswer> {
  const worker = new Worker(new URL('./verify.worker.ts', import.meta.url), { type: 'module' });
  return new Promise<VerifyAnswer>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<VerifyAnswer>) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(e.message || 'the verifier stopped'));
    };
    const numbered: VerifyRequest = { ...request, id: 1 };
    worker.postMessage(numbered, transfer);
  });
}
