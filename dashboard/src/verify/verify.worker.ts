// The auditor's verifier, off the page's thread: the bundle's archive is read and every signature, Merkle root and
// proof checked here (protocols' pure-JavaScript verifier, the code `labtrace verify` runs), so the page stays
// responsive however large the bundle. One request, one answer.
import {
  bundlesOfTar,
  sha256BatchJs,
  sha256Js,
  TarError,
  UnusableAuditExport,
  useSha256,
  useSha256Batch,
  verifyAuditExport,
  verifyBundleWithWebCrypto,
} from '@labtrace/protocols/verify';
import type { VerifyRequest, VerifyAnswer } from './messages';

// SHA-256 without an allocation per hash: a bundle's hundreds of thousands of short records and proof steps
useSha256(sha256Js);
useSha256Batch(sha256BatchJs);

const scope = self as unknown as { onmessage: ((e: MessageEvent<VerifyRequest>) => void) | null; postMessage(a: VerifyAnswer): void };

async function handle(request: VerifyRequest): Promise<void> {
  const started = performance.now();
  try {
    if (request.kind === 'bundle') {
      const bundles = bundlesOfTar(new Uint8Array(request.archive));
      const reports = [];
      // one bundle at a time: the signatures are checked by the browser's own Ed25519 (WebCrypto) where it has one
      for (const b of bundles)
        reports.push({
          dir: b.dir,
          report: await verifyBundleWithWebCrypto(b.files, {
            ...(request.savedCheckpoint === undefined ? {} : { savedCheckpoint: request.savedCheckpoint }),
            ...(request.logKey === undefined ? {} : { logKey: request.logKey }),
          }),
          keys: b.files.keys,
        });
      scope.postMessage({ id: request.id, kind: 'bundle', reports, ms: performance.now() - started });
    } else {
      const report = verifyAuditExport(request.text);
      scope.postMessage({ id: request.id, kind: 'audit', report, ms: performance.now() - started });
    }
  } catch (err) {
    const unusable = err instanceof TarError || err instanceof UnusableAuditExport;
    scope.postMessage({ id: request.id, kind: 'unusable', message: err instanceof Error ? err.message : String(err), known: unusable });
  }
}

scope.onmessage = (event) => void handle(event.data);
