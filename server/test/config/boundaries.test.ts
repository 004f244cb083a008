// The configuration reaches no store and no workflow code. Each module's section of server.yaml has a schema-only
// file (`config.ts` in the module's folder, or `<name>-config.ts`), and server/src/config.ts composes them. Whatever
// imports the config (the broker, ingest, the CLI) must not load the lab's workflows or open the store through it.
// The rule is checked on the compiled import graph (the .js files tsc wrote, so type-only imports do not count).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@jest/globals';
import ts from 'typescript';

/** the compiled sources (server/dist/src) */
const DIST = fileURLToPath(new URL('../../src/', import.meta.url));
/** the TypeScript sources (server/src): the list of files, so that a stale .js left in dist counts for nothing */
const SOURCES = fileURLToPath(new URL('../../../src/', import.meta.url));

const rel = (file: string) => path.relative(DIST, file).split(path.sep).join('/');

function sourceFiles(dir = SOURCES): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** a module's config file: `config.ts` or `<name>-config.ts` */
const isConfigFile = (file: string) => /^(?:[a-z0-9]+-)*config\.js$/.test(path.basename(file));

/** the compiled file of every source file, by its path under dist/src */
const compiled = sourceFiles().map((file) => path.join(DIST, path.relative(SOURCES, file)).replace(/\.ts$/, '.js'));
const configFiles = compiled.filter(isConfigFile);

const importCache = new Map<string, string[]>();
/** the specifiers a compiled file imports or re-exports (static and dynamic), as TypeScript's own scanner reads them */
function importsOf(file: string): string[] {
  let specifiers = importCache.get(file);
  if (specifiers === undefined) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    specifiers = info.importedFiles.map((f) => f.fileName);
    importCache.set(file, specifiers);
  }
  return specifiers;
}

const isRelative = (specifier: string) => specifier.startsWith('./') || specifier.startsWith('../');

/** every compiled file `start` loads, each with the chain of imports that leads to it */
function reach(start: string): Map<string, string[]> {
  const seen = new Map<string, string[]>([[start, [rel(start)]]]);
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const specifier of importsOf(file).filter(isRelative)) {
      const target = path.resolve(path.dirname(file), specifier);
      if (seen.has(target)) continue;
      seen.set(target, [...seen.get(file)!, rel(target)]);
      queue.push(target);
    }
  }
  return seen;
}

/** the only packages a config file may import: zod, the protocols package, Node's built-ins */
const allowedPackage = (specifier: string) =>
  specifier === 'zod' || specifier === '@labtrace/protocols' || specifier.startsWith('@labtrace/protocols/') || specifier.startsWith('node:');

/** reads a secret from a file or a variable (Node's built-ins and the protocols package only; checked below) */
const SECRET_READER = 'secret-env.js';
const isSecretReader = (specifier: string) => path.basename(specifier) === SECRET_READER;

/** the config files of processes of their own (witness.yaml, supervisor.yaml): not sections of server.yaml */
const OWN_PROCESS_CONFIGS = ['witness/config.js', 'supervisor/config.js'];

const dist = (file: string) => path.join(DIST, file);

test('the walker follows the compiled imports (it sees the server load the workflows and the store)', () => {
  const fromServer = reach(dist('server.js'));
  for (const file of ['lab/accreditation.js', 'lab/runs.js', 'store/database.js', 'auth/users.js', 'ingest/ingest.js'])
    expect(fromServer.has(dist(file))).toBe(true);
  // the root config and a module's own config file are found by name
  expect(configFiles.map(rel)).toEqual(expect.arrayContaining(['config.js', 'broker/config.js', 'lab/accreditation-config.js']));
});

test('a config file imports only zod, the protocols package, Node built-ins and other config files', () => {
  const offences: string[] = [];
  for (const file of configFiles) {
    for (const specifier of importsOf(file)) {
      const ok = isRelative(specifier) ? isConfigFile(specifier) || isSecretReader(specifier) : allowedPackage(specifier);
      if (!ok) offences.push(`${rel(file)} imports ${specifier}`);
    }
  }
  expect(offences).toEqual([]);
});

test('the root config composes every module config file and reaches nothing else', () => {
  const fromRoot = reach(dist('config.js'));
  const beyond = [...fromRoot].filter(([file]) => !isConfigFile(file) && !isSecretReader(file)).map(([, chain]) => chain.join(' -> '));
  expect(beyond).toEqual([]);
  // a module config file the root does not compose would be a section server.yaml cannot have
  expect(configFiles.filter((file) => !fromRoot.has(file) && !OWN_PROCESS_CONFIGS.includes(rel(file))).map(rel)).toEqual([]);
});

test("another process's config reaches config files and the secret reader only, and the secret reader nothing of the lab", () => {
  for (const own of OWN_PROCESS_CONFIGS) {
    const beyond = [...reach(dist(own))].filter(([file]) => !isConfigFile(file) && !isSecretReader(file)).map(([, chain]) => chain.join(' -> '));
    expect(beyond).toEqual([]);
  }
  expect(importsOf(dist(SECRET_READER)).filter((specifier) => !allowedPackage(specifier))).toEqual([]);
});

test('the broker and ingest reach no lab module, no user store and no database through a config file', () => {
  const starts = compiled.filter((file) => /^(broker|ingest)\//.test(rel(file)));
  expect(starts.map(rel)).toEqual(expect.arrayContaining(['broker/broker.js', 'broker/config.js', 'ingest/ingest.js', 'ingest/config.js']));
  const forbidden = (file: string) =>
    (rel(file).startsWith('lab/') && !isConfigFile(file)) || ['store/database.js', 'auth/users.js'].includes(rel(file));
  const offences = new Set<string>();
  for (const start of starts) {
    const reached = reach(start);
    // every config file they load, directly or not, and what that config file brings in
    for (const [config, toConfig] of reached) {
      if (!isConfigFile(config)) continue;
      for (const [file, chain] of reach(config)) if (forbidden(file)) offences.add([...toConfig, ...chain.slice(1)].join(' -> '));
    }
  }
  expect([...offences]).toEqual([]);
});
