// Every DCC is checked against the official PTB schema before it is issued: DCC 3.3.0 (dcc.xsd) with the D-SI
// 2.2.1 schema it imports (SI_Format.xsd) and W3C XML Signature (xmldsig-core-schema.xsd), kept in
// server/schemas/dcc (README.md there: sources, versions, licences, the one change made to them). The check runs
// libxml2's own schema validator, compiled to WebAssembly (xmllint-wasm), in a worker thread: no native build and
// no system package. It fails closed: a DCC that does not validate, or a check that cannot run, is never issued.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabtraceError } from '@labtrace/protocols';
import { memoryPages, validateXML } from 'xmllint-wasm';

export const DCC_SCHEMA_VERSION = '3.3.0';
export const DCC_SCHEMA_DIR = fileURLToPath(new URL('../../../schemas/dcc/', import.meta.url));
const MAIN = 'dcc.xsd';
/** what dcc.xsd imports, by the local names its schemaLocation attributes were rewritten to */
const IMPORTED = ['SI_Format.xsd', 'quantitykind.xsd', 'xmldsig-core-schema.xsd'] as const;
/** the most schema errors a refusal names */
const SHOWN = 5;

interface SchemaFiles {
  main: { fileName: string; contents: string };
  imported: { fileName: string; contents: string }[];
}
const loaded = new Map<string, Promise<SchemaFiles>>();

function schemaFiles(dir: string): Promise<SchemaFiles> {
  let files = loaded.get(dir);
  if (files === undefined) {
    files = (async () => {
      const read = async (fileName: string) => {
        try {
          return { fileName, contents: await readFile(path.join(dir, fileName), 'utf8') };
        } catch (err) {
          throw new Error(`the schema file ${fileName} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
        }
      };
      // one after the other, so that a missing file is named the same way every time
      const main = await read(MAIN);
      const imported = [];
      for (const file of IMPORTED) imported.push(await read(file));
      return { main, imported };
    })();
    loaded.set(dir, files);
    // a failed read is tried again next time (the files may be put back), not kept
    files.catch(() => loaded.delete(dir));
  }
  return files;
}

/**
 * The schema errors of a DCC XML, each "line <n>: <message>" (none when it is valid); throws when the check cannot
 * run. `dir` holds the schema files (the shipped ones unless told).
 */
export async function dccSchemaErrors(xml: Uint8Array, dir: string = DCC_SCHEMA_DIR): Promise<string[]> {
  const files = await schemaFiles(dir);
  const result = await validateXML({
    xml: [{ fileName: 'dcc.xml', contents: xml }],
    schema: [files.main],
    preload: files.imported,
    maxMemoryPages: 64 * memoryPages.MiB,
  });
  if (result.valid) return [];
  // each error with its line; a parser error's echo of the offending text and its caret line are left out
  const errors = result.errors
    .filter((e) => e.loc !== null && Number.isFinite(e.loc.lineNumber))
    .map((e) => `line ${e.loc?.lineNumber}: ${e.message.replace(/^.*?error : /, '')}`);
  // a document that fails without a located error still fails
  return errors.length > 0 ? errors : [result.rawOutput.trim() || 'not valid'];
}

/**
 * Refuses (E_CONFLICT, naming the schema errors) a DCC that is not valid against the PTB DCC schema, and refuses
 * as well when the check itself cannot run (schema files missing, validator failing): nothing unchecked is issued.
 */
export async function assertValidDcc(xml: Uint8Array, certificate: string, dir: string = DCC_SCHEMA_DIR): Promise<void> {
  let errors: string[];
  try {
    errors = await dccSchemaErrors(xml, dir);
  } catch (err) {
    throw new LabtraceError(
      'E_CONFLICT',
      `certificate ${certificate} cannot be issued: its DCC XML could not be checked against the PTB DCC ${DCC_SCHEMA_VERSION} schema (${(err as Error).message})`,
    );
  }
  if (errors.length === 0) return;
  const more = errors.length > SHOWN ? `; and ${errors.length - SHOWN} more` : '';
  throw new LabtraceError(
    'E_CONFLICT',
    `certificate ${certificate} cannot be issued: its DCC XML is not valid against the PTB DCC ${DCC_SCHEMA_VERSION} schema: ${errors.slice(0, SHOWN).join('; ')}${more}`,
  );
}
