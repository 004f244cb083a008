// The auditor's verifier, off the page's thread: the bundle's archive is read and every signature, Merkle root and
// proof checked here (protocols' pure-JavaScript verifier, the code `labtrace verify` runs), so the page stays
// responsive however large the bundle. One request, one answer.
import { bundlesOfTar, TarError, UnusableAuditExport, verifyAuditExport, verifyBundle } from '@labtrace/protocols/verify';
import type { VerifyRequest, VerifyAnswer } from './messages';

const scope = self as unknown as { onmessage: ((e: MessageEvent<VerifyRequest>) => void) | null; postMessage(a: VerifyAnswer): void };

scope.onmessage = (event) => {
  const request = event.data;
  const started = performance.now();
  try {
    if (request.kind === 'bundle') {
      const bundles = bundlesOfTar(new Uint8Array(request.archive));
      const reports = bundles.map((b) => ({
        dir: b.dir,
        report: verifyBundle(b.files, {
          ...(request.savedCheckpoint === undefined ? {} : { savedCheckpoint: request.savedCheckpoint }),
          ...(request.logKey === undefined ? {} : { logKey: request.logKey }),
        }),
        keys: b.files.keys,
      }));
      scope.postMessage({ id: request.id, kind: 'bundle', reports, ms: performance.now() - started });
    } else {
      const report = verifyAuditExport(request.text);
      scope.postMessage({ id: request.id, kind: 'audit', report, ms: performance.now() - started });
    }
  } catch (err) {
    const unusable = err instanceof TarError || err instanceof UnusableAuditExport;
    scope.postMessage({ id: request.id, kind: 'unusable', message: err instanceof Error ? err.message : String(err), known: unusable });
  }
};
