// Online backup and restore of a lab's store (`labtrace server backup` / `restore`, backup-cli.ts), on either engine:
// this file is the archive and the checks; sqlite-backup.ts and pg-backup.ts take and load an engine's snapshot.
//
// A backup is a tar archive: manifest.json first (format labtrace-backup/v1: when, the store's engine, size and
// SHA-256, its schema, the log's latest signed checkpoint, the keys the lab needs), then the store's snapshot (a SQLite
// file taken with VACUUM INTO, or a pg_dump archive of one transaction) taken while the server goes on writing, and
// the private keys under keys/ only when asked (--include-keys): by default they are listed, not copied.
//
// A restore never overwrites a store: it writes into a place that holds none. Before the restored store is put in
// place, its transparency log is checked: every entry's leaf hash, every stored checkpoint's root against the tree
// recomputed from the entries, the latest one's signature by the log key; and then against the last checkpoint the
// lab published (saved by an auditor, a witness or the supervisor). Its tree at that size must have that root. When
// the published checkpoint is larger than the restored log, entries published after the backup are gone: the
// restore is refused, or, when the operator accepts the gap, done with an alarm in the lab's security events saying
// which sizes, so that a restore can never silently rewrite the history others have seen.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import {
  CompactTree,
  LabtraceError,
  bytesEqual,
  ed25519NoteVerifier,
  formatVerifierKey,
  leafHash,
  openCheckpoint,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  toBase64,
  type Checkpoint,
  type VerifierKey,
} from '@labtrace/protocols';
import { Progress } from '@labtrace/protocols/node';

export const BACKUP_FORMAT = 'labtrace-backup/v1';
const MANIFEST_ENTRY = 'manifest.json';
/** a manifest larger than this is no manifest of ours */
const MAX_MANIFEST_BYTES = 1 << 20;
/** a key file larger than this is no key */
const MAX_KEY_BYTES = 64 << 10;

/** the engines a backup is of, and the archive entry holding each one's snapshot */
export type StoreEngine = 'sqlite' | 'postgresql';
export const STORE_ENTRIES: Record<StoreEngine, string> = { sqlite: 'labtrace.sqlite', postgresql: 'labtrace.pgdump' };
const ENGINE_NAMES: Record<StoreEngine, string> = { sqlite: 'SQLite', postgresql: 'PostgreSQL' };

export type KeyRole = 'log' | 'certificates';

export interface KeyPlace {
  role: KeyRole;
  /** where the server reads it (server.yaml's keyFile, or the data directory's default) */
  file: string;
}

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  /** when the snapshot was taken (ms since the epoch) */
  createdAt: number;
  /** PostgreSQL: the server's version and pg_dump's (pg_restore must be as recent) */
  store: { engine: StoreEngine; entry: string; bytes: number; sha256: string; migrations: string[]; serverVersion?: string; dumpVersion?: string };
  /** the log's latest signed checkpoint in the snapshot */
  log: { origin: string; size: number; root: string; checkpoint: string; verifierKey: string | null };
  counts: { logEntries: number; batches: number };
  keys: { role: KeyRole; file: string; present: boolean; included: boolean; entry?: string; sha256?: string }[];
}

/** A restore (or backup) refused: nothing was changed. */
export class BackupRefused extends LabtraceError {
  constructor(message: string) {
    super('E_CONFLICT', message);
  }
}

/** The archive or the restored log does not verify: nothing was put in place. */
export class BackupInvalid extends LabtraceError {
  constructor(readonly problems: string[]) {
    super('E_STORE', problems.join('\n'));
  }
}

/** Messages of long work, and whether to show its progress (a bar on a terminal, a line every few seconds otherwise). */
export type Say = (line: string) => void;

export const meter = (say: Say | undefined, what: string, unit: string): Progress | undefined =>
  say === undefined ? undefined : new Progress(what, unit);

export const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** What a snapshot holds, read from the snapshot itself (the same moment of the store as its bytes). */
export interface SnapshotFacts {
  /** the applied migrations, by name */
  migrations: string[];
  /** the log's latest signed checkpoint, undefined when none (not a lab store, or its server never started) */
  latest: { size: number; note: string } | undefined;
  logEntries: number;
  batches: number;
  serverVersion?: string;
  dumpVersion?: string;
}

/** One engine's side of a backup: a consistent snapshot of the live store, written to a file. */
export interface SnapshotSource {
  readonly engine: StoreEngine;
  /** the store as it may be printed (no password) */
  readonly description: string;
  /** Writes the snapshot to `file` (which does not exist) and reads its facts from the same moment of the store. */
  snapshot(file: string, progress: Say | undefined): Promise<SnapshotFacts>;
}

/** The verifier key of a key file: a log.key (its public half) or a verifier key. */
function verifierKeyOfFile(file: string): string | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    const key = text.startsWith('PRIVATE+KEY+') ? parseSignerKey(text) : parseVerifierKey(text);
    return formatVerifierKey(key.name, key.publicKey);
  } catch {
    return null;
  }
}

export interface BackupOptions {
  /** the lab's store (sqlite-backup.ts, pg-backup.ts) */
  source: SnapshotSource;
  /** the archive to write; never overwritten */
  out: string;
  keys: KeyPlace[];
  /** copy the private keys into the archive (by default they are only listed) */
  includeKeys: boolean;
  progress?: Say;
  now?: () => number;
}

/** Writes a consistent backup of a store while its server may be running. */
export async function backupStore(options: BackupOptions): Promise<BackupManifest> {
  const { source, out } = options;
  if (existsSync(out)) throw new BackupRefused(`--out: ${out} exists; a backup never overwrites a file`);
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const work = `${out}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const entry = STORE_ENTRIES[source.engine];
  const snapshot = path.join(work, entry);
  try {
    options.progress?.(`backup: taking a snapshot of ${source.description}`);
    const createdAt = (options.now ?? Date.now)();
    const facts = await source.snapshot(snapshot, options.progress);
    const manifest = describeSnapshot(source.engine, facts, createdAt, options);
    manifest.store.bytes = statSync(snapshot).size;
    manifest.store.sha256 = await sha256File(snapshot);
    options.progress?.(
      `backup: snapshot of ${mib(manifest.store.bytes)}, log size ${manifest.log.size}, ${manifest.counts.batches} batches; writing ${out}`,
    );
    await writeArchive(`${work}.tar`, manifest, snapshot, options);
    // only a whole archive gets the name asked for
    const handle = await open(`${work}.tar`, 'r');
    await handle.sync();
    await handle.close();
    renameSync(`${work}.tar`, out);
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(`${work}.tar`, { force: true });
  }
}

function describeSnapshot(engine: StoreEngine, facts: SnapshotFacts, createdAt: number, options: BackupOptions): BackupManifest {
  const { latest } = facts;
  if (latest === undefined) throw new BackupRefused('the store has no signed checkpoint: it is not a lab store, or its server never started');
  const checkpoint = parseCheckpoint(parseNote(latest.note).text);
  const logKey = options.keys.find((k) => k.role === 'log');
  return {
    format: BACKUP_FORMAT,
    createdAt,
    store: {
      engine,
      entry: STORE_ENTRIES[engine],
      bytes: 0,
      sha256: '',
      migrations: facts.migrations,
      ...(facts.serverVersion === undefined ? {} : { serverVersion: facts.serverVersion }),
      ...(facts.dumpVersion === undefined ? {} : { dumpVersion: facts.dumpVersion }),
    },
    log: {
      origin: checkpoint.origin,
      size: checkpoint.size,
      root: toBase64(checkpoint.rootHash),
      checkpoint: latest.note,
      verifierKey: logKey === undefined ? null : verifierKeyOfFile(logKey.file),
    },
    counts: { logEntries: facts.logEntries, batches: facts.batches },
    keys: options.keys.map((k) => {
      const present = existsSync(k.file);
      if (!options.includeKeys || !present) return { role: k.role, file: k.file, present, included: false };
      const bytes = readFileSync(k.file);
      return {
        role: k.role,
        file: k.file,
        present,
        included: true,
        entry: `keys/${k.role}.key`,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      };
    }),
  };
}

async function writeArchive(file: string, manifest: BackupManifest, snapshot: string, options: BackupOptions): Promise<void> {
  const archive = tarPack();
  const written = pipeline(archive, createWriteStream(file, { mode: 0o600 }));
  const mtime = new Date(manifest.createdAt);
  const add = (name: string, body: Buffer, mode = 0o600): Promise<void> =>
    new Promise((resolve, reject) => archive.entry({ name, mode, mtime }, body, (err) => (err ? reject(err) : resolve())));
  try {
    await add(MANIFEST_ENTRY, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 0o644);
    const size = manifest.store.bytes;
    const shown = meter(options.progress, 'backup: writing', 'MiB');
    await new Promise<void>((resolve, reject) => {
      const entry = archive.entry({ name: manifest.store.entry, size, mode: 0o600, mtime }, (err) => (err ? reject(err) : resolve()));
      entry.on('error', () => undefined);
      let done = 0;
      const source = createReadStream(snapshot);
      source.on('data', (chunk) => {
        done += chunk.length;
        shown?.update(Math.floor(done / 1048576), Math.ceil(size / 1048576));
      });
      source.on('error', reject);
      source.pipe(entry);
    });
    shown?.finish(`backup: ${mib(size)} written`);
    for (const k of manifest.keys)
      if (k.included && k.entry !== undefined) {
        const place = options.keys.find((p) => p.role === k.role);
        if (place !== undefined) await add(k.entry, readFileSync(place.file));
      }
    archive.finalize();
  } catch (err) {
    archive.destroy(err as Error);
  }
  await written;
}

type LogRow = { idx: number; data: Uint8Array; leaf: Uint8Array };

/** The restored store's transparency log, as the checks read it (on either engine). */
export interface RestoredLog {
  /** every signed checkpoint, by size */
  checkpoints(): Promise<{ size: number; note: string }[]>;
  count(): Promise<number>;
  /** the entries by index */
  entries(): Iterable<LogRow> | AsyncIterable<LogRow>;
}

/** The restore's entry in the restored store's security events. */
export interface RestoreEvent {
  at: number;
  severity: 'notice' | 'alarm';
  detail: string;
}

/** One engine's side of a restore: a place that must hold no store, loaded from the archive's snapshot. */
export interface RestoreTarget {
  readonly engine: StoreEngine;
  /** the store as it may be printed (no password) */
  readonly description: string;
  /** Refuses (BackupRefused) when the place holds a store; nothing was changed then. */
  checkEmpty(): Promise<void>;
  /** the file the archive's store entry is written to (its bytes checked against the manifest's) */
  readonly entryFile: string;
  /** Loads the entry file: the store is then readable, not yet in place (or dropped again by discard). */
  load(manifest: BackupManifest, progress: Say | undefined): Promise<RestoredLog>;
  /** Records the restore in the restored store and puts it in place. */
  commit(event: RestoreEvent): Promise<void>;
  /** Removes what the restore wrote (`failed`: the store too; else only the work files). */
  finish(failed: boolean): Promise<void>;
}

export interface RestoreOptions {
  /** the backup archive */
  from: string;
  /** where the store goes (sqlite-backup.ts, pg-backup.ts): must hold no store */
  target: RestoreTarget;
  /** where the keys go, when the archive carries them (an existing key file is kept, and must be the same) */
  keys: KeyPlace[];
  /** the last checkpoint the lab published (a signed note), or undefined with `unpublished` */
  published: string | undefined;
  /** the operator states that no checkpoint of this log was ever published */
  unpublished: boolean;
  /** the log key to hold the checkpoints to; default the manifest's, or the archive's log.key */
  logKey: VerifierKey | undefined;
  /** restore even though the published checkpoint is larger than the restored log (an alarm is recorded) */
  acceptGap: boolean;
  progress?: Say;
  now?: () => number;
}

export interface RestoreReport {
  manifest: BackupManifest;
  log: { size: number; root: string; checkpoints: number };
  published: { size: number; root: string } | null;
  /** entries the lab published that the backup does not hold (published size - restored size), 0 when none */
  gap: number;
  keysWritten: KeyRole[];
}

/** Restores a backup into a place that holds no store, after checking its log; refuses or fails leaving nothing behind. */
export async function restoreStore(options: RestoreOptions): Promise<RestoreReport> {
  const { target } = options;
  if (options.published === undefined && !options.unpublished)
    throw new BackupRefused(
      'the last published checkpoint is needed (--checkpoint <file>: GET /api/log/checkpoint as an auditor, a witness or the supervisor saved it), or --unpublished',
    );
  await target.checkEmpty();
  try {
    const { manifest, keys } = await unpack(options.from, target, options.progress);
    const logKey = options.logKey ?? logKeyOf(manifest, keys);
    // the published checkpoint: the same log, signed by its key
    let p: Checkpoint | undefined;
    if (options.published !== undefined) {
      try {
        p = openCheckpoint(options.published, [ed25519NoteVerifier(logKey)]).checkpoint;
      } catch (err) {
        throw new BackupInvalid([`--checkpoint: not a checkpoint signed by the log key ${logKey.name}: ${(err as Error).message}`]);
      }
      if (p.origin !== manifest.log.origin)
        throw new BackupInvalid([`--checkpoint: a checkpoint of the log "${p.origin}", the backup is of "${manifest.log.origin}"`]);
    }
    const restored = await target.load(manifest, options.progress);
    const checked = await checkRestoredLog(restored, logKey, manifest, options.progress, p?.size);
    let published: RestoreReport['published'] = null;
    let gap = 0;
    if (p !== undefined) {
      published = { size: p.size, root: toBase64(p.rootHash) };
      if (p.size <= checked.size) {
        const root = checked.rootAt(p.size);
        if (root === undefined || !bytesEqual(root, p.rootHash))
          throw new BackupInvalid([
            `the restored log's root at size ${p.size} is not the published checkpoint's: the backup contradicts the history the lab published`,
          ]);
      } else {
        gap = p.size - checked.size;
        if (!options.acceptGap)
          throw new BackupRefused(
            `the lab published a checkpoint of size ${p.size}; the backup's log has ${checked.size} entries: the ${gap} entries after it would be lost and the log would fork. Restore a later backup, or accept the gap (--accept-gap: recorded as an alarm)`,
          );
      }
    }
    const keysWritten = placeKeys(options.keys, keys);
    await target.commit(restoreEvent(manifest, checked.size, published, gap, (options.now ?? Date.now)()));
    await target.finish(false);
    return { manifest, log: { size: checked.size, root: toBase64(checked.root), checkpoints: checked.checkpoints }, published, gap, keysWritten };
  } catch (err) {
    try {
      await target.finish(true);
    } catch (cleanup) {
      // the store could not be taken away again: say so, with why the restore failed
      throw new LabtraceError('E_STORE', `${(err as Error).message}\nand then: ${(cleanup as Error).message}`, { cause: err });
    }
    throw err;
  }
}

function logKeyOf(manifest: BackupManifest, keys: Map<KeyRole, Buffer>): VerifierKey {
  const included = keys.get('log');
  const text = manifest.log.verifierKey ?? (included === undefined ? undefined : included.toString('utf8').trim());
  if (text === undefined)
    throw new BackupRefused('the backup names no log key: give it (--log-key <verifier key>, as GET /api/log/checkpoint names it)');
  try {
    const key = text.startsWith('PRIVATE+KEY+') ? parseSignerKey(text) : parseVerifierKey(text);
    return { name: key.name, keyId: key.keyId, publicKey: key.publicKey };
  } catch (err) {
    throw new BackupInvalid([`manifest.json log.verifierKey: ${(err as Error).message.replace(/PRIVATE\+KEY\+\S*/g, 'PRIVATE+KEY+...')}`]);
  }
}

function parseManifest(bytes: Buffer): BackupManifest {
  let m: unknown;
  try {
    m = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new BackupInvalid([`manifest.json: not JSON (${(err as Error).message})`]);
  }
  const o = m as Partial<BackupManifest> | null;
  const bad = (field: string, problem: string): never => {
    throw new BackupInvalid([`manifest.json ${field}: ${problem}`]);
  };
  if (typeof o !== 'object' || o === null) return bad('', 'expected an object');
  if (o.format !== BACKUP_FORMAT) bad('format', `expected "${BACKUP_FORMAT}"`);
  const s = o.store;
  if (typeof s !== 'object' || s === null) return bad('store', 'expected an object');
  // a manifest of the first version names no engine: a SQLite store
  const engine = (s.engine as StoreEngine | undefined) ?? 'sqlite';
  if (!Object.hasOwn(STORE_ENTRIES, engine)) bad('store.engine', `expected one of ${Object.keys(STORE_ENTRIES).join(', ')}`);
  if (s.entry !== STORE_ENTRIES[engine]) bad('store.entry', `expected "${STORE_ENTRIES[engine]}"`);
  if (!Number.isSafeInteger(s?.bytes) || (s?.bytes ?? -1) < 0) bad('store.bytes', 'expected a byte count');
  if (typeof s?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) bad('store.sha256', 'expected 64 hex digits');
  const l = o.log;
  if (typeof l !== 'object' || l === null || typeof l.origin !== 'string' || !Number.isSafeInteger(l.size) || typeof l.checkpoint !== 'string')
    bad('log', 'expected {origin, size, root, checkpoint, verifierKey}');
  if (l?.verifierKey !== null && typeof l?.verifierKey !== 'string') bad('log.verifierKey', 'expected a verifier key or null');
  if (!Array.isArray(o.keys)) bad('keys', 'expected a list');
  if (!Number.isSafeInteger(o.createdAt)) bad('createdAt', 'expected ms since the epoch');
  return { ...o, store: { ...s, engine } } as BackupManifest;
}

/**
 * Reads the archive: the manifest first (a backup of the target's engine), the store into the target's entry file
 * (its size and SHA-256 held to the manifest's), the keys.
 */
async function unpack(
  from: string,
  target: RestoreTarget,
  progress: Say | undefined,
): Promise<{ manifest: BackupManifest; keys: Map<KeyRole, Buffer> }> {
  if (!existsSync(from)) throw new BackupRefused(`--from: ${from}: file not found`);
  const extract = tarExtract();
  const source = createReadStream(from);
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);
  let manifest: BackupManifest | undefined;
  let storeSeen = false;
  const keys = new Map<KeyRole, Buffer>();
  const readSmall = async (entry: AsyncIterable<unknown>, limit: number, name: string): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const piece of entry) {
      const chunk = piece as Buffer;
      n += chunk.length;
      if (n > limit) throw new BackupInvalid([`${name}: larger than ${limit} bytes`]);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  };
  try {
    for await (const entry of extract) {
      const name = entry.header.name;
      if (manifest === undefined) {
        if (name !== MANIFEST_ENTRY)
          throw new BackupInvalid([`${from}: not a labtrace backup (its first entry is "${name}", not ${MANIFEST_ENTRY})`]);
        manifest = parseManifest(await readSmall(entry, MAX_MANIFEST_BYTES, MANIFEST_ENTRY));
        if (manifest.store.engine !== target.engine)
          throw new BackupRefused(
            `${from} is a backup of a ${ENGINE_NAMES[manifest.store.engine]} store; the config puts the store in ${ENGINE_NAMES[target.engine]} (${target.description}): restore it into a ${ENGINE_NAMES[manifest.store.engine]} store (a SQLite lab moves into PostgreSQL with labtrace server migrate-store, once restored)`,
          );
        progress?.(
          `restore: a backup of the log "${manifest.log.origin}" at size ${manifest.log.size}, taken ${new Date(manifest.createdAt).toISOString()}`,
        );
        continue;
      }
      if (name === manifest.store.entry) {
        if (storeSeen) throw new BackupInvalid([`${name}: twice in the archive`]);
        storeSeen = true;
        const expected = manifest.store;
        const hash = createHash('sha256');
        const out = createWriteStream(target.entryFile, { mode: 0o600 });
        let done = 0;
        const shown = meter(progress, 'restore: reading', 'MiB');
        for await (const piece of entry as AsyncIterable<unknown>) {
          const chunk = piece as Buffer;
          hash.update(chunk);
          done += chunk.length;
          if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
          shown?.update(Math.floor(done / 1048576), Math.ceil(expected.bytes / 1048576));
        }
        shown?.finish(`restore: ${mib(done)} read`);
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        const sha = hash.digest('hex');
        if (done !== expected.bytes || sha !== expected.sha256)
          throw new BackupInvalid([
            `${name}: ${done} bytes with SHA-256 ${sha}; the manifest says ${expected.bytes} bytes with ${expected.sha256} (the archive is damaged)`,
          ]);
        continue;
      }
      const key = manifest.keys.find((k) => k.included && k.entry === name);
      if (key === undefined) {
        entry.resume();
        continue; // (an entry of a later version of the format; the manifest says what this one needs)
      }
      const bytes = await readSmall(entry, MAX_KEY_BYTES, name);
      if (createHash('sha256').update(bytes).digest('hex') !== key.sha256)
        throw new BackupInvalid([`${name}: not the key the manifest names (SHA-256)`]);
      keys.set(key.role, bytes);
    }
  } catch (err) {
    source.destroy();
    if (err instanceof LabtraceError) throw err;
    throw new BackupInvalid([`${from}: not a readable backup archive (${(err as Error).message})`]);
  }
  if (manifest === undefined) throw new BackupInvalid([`${from}: an empty archive`]);
  if (!storeSeen) throw new BackupInvalid([`${from}: the archive holds no ${manifest.store.entry}`]);
  for (const k of manifest.keys)
    if (k.included && !keys.has(k.role)) throw new BackupInvalid([`${k.entry ?? k.role}: named by the manifest, missing from the archive`]);
  return { manifest, keys };
}

interface CheckedLog {
  size: number;
  root: Uint8Array;
  checkpoints: number;
  /** the tree's root at a stored checkpoint's size or the published one's (undefined beyond the log) */
  rootAt(size: number): Uint8Array | undefined;
}

/**
 * The restored store's log: every entry's leaf hash, every stored checkpoint's root at its size, the latest one
 * signed by the log key and the manifest's. Throws BackupInvalid naming every problem (the first ten of a kind).
 */
async function checkRestoredLog(
  log: RestoredLog,
  logKey: VerifierKey,
  manifest: BackupManifest,
  progress: Say | undefined,
  publishedSize: number | undefined,
): Promise<CheckedLog> {
  const problems: string[] = [];
  let checkpoints: { size: number; note: string }[];
  let total: number;
  try {
    checkpoints = await log.checkpoints();
    total = await log.count();
  } catch (err) {
    throw new BackupInvalid([`${manifest.store.entry}: not a lab store (${(err as Error).message})`]);
  }
  const latest = checkpoints.at(-1);
  if (latest === undefined) throw new BackupInvalid([`${manifest.store.entry}: no signed checkpoint`]);
  try {
    openCheckpoint(latest.note, [ed25519NoteVerifier(logKey)]);
  } catch (err) {
    problems.push(`the latest checkpoint (size ${latest.size}) is not signed by the log key ${logKey.name}: ${(err as Error).message}`);
  }
  if (latest.note !== manifest.log.checkpoint) problems.push("the store's latest checkpoint is not the one the manifest names");
  const want = new Map<number, Uint8Array | undefined>();
  for (const c of checkpoints) {
    try {
      want.set(c.size, parseCheckpoint(parseNote(c.note).text).rootHash);
    } catch (err) {
      if (problems.length < 20) problems.push(`the checkpoint at size ${c.size} is malformed: ${(err as Error).message}`);
    }
  }
  const roots = new Map<number, Uint8Array>();
  const tree = new CompactTree();
  const keep = (): void => {
    if (want.has(tree.size) || tree.size === publishedSize) roots.set(tree.size, tree.root());
  };
  keep();
  const shown = meter(progress, 'restore: checking the log', 'entries');
  let leafProblems = 0;
  for await (const row of log.entries()) {
    if (row.idx !== tree.size) {
      problems.push(`the log's entries skip from index ${tree.size - 1} to ${row.idx}`);
      break;
    }
    const leaf = leafHash(row.data);
    if (!bytesEqual(leaf, row.leaf) && leafProblems++ < 10) problems.push(`entry ${row.idx}: the stored leaf hash is not the hash of its data`);
    tree.append(leaf);
    keep();
    if ((tree.size & 1023) === 0) shown?.update(tree.size, total);
  }
  shown?.finish(`restore: checked the log: ${tree.size} entries, ${checkpoints.length} checkpoints`);
  let mismatches = 0;
  for (const [size, claimed] of want) {
    const root = roots.get(size);
    if (root === undefined) problems.push(`a checkpoint has size ${size}, beyond the log's ${tree.size} entries`);
    else if (claimed !== undefined && !bytesEqual(root, claimed) && mismatches++ < 10)
      problems.push(`the checkpoint at size ${size} says another root than the log's entries give at that size`);
  }
  if (problems.length > 0) throw new BackupInvalid(problems);
  const root = tree.root();
  return {
    size: tree.size,
    root,
    checkpoints: checkpoints.length,
    rootAt: (size) => (size === tree.size ? root : roots.get(size)),
  };
}

/** Writes the archive's keys where the server reads them; an existing key file is kept, and must be the same key. */
function placeKeys(places: KeyPlace[], keys: Map<KeyRole, Buffer>): KeyRole[] {
  const written: KeyRole[] = [];
  const todo: { file: string; bytes: Buffer; role: KeyRole }[] = [];
  for (const [role, bytes] of keys) {
    const place = places.find((p) => p.role === role);
    if (place === undefined) continue;
    if (existsSync(place.file)) {
      if (!readFileSync(place.file).equals(bytes))
        throw new BackupRefused(`${place.file} holds another ${role} key than the backup's: a restore never replaces a key (move it away first)`);
      continue;
    }
    todo.push({ file: place.file, bytes, role });
  }
  for (const k of todo) {
    mkdirSync(path.dirname(k.file), { recursive: true });
    writeFileSync(k.file, k.bytes, { mode: 0o600, flag: 'wx' });
    written.push(k.role);
  }
  return written;
}

/** The restore, as the restored store's security events record it: a notice, or an alarm when entries the lab published are gone. */
function restoreEvent(manifest: BackupManifest, size: number, published: RestoreReport['published'], gap: number, at: number): RestoreEvent {
  const taken = new Date(manifest.createdAt).toISOString();
  const detail =
    published === null
      ? `the store was restored from a backup taken ${taken} (log size ${size}); no published checkpoint was given to check it against`
      : gap > 0
        ? `the store was restored from a backup taken ${taken} (log size ${size}); the lab had published a checkpoint of size ${published.size}: ${gap} published log entries are lost, and the log's next checkpoints fork from the published one`
        : `the store was restored from a backup taken ${taken} (log size ${size}), consistent with the published checkpoint of size ${published.size}`;
  return { at, severity: published === null || gap > 0 ? 'alarm' : 'notice', detail };
}
