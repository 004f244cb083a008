// Follows one lab through what it publishes: its signed checkpoint (verified with the enrolled key, and consistent
// with the last one held), its new log entries (which must make the signed root), and, with its read-only token,
// the runs, alarms, certificates (with the accreditation each issued report claims), instruments and accreditations
// the rules need. A restart resumes from the stored cursor.
import { createHash } from 'node:crypto';
import {
  canonicalBytes,
  CompactTree,
  cosignatureVerifier,
  ed25519NoteVerifier,
  fromBase64,
  leafHash,
  openCheckpoint,
  openCosignatures,
  toBase64,
  toHex,
  verifyConsistency,
  verifyInclusion,
  type NoteVerifier,
} from '@labtrace/protocols';
import type { Accreditation, CertificateContent, Method } from '@labtrace/protocols/api';
import type { Logger } from '../log.js';
import type { EnrolledLab } from './config.js';
import type {
  AccreditationEvidence,
  AlarmEvidence,
  CertificateEvidence,
  InstrumentEvidence,
  LabEvidence,
  ReportMarkEvidence,
  RuleSettings,
  RunEvidence,
} from './evidence.js';
import { RULES } from './rules/index.js';
import type { FindingEvidence, SupervisorStore } from './supervisor-store.js';

/** entries asked per request (the lab answers at most 1,000) */
const ENTRIES_PER_READ = 1000;
const PAGE = 500;

export interface FollowResult {
  size: number;
  /** entries added */
  added: number;
  /** a contradiction was found (and kept as a conflict) */
  conflict: boolean;
}

export class LabFollower {
  private readonly logVerifier: NoteVerifier;
  private readonly witnessVerifiers: NoteVerifier[];

  constructor(
    readonly lab: EnrolledLab,
    private readonly store: SupervisorStore,
    private readonly logger: Logger,
    private readonly settings: RuleSettings,
  ) {
    this.logVerifier = ed25519NoteVerifier(lab.logKey);
    this.witnessVerifiers = lab.witnesses.map((k) => cosignatureVerifier(k));
  }

  /** Pulls the checkpoint and the entries up to it. */
  async follow(now: number): Promise<FollowResult> {
    const note = await this.text('/api/log/checkpoint');
    const opened = openCheckpoint(note, [this.logVerifier], { origin: this.lab.origin });
    const { size, rootHash } = opened.checkpoint;
    const root = toHex(rootHash);
    const cosignedBy = this.cosigners(note);
    const held = await this.store.cursor(this.lab.id);
    const seen = { size, rootHash: root, note, seenAt: now, cosignedBy };
    if (held.note !== null && held.rootHash !== null) {
      const conflict = await this.contradiction(held.size, held.rootHash, held.note, size, rootHash, root, note);
      if (conflict !== undefined) {
        await this.store.addConflict(this.lab.id, { ...conflict, detectedAt: now, heldNote: held.note, servedNote: note });
        this.logger.warn(
          { lab: this.lab.id, kind: conflict.kind, reason: conflict.reason },
          'supervisor: the lab contradicts a checkpoint it signed',
        );
        return { size: held.size, added: 0, conflict: true };
      }
      if (size === held.size) {
        await this.store.sawCheckpoint(this.lab.id, seen);
        return { size, added: 0, conflict: false };
      }
    }
    // the new entries must make the signed root with those held
    const tree = restoreTree(held.size, held.peaks);
    const entries: { index: number; kind: string; at: number; data: Uint8Array; leaf: Uint8Array }[] = [];
    for (let start = held.size; start < size; start += ENTRIES_PER_READ) {
      const end = Math.min(size, start + ENTRIES_PER_READ);
      const body = (await this.json(`/api/log/entries?start=${start}&end=${end}`)) as {
        entries: { index: number; kind: string; at: number; data: string }[];
      };
      for (const e of body.entries) {
        if (e.index !== tree.size) throw new Error(`the lab answered entry ${e.index} where ${tree.size} was expected`);
        const data = fromBase64(e.data);
        const leaf = leafHash(data);
        tree.append(leaf);
        entries.push({ index: e.index, kind: e.kind, at: e.at, data, leaf });
      }
      if (body.entries.length === 0) throw new Error(`the lab answered no entries in [${start}, ${end})`);
    }
    if (toHex(tree.root()) !== root) {
      await this.store.addConflict(this.lab.id, {
        kind: 'bad-entries',
        detectedAt: now,
        heldNote: held.note ?? '',
        servedNote: note,
        proof: [],
        reason: `the entries the lab served up to ${size} do not make the root it signed`,
      });
      return { size: held.size, added: 0, conflict: true };
    }
    await this.store.advance(this.lab.id, entries, { ...seen, peaks: tree.peaks.map(toBase64) });
    return { size, added: entries.length, conflict: false };
  }

  /** why the served checkpoint contradicts the held one, if it does */
  private async contradiction(
    heldSize: number,
    heldRoot: string,
    heldNote: string,
    size: number,
    rootHash: Uint8Array,
    root: string,
    note: string,
  ): Promise<{ kind: 'fork' | 'bad-proof' | 'shrunk'; proof: string[]; reason: string } | undefined> {
    void heldNote;
    void note;
    if (size < heldSize) return { kind: 'shrunk', proof: [], reason: `the log went back from ${heldSize} to ${size} entries` };
    if (size === heldSize)
      return root === heldRoot ? undefined : { kind: 'fork', proof: [], reason: `two trees of size ${size}: roots ${heldRoot} and ${root}` };
    if (heldSize === 0) return undefined;
    const body = (await this.json(`/api/log/proof/consistency?from=${heldSize}&to=${size}`)) as { proof: string[] };
    try {
      verifyConsistency(heldSize, size, fromHexBytes(heldRoot), rootHash, body.proof.map(fromBase64));
      return undefined;
    } catch (err) {
      return {
        kind: 'bad-proof',
        proof: body.proof,
        reason: `the tree of size ${size} does not extend the one of size ${heldSize}: ${(err as Error).message}`,
      };
    }
  }

  private cosigners(note: string): string[] {
    if (this.witnessVerifiers.length === 0) return [];
    try {
      return openCosignatures(note, this.witnessVerifiers).cosignatures.map((c) => c.name);
    } catch (err) {
      this.logger.warn({ lab: this.lab.id, err }, 'supervisor: a cosignature on the checkpoint does not verify');
      return [];
    }
  }

  /** Pulls the records the rules read, with the lab's read-only token. */
  async pullRecords(now: number): Promise<void> {
    const runs = await this.pages<RunEvidence & Record<string, unknown>>('/api/runs');
    await this.store.putRecords(
      this.lab.id,
      'run',
      runs.map((r) => ({ id: r.id, body: runOf(r) })),
      now,
    );
    const certificates = await this.pages<CertificateEvidence & Record<string, unknown>>('/api/certificates');
    await this.store.putRecords(
      this.lab.id,
      'certificate',
      certificates.map((c) => ({ id: c.id, body: certificateOf(c) })),
      now,
    );
    const instruments = new Set(runs.flatMap((r) => r.instruments.map((i) => i.id)));
    const got: { id: string; body: InstrumentEvidence }[] = [];
    for (const id of instruments) {
      const cal = (await this.json(`/api/instruments/${encodeURIComponent(id)}/calibrations`)) as {
        calibrations: { calibratedAt: number; nextDueAt: number; certificate: string }[];
        checks: { checkedAt: number; result: 'pass' | 'fail' }[];
      };
      const status = (await this.json(`/api/instruments/${encodeURIComponent(id)}/status`)) as {
        history: { status: 'in-service' | 'out-of-service'; at: number; reason: string }[];
      };
      got.push({
        id,
        body: {
          id,
          calibrations: cal.calibrations.map((c) => ({ calibratedAt: c.calibratedAt, nextDueAt: c.nextDueAt, certificate: c.certificate })),
          checks: cal.checks.map((c) => ({ checkedAt: c.checkedAt, result: c.result })),
          status: [...status.history].sort((a, b) => a.at - b.at).map((s) => ({ status: s.status, at: s.at, reason: s.reason })),
        },
      });
    }
    await this.store.putRecords(this.lab.id, 'instrument', got, now);
    // alarms: once for each completed run, again while some stay open
    const fetched = await this.store.recordIds(this.lab.id, 'alarms');
    const alarms: { id: string; body: AlarmEvidence[] }[] = [];
    for (const run of runs) {
      if (run.state !== 'completed' || (fetched.has(run.id) && run.openAlarms === 0)) continue;
      const body = (await this.json(`/api/runs/${encodeURIComponent(run.id)}/alarms`)) as {
        alarms: {
          id: string;
          raisedAt: number;
          severity: string;
          message: string;
          acknowledged: { at: number } | null;
          cleared: { at: number } | null;
        }[];
      };
      alarms.push({
        id: run.id,
        body: body.alarms.map((a) => ({
          id: a.id,
          raisedAt: a.raisedAt,
          acknowledgedAt: a.acknowledged?.at ?? null,
          clearedAt: a.cleared?.at ?? null,
          severity: a.severity,
          message: a.message,
        })),
      });
    }
    await this.store.putRecords(this.lab.id, 'alarms', alarms, now);
    await this.pullAccreditation(certificates, now);
  }

  /**
   * What each issued report claims of the accreditation (its signed content, read once, and the method version its
   * results were computed with when it carries the mark), and the lab's accreditations with every scope version
   * and event, read each time (they grow).
   */
  private async pullAccreditation(certificates: readonly CertificateEvidence[], now: number): Promise<void> {
    const read = await this.store.recordIds(this.lab.id, 'report-mark');
    const methods = new Map<string, Method[]>();
    const marks: { id: string; body: ReportMarkEvidence }[] = [];
    for (const c of certificates) {
      if (c.issuedAt === null || read.has(c.id)) continue;
      // parsed here rather than by fetch, so that its objects are plain ones of this realm for the canonical JSON
      const { content } = JSON.parse(await this.text(`/api/certificates/${encodeURIComponent(c.id)}`)) as { content?: CertificateContent };
      // a report listed as issued whose content the lab does not serve is asked for again next time
      if (content === undefined) continue;
      let versions: Method[] = [];
      if (content.accreditation !== null) {
        const id = content.method.id;
        versions = methods.get(id) ?? ((await this.json(`/api/methods/${encodeURIComponent(id)}`)) as Method[]);
        methods.set(id, versions);
      }
      marks.push({ id: c.id, body: markOf(content, versions) });
    }
    await this.store.putRecords(this.lab.id, 'report-mark', marks, now);
    const listed = (await this.json('/api/accreditations')) as { id: string }[];
    const accreditations: { id: string; body: AccreditationEvidence }[] = [];
    for (const { id } of listed) {
      const a = (await this.json(`/api/accreditations/${encodeURIComponent(id)}`)) as Accreditation & { scopeVersions: Accreditation['scope'][] };
      accreditations.push({ id, body: accreditationOf(a) });
    }
    await this.store.putRecords(this.lab.id, 'accreditation', accreditations, now);
  }

  /** The evidence held for this lab, as the rules read it. */
  async evidence(now: number): Promise<LabEvidence> {
    const lab = this.lab.id;
    return {
      lab: this.lab.id,
      now,
      settings: this.settings,
      witnesses: {
        names: this.lab.witnesses.map((k) => k.split('+')[0] ?? k),
        required: this.lab.witnessesRequired,
      },
      checkpoints: await this.store.checkpoints(lab),
      entries: await this.store.entries(lab),
      runs: await this.store.records<RunEvidence>(lab, 'run'),
      alarms: new Map(await this.store.recordsById<AlarmEvidence[]>(lab, 'alarms')),
      certificates: await this.store.records<CertificateEvidence>(lab, 'certificate'),
      instruments: new Map((await this.store.records<InstrumentEvidence>(lab, 'instrument')).map((i) => [i.id, i])),
      conflicts: await this.store.conflicts(lab),
      accreditations: await this.store.records<AccreditationEvidence>(lab, 'accreditation'),
      marks: new Map(await this.store.recordsById<ReportMarkEvidence>(lab, 'report-mark')),
    };
  }

  /** Runs every rule over the evidence and records the new findings with their proofs; returns how many are new. */
  async check(now: number): Promise<number> {
    const started = Date.now();
    const evidence = await this.evidence(now);
    const known = await this.store.findingKeys(this.lab.id);
    const cursor = await this.store.cursor(this.lab.id);
    let added = 0;
    let error: string | null = null;
    try {
      for (const rule of RULES) {
        for (const f of rule.check(evidence)) {
          if (known.has(`${rule.id} ${f.key}`)) continue;
          await this.store.addFinding({
            lab: this.lab.id,
            rule: rule.id,
            key: f.key,
            severity: rule.severity,
            at: f.at,
            detectedAt: now,
            summary: f.summary,
            subject: f.subject,
            evidence: await this.proofsFor(f.entries, cursor.size, cursor.rootHash, cursor.note, f.detail),
          });
          added += 1;
        }
      }
    } catch (err) {
      error = (err as Error).message;
      throw err;
    } finally {
      await this.store.addCheckRun({
        lab: this.lab.id,
        startedAt: now,
        durationMs: Date.now() - started,
        deep: true,
        logSize: cursor.size,
        rules: RULES.map((r) => r.id),
        newFindings: added,
        error,
      });
    }
    return added;
  }

  /** each entry with its leaf hash and its inclusion proof to the held checkpoint (checked before it is kept) */
  private async proofsFor(
    refs: readonly { index: number; why: string }[],
    size: number,
    rootHex: string | null,
    note: string | null,
    detail: Record<string, unknown> | undefined,
  ): Promise<FindingEvidence> {
    const entries: FindingEvidence['entries'] = [];
    for (const ref of refs) {
      const held = await this.store.entryLeaf(this.lab.id, ref.index);
      if (held === undefined) continue;
      let proof: string[] | null = null;
      if (rootHex !== null && ref.index < size) {
        try {
          const body = (await this.json(`/api/log/proof/inclusion?index=${ref.index}&size=${size}`)) as { proof: string[] };
          verifyInclusion(held.leaf, ref.index, size, body.proof.map(fromBase64), fromHexBytes(rootHex));
          proof = body.proof;
        } catch (err) {
          this.logger.warn({ lab: this.lab.id, index: ref.index, err }, 'supervisor: no valid inclusion proof for a finding');
        }
      }
      entries.push({ index: ref.index, why: ref.why, kind: held.kind, leafHash: toBase64(held.leaf), inclusionProof: proof });
    }
    return { checkpoint: note, entries, ...(detail === undefined ? {} : { detail }) };
  }

  private async pages<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const page = (await this.json(`${path}?limit=${PAGE}${cursor === null ? '' : `&cursor=${cursor}`}`)) as { items: T[]; next: string | null };
      items.push(...page.items);
      cursor = page.next;
    } while (cursor !== null);
    return items;
  }

  private async request(path: string): Promise<Response> {
    const res = await fetch(`${this.lab.url}${path}`, {
      headers: { authorization: `Bearer ${this.lab.token}` },
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`${this.lab.id}: GET ${path} answered ${res.status}`);
    return res;
  }

  private async json(path: string): Promise<unknown> {
    return (await this.request(path)).json();
  }

  private async text(path: string): Promise<string> {
    return (await this.request(path)).text();
  }
}

function runOf(r: RunEvidence): RunEvidence {
  return {
    id: r.id,
    technician: r.technician,
    createdBy: r.createdBy,
    state: r.state,
    instruments: r.instruments.map((i) => ({ id: i.id, gateway: i.gateway })),
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    ranges: r.ranges.map((g) => ({ gateway: g.gateway, firstSeq: g.firstSeq, lastSeq: g.lastSeq })),
    openAlarms: r.openAlarms,
  };
}

function certificateOf(c: CertificateEvidence): CertificateEvidence {
  return {
    id: c.id,
    run: c.run,
    status: c.status,
    issuedBy: c.issuedBy,
    issuedAt: c.issuedAt,
    amends: c.amends,
    amendReason: c.amendReason,
    logIndex: c.logIndex,
    digests: c.digests,
  };
}

/** the report's claim of accreditation, with each result brought back to its measurand's unit by the method version's scale */
export function markOf(content: CertificateContent, versions: readonly Method[]): ReportMarkEvidence {
  const definition = versions.find((v) => v.version === content.method.version)?.definition;
  return {
    id: content.id,
    contentDigest: createHash('sha256').update(canonicalBytes(content)).digest('hex'),
    issuedAt: content.issuedAt,
    mark: content.accreditation === null ? null : { body: content.accreditation.body, number: content.accreditation.number },
    method: { id: content.method.id, version: content.method.version, standard: content.method.standard },
    results: content.results.map((r) => {
      const def = definition?.results.find((d) => d.name === r.name);
      const measurand = definition?.measurands.find((m) => m.name === def?.measurand);
      if (def === undefined || measurand === undefined) return { name: r.name, measurand: r.measurand, unit: r.unit, value: r.value };
      return { name: r.name, measurand: measurand.name, unit: measurand.unit, value: r.value / (def.scale?.factor ?? 1) };
    }),
  };
}

function accreditationOf(a: Accreditation & { scopeVersions: Accreditation['scope'][] }): AccreditationEvidence {
  const entry = (e: Accreditation['scope']['entries'][number]): AccreditationEvidence['scopes'][number]['entries'][number] => ({
    standard: e.standard,
    measurand: e.measurand,
    unit: e.unit,
    ...(e.min === undefined ? {} : { min: e.min }),
    ...(e.max === undefined ? {} : { max: e.max }),
  });
  return {
    id: a.id,
    body: a.body,
    number: a.number,
    validFrom: a.validFrom,
    validTo: a.validTo,
    scopes: [...a.scopeVersions]
      .sort((x, y) => x.version - y.version)
      .map((v) => ({ version: v.version, effectiveFrom: v.effectiveFrom, entries: v.entries.map(entry) })),
    events: [...a.events].sort((x, y) => x.at - y.at).map((e) => ({ kind: e.kind, at: e.at, reason: e.reason })),
  };
}

function fromHexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The compact tree of the entries held, from its stored right edge (the perfect subtrees of `size`, largest first). */
export function restoreTree(size: number, peaks: readonly string[]): CompactTree {
  if (size === 0) return new CompactTree();
  const byPosition = new Map<string, Uint8Array>();
  let start = 0;
  let k = 0;
  for (let level = 52; level >= 0; level--) {
    const width = 2 ** level;
    if (size - start >= width) {
      const peak = peaks[k++];
      if (peak === undefined) throw new Error('the stored tree edge does not match its size');
      byPosition.set(`${level}/${start / width}`, fromBase64(peak));
      start += width;
    }
  }
  return CompactTree.restore(size, (level, index) => byPosition.get(`${level}/${index}`));
}
