// The verifier's report for people: what was trusted, what the checkpoint says, per gateway what the bundle
// holds, and every problem with its place and the computed versus the claimed value. `--json` prints the report.
import type { BoundaryReport, Problem, VerifyReport } from './verifier.js';

const time = (ms: number | null): string => (ms === null ? 'no limit' : new Date(ms).toISOString());

const batches = (count: number, first: number | null, last: number | null): string =>
  count === 0 ? 'no batches' : `${count} batches (${first === last ? `batch ${String(first)}` : `batches ${String(first)}..${String(last)}`})`;
const seqs = (first: number | null, last: number | null): string =>
  first === null || last === null ? '-' : first === last ? `${first}` : `${first}..${last}`;

function describeBoundary(side: string, b: BoundaryReport | null, none: string): string {
  if (b === null) return `  ${side}: ${none}`;
  return `  ${side}: batch ${b.batch}, seq ${seqs(b.firstSeq, b.lastSeq)}, ${time(b.tsMin)} .. ${time(b.tsMax)}, log index ${b.logIndex ?? '-'}: ${b.verified ? 'verified' : 'NOT VERIFIED'}`;
}

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
  const limits = (validUntil: number | null, status: string, lastValidBatch: number | null): string =>
    `${validUntil === null ? '' : `, no new batch from ${time(validUntil)} (server time)`}${status === 'revoked' ? `, valid for ${lastValidBatch === null ? 'no batch' : `batches up to ${lastValidBatch}`}` : ''}`;
  for (const k of report.trust.gatewayKeys) {
    out.push(`  gateway ${k.gateway} key ${k.keyId} ${k.status}${limits(k.validUntil, k.status, k.lastValidBatch)}`);
    const l = k.logged;
    out.push(
      l === null
        ? '    not named by any structured key event in the log'
        : `    logged events ${l.events.join(', ')}: ${l.status}${l.validFrom === null ? '' : `, from ${time(l.validFrom)}`}${limits(l.validUntil, l.status, l.lastValidBatch)}${l.closedAt === null ? '' : `, no batch after log index ${l.closedAt}`}`,
    );
  }
  if (report.checkpoint !== null) {
    out.push('', 'checkpoint:');
    out.push(`  origin ${report.checkpoint.origin}`, `  size   ${report.checkpoint.size}`, `  root   ${report.checkpoint.root}`);
    out.push(`  signature by the log key: ${report.checkpoint.signatureVerified ? 'verified' : 'NOT VERIFIED'}`);
  }
  const w = report.witnesses;
  if (w !== undefined)
    out.push(
      `  cosigned by ${w.cosignedBy.length} of the ${w.named} named witnesses (${w.required} required)${w.cosignedBy.length === 0 ? '' : `: ${w.cosignedBy.map((c) => c.name).join(', ')}`}`,
    );
  if (report.savedCheckpoint !== null)
    out.push(
      `  saved checkpoint of size ${report.savedCheckpoint.size} (root ${report.savedCheckpoint.root}): ${report.savedCheckpoint.consistent ? 'consistent, the log only grew' : 'NOT CONSISTENT'}`,
    );
  const st = report.statement;
  if (st !== null) {
    out.push('', `export statement (signed by the log key: ${st.signatureVerified ? 'verified' : 'NOT VERIFIED'}):`);
    out.push(`  ${st.format}, gateway ${st.gateway}, ${st.from} .. ${st.to}`);
    out.push(`  against the checkpoint of ${st.origin} at size ${st.checkpoint.size}, root ${st.checkpoint.root}`);
    out.push(
      `  ${batches(st.batches.count, st.batches.first, st.batches.last)}, sequence ${seqs(st.seq.first, st.seq.last)}, ${st.records} records, ${st.keyEvents.count} key events`,
    );
  }
  const d = report.disclosure;
  if (d !== undefined) {
    out.push(
      '',
      `client's disclosure bundle of run ${d.run}, made ${d.created} (statement signed by the log key: ${d.statementVerified ? 'verified' : 'NOT VERIFIED'}):`,
    );
    out.push(`  fields shown: ${d.fields.join(', ') || '-'}`);
    out.push(`  redacted by the lab's data-export policy: ${d.redacted.join(', ') || 'none'}`);
    out.push(`  ${d.wholeRecords} records disclosed whole: their bytes are in the gateways' signed batches`);
    if (d.redactedRecords > 0)
      out.push(
        `  ${d.redactedRecords} records with a redacted field: each one's leaf is in its signed batch at its sequence number; its shown fields and the redacted fields' commitments are the lab's signed statement`,
      );
  }
  if (report.boundaries !== null) {
    out.push('', 'boundaries:');
    out.push(describeBoundary('before', report.boundaries.before, "none: the range starts at the gateway's first stored batch"));
    out.push(describeBoundary('after', report.boundaries.after, "none: the range reaches the gateway's last batch in the checkpoint"));
  }
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
  if (c.headersChained > 0)
    out.push(`  ${c.headersChained} headers authenticated by the next header's signature, which commits to them through its prev hash`);
  const removed = report.removedByRetention;
  if (removed !== undefined)
    out.push(
      `removed by retention: ${removed.records} records of ${removed.batches} batches (the lab's record retention; their signed headers and leaf hashes checked, the records themselves are no longer kept)`,
    );
  if (report.problems.length > 0) {
    out.push('', `problems (${report.problems.length + report.problemsOmitted}):`);
    for (const p of report.problems) out.push(describeProblem(p));
    if (report.problemsOmitted > 0) out.push(`  ... and ${report.problemsOmitted} more`);
  }
  return `${out.join('\n')}\n`;
}
