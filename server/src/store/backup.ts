// Online backup and restore of a SQLite lab (`labtrace server backup` / `restore`, backup-cli.ts).
//
// A backup is a tar archive: manifest.json first (format labtrace-backup/v1: when, the store's size and SHA-256, its
// schema, the log's latest signed checkpoint, the keys the lab needs), then labtrace.sqlite, a consistent snapshot
// taken with VACUUM INTO while the server goes on writing (a WAL reader: it neither blocks nor waits for the
// writer), and the private keys under keys/ only when asked (--include-keys): by default they are listed, not copied.
//
// A restore never overwrites a store: it writes into a place that holds none. Before the restored file is put in
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
import Database from 'better-sqlite3';
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
const STORE_ENTRY = 'labtrace.sqlite';
const MANIFEST_ENTRY = 'manifest.json';
/** a manifest larger than this is no manifest of ours */
const MAX_MANIFEST_BYTES = 1 << 20;
/** a key file larger than this is no key */
const MAX_KEY_BYTES = 64 << 10;

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
  store: { engine: 'sqlite'; entry: string; bytes: number; sha256: string; migrations: string[] };
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

const meter = (say: Say | undefined, what: string, unit: string): Progress | undefined => (say === undefined ? undefined : new Progress(what, unit));

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
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
  /** the lab's SQLite store */
  storeFile: string;
  /** the archive to write; never overwritten */
  out: string;
  keys: KeyPlace[];
  /** copy the private keys into the archive (by default they are only listed) */
  includeKeys: boolean;
  progress?: Say;
  now?: () => number;
}

/** Writes a consistent backup of a SQLite store while its server may be running. */
export async function backupStore(options: BackupOptions): Promise<BackupManifest> {
  const { storeFile, out } = options;
  if (!existsSync(storeFile)) throw new BackupRefused(`the store ${storeFile} does not exist`);
  if (existsSync(out)) throw new BackupRefused(`--out: ${out} exists; a backup never overwrites a file`);
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  const work = `${out}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const snapshot = path.join(work, STORE_ENTRY);
  try {
    options.progress?.(`backup: taking a snapshot of ${storeFile} (${mib(statSync(storeFile).size)})`);
    const createdAt = (options.now ?? Date.now)();
    const live = new Database(storeFile, { readonly: true, fileMustExist: true });
    try {
      live.pragma('busy_timeout = 30000');
      // one read transaction: the snapshot is the store as of one commit, whatever the server writes meanwhile
      live.prepare('VACUUM INTO ?').run(snapshot);
    } finally {
      live.close();
    }
    const manifest = describeSnapshot(snapshot, createdAt, options);
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

function describeSnapshot(snapshot: string, createdAt: number, options: BackupOptions): BackupManifest {
  const db = new Database(snapshot, { readonly: true, fileMustExist: true });
  try {
    const hasTable = (name: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
    const migrations = hasTable('kysely_migration') ? db.prepare<[], string>('SELECT name FROM kysely_migration ORDER BY name').pluck().all() : [];
    const latest = hasTable('log_checkpoints')
      ? (db.prepare('SELECT size, note FROM log_checkpoints ORDER BY size DESC LIMIT 1').get() as { size: number; note: string } | undefined)
      : undefined;
    if (latest === undefined) throw new BackupRefused('the store has no signed checkpoint: it is not a lab store, or its server never started');
    const checkpoint = parseCheckpoint(parseNote(latest.note).text);
    const logEntries = db.prepare<[], number>('SELECT COUNT(*) FROM log_entries').pluck().get() ?? 0;
    const batches = hasTable('batch_headers') ? (db.prepare<[], number>('SELECT COUNT(*) FROM batch_headers').pluck().get() ?? 0) : 0;
    const logKey = options.keys.find((k) => k.role === 'log');
    return {
      format: BACKUP_FORMAT,
      createdAt,
      store: { engine: 'sqlite', entry: STORE_ENTRY, bytes: statSync(snapshot).size, sha256: '', migrations },
      log: {
        origin: checkpoint.origin,
        size: checkpoint.size,
        root: toBase64(checkpoint.rootHash),
        checkpoint: latest.note,
        verifierKey: logKey === undefined ? null : verifierKeyOfFile(logKey.file),
      },
      counts: { logEntries, batches },
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
  } finally {
    db.close();
  }
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
      const entry = archive.entry({ name: STORE_ENTRY, size, mode: 0o600, mtime }, (err) => (err ? reject(err) : resolve()));
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

export interface RestoreOptions {
  /** the backup archive */
  from: string;
  /** where the store goes: must hold no store */
  storeFile: string;
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
  const { storeFile } = options;
  for (const f of [storeFile, `${storeFile}-wal`])
    if (existsSync(f) && statSync(f).size > 0)
      throw new BackupRefused(`${f} exists: a restore never overwrites a store (stop its server and move it away first)`);
  if (options.published === undefined && !options.unpublished)
    throw new BackupRefused(
      'the last published checkpoint is needed (--checkpoint <file>: GET /api/log/checkpoint as an auditor, a witness or the supervisor saved it), or --unpublished',
    );
  mkdirSync(path.dirname(storeFile), { recursive: true });
  const staging = `${storeFile}.restoring`;
  rmSync(staging, { force: true });
  try {
    const { manifest, keys } = await unpack(options.from, staging, options.progress);
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
    const checked = checkRestoredLog(staging, logKey, manifest, options.progress, p?.size);
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
    recordRestore(staging, manifest, checked.size, published, gap, (options.now ?? Date.now)());
    renameSync(staging, storeFile);
    return { manifest, log: { size: checked.size, root: toBase64(checked.root), checkpoints: checked.checkpoints }, published, gap, keysWritten };
  } finally {
    rmSync(staging, { force: true });
    rmSync(`${staging}-wal`, { force: true });
    rmSync(`${staging}-shm`, { force: true });
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
  if (typeof s !== 'object' || s === null || s.entry !== STORE_ENTRY) bad('store.entry', `expected "${STORE_ENTRY}"`);
  if (!Number.isSafeInteger(s?.bytes) || (s?.bytes ?? -1) < 0) bad('store.bytes', 'expected a byte count');
  if (typeof s?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) bad('store.sha256', 'expected 64 hex digits');
  const l = o.log;
  if (typeof l !== 'object' || l === null || typeof l.origin !== 'string' || !Number.isSafeInteger(l.size) || typeof l.checkpoint !== 'string')
    bad('log', 'expected {origin, size, root, checkpoint, verifierKey}');
  if (l?.verifierKey !== null && typeof l?.verifierKey !== 'string') bad('log.verifierKey', 'expected a verifier key or null');
  if (!Array.isArray(o.keys)) bad('keys', 'expected a list');
  if (!Number.isSafeInteger(o.createdAt)) bad('createdAt', 'expected ms since the epoch');
  return o as BackupManifest;
}

/** Reads the archive: the manifest first, the store into `staging` (its size and SHA-256 held to the manifest's), the keys. */
async function unpack(from: string, staging: string, progress: Say | undefined): Promise<{ manifest: BackupManifest; keys: Map<KeyRole, Buffer> }> {
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
        progress?.(
          `restore: a backup of the log "${manifest.log.origin}" at size ${manifest.log.size}, taken ${new Date(manifest.createdAt).toISOString()}`,
        );
        continue;
      }
      if (name === STORE_ENTRY) {
        if (storeSeen) throw new BackupInvalid([`${STORE_ENTRY}: twice in the archive`]);
        storeSeen = true;
        const expected = manifest.store;
        const hash = createHash('sha256');
        const out = createWriteStream(staging, { mode: 0o600 });
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
            `${STORE_ENTRY}: ${done} bytes with SHA-256 ${sha}; the manifest says ${expected.bytes} bytes with ${expected.sha256} (the archive is damaged)`,
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
  if (!storeSeen) throw new BackupInvalid([`${from}: the archive holds no ${STORE_ENTRY}`]);
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
function checkRestoredLog(
  file: string,
  logKey: VerifierKey,
  manifest: BackupManifest,
  progress: Say | undefined,
  publishedSize: number | undefined,
): CheckedLog {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const problems: string[] = [];
  try {
    try {
      db.prepare('SELECT 1 FROM log_entries LIMIT 1').get();
    } catch (err) {
      throw new BackupInvalid([`${STORE_ENTRY}: not a lab store (${(err as Error).message})`]);
    }
    const checkpoints = db.prepare('SELECT size, note FROM log_checkpoints ORDER BY size').all() as { size: number; note: string }[];
    const latest = checkpoints.at(-1);
    if (latest === undefined) throw new BackupInvalid([`${STORE_ENTRY}: no signed checkpoint`]);
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
    const total = db.prepare<[], number>('SELECT COUNT(*) FROM log_entries').pluck().get() ?? 0;
    const roots = new Map<number, Uint8Array>();
    const tree = new CompactTree();
    const keep = (): void => {
      if (want.has(tree.size) || tree.size === publishedSize) roots.set(tree.size, tree.root());
    };
    keep();
    const shown = meter(progress, 'restore: checking the log', 'entries');
    let leafProblems = 0;
    for (const row of db.prepare('SELECT idx, data, leaf FROM log_entries ORDER BY idx').iterate() as IterableIterator<{
      idx: number;
      data: Buffer;
      leaf: Buffer;
    }>) {
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
  } finally {
    db.close();
  }
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

/** The restore, in the restored store's security events: a notice, or an alarm when entries the lab published are gone. */
function recordRestore(file: string, manifest: BackupManifest, size: number, published: RestoreReport['published'], gap: number, at: number): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    const taken = new Date(manifest.createdAt).toISOString();
    const detail =
      published === null
        ? `the store was restored from a backup taken ${taken} (log size ${size}); no published checkpoint was given to check it against`
        : gap > 0
          ? `the store was restored from a backup taken ${taken} (log size ${size}); the lab had published a checkpoint of size ${published.size}: ${gap} published log entries are lost, and the log's next checkpoints fork from the published one`
          : `the store was restored from a backup taken ${taken} (log size ${size}), consistent with the published checkpoint of size ${published.size}`;
    const severity = published === null || gap > 0 ? 'alarm' : 'notice';
    db.prepare(
      'INSERT INTO security_events (at, gateway, kind, severity, batch, detail, last_at, address, client) VALUES (?, ?, ?, ?, NULL, ?, ?, NULL, NULL)',
    ).run(at, '', 'store-restored', severity, detail, at);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}
