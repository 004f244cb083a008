// Parses the text of a YAML or JSON configuration file and validates it, naming the file in every error.
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { LabtraceError, type LabtraceErrorCode } from './errors.js';
import { parseWith } from './validation.js';

export function parseConfigText<S extends z.ZodType>(text: string, source: string, schema: S, code: LabtraceErrorCode = 'E_CONFIG'): z.output<S> {
  let raw: unknown;
  try {
    // YAML 1.2 is a superset of JSON, so one parser reads both.
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line}, column ${err.linePos[0].col})` : '';
    const message = err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
    throw new LabtraceError(code, `${source}${where}: not valid YAML or JSON: ${message}`, { cause: err });
  }
  return parseWith(schema, raw ?? {}, source, code);
}
