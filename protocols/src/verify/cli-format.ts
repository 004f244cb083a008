// The verifier's report for people: what was trusted, what the checkpoint says, per gateway what the bundle
// holds, and every problem with its place and the computed versus the claimed value. `--json` prints the report.
import type { Problem, VerifyReport } from './verifier.js';

const time = (ms: number | null): string => (ms === null ? 'no limit' : new Date(ms).toISOString());

function describeProblem(p: Problem): string {
  const values =
    p.computed !== undefined || p.claimed !== undefined
      ? `\n      computed: ${String(p.computed ?? '-')}\n      claimed:  ${String(p.claimed ?? '-')}`
      : '';
  return `  ${p.kind}: ${p.where}\n      ${p.message}${values}`;
}

export function formatReport(report: VerifyReport): string {
  const out: string[] = [];
  const verdict = report.status === 'verified' ? 'VERIFIED' : report.status === 'unusable' ? 'UNUSABLE INPUT' : 'DOES NOT VERIFY';
  out.push(`labtrace verify: ${verdict}`);
  if (report.selection !== null)
    out.push(
      `bundle: gateway ${report.selection.gateway}, ${report.selection.from} .. ${report.selection.to}, exported ${report.selection.created || '?'}`,
    );
  out.push('', 'trust inputs:');
  out.push(
    `  log key ${report.trust.logKeyId ?? '?'} ${report.trust.logKey ?? '(none)'}${report.trust.logKeyPinned ? ' (given)' : " (from the bundle's keys.json: compare it with the lab's published key)"}`,
  );
  for (const k of report.trust.gatewayKeys)
    out.push(`  gateway ${k.gateway} key ${k.keyId} ${k.status}${k.validUntil === null ? '' : `, valid for batches before ${time(k.validUntil)}`}`);
  if (report.checkpoint !== null) {
    out.push('', 'checkpoint:');
    out.push(`  origin ${report.checkpoint.origin}`, `  size   ${report.checkpoint.size}`, `  root   ${report.checkpoint.root}`);
    out.push(`  signature by the log key: ${report.checkpoint.signatureVerified ? 'verified' : 'NOT VERIFIED'}`);
  }
  if (report.savedCheckpoint !== null)
    out.push(
      `  saved checkpoint of size ${report.savedCheckpoint.size} (root ${report.savedCheckpoint.root}): ${report.savedCheckpoint.consistent ? 'consistent, the log only grew' : 'NOT CONSISTENT'}`,
    );
  if (report.gateways.length > 0) out.push('', 'gateways:');
  for (const g of report.gateways) {
    const ranges = g.ranges.map((r) => (r.first === r.last ? `${r.first}` : `${r.first}..${r.last}`)).join(', ');
    out.push(`  ${g.gateway}: ${g.records} records in ${g.batches} batches, sequence ${ranges || '-'}`);
    for (const j of g.declaredJumps) out.push(`    declared jump before batch ${j.batch}: numbers ${j.from}..${j.to} never used`);
  }
  if (report.keyEvents.length > 0) {
    out.push('', 'key events in the log:');
    for (const e of report.keyEvents)
      out.push(`  #${e.index} ${e.at === null ? '?' : time(e.at)} ${e.kind ?? '?'}${e.gateway === null ? '' : ` ${e.gateway}`}`);
  }
  const c = report.counts;
  out.push(
    '',
    `checked: ${c.batches} batches, ${c.records} records; ${c.signaturesVerified} signatures, ${c.rootsVerified} Merkle roots and ${c.inclusionsVerified} log inclusions verified`,
  );
  if (report.problems.length > 0) {
    out.push('', `problems (${report.problems.length + report.problemsOmitted}):`);
    for (const p of report.problems) out.push(describeProblem(p));
    if (report.problemsOmitted > 0) out.push(`  ... and ${report.problemsOmitted} more`);
  }
  return `${out.join('\n')}\n`;
}
