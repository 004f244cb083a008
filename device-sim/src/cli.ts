// `labtrace sim [--config file]`: serves the simulated instruments until stopped.
// `labtrace sim fault <instrument> <kind> ...`: injects a fault into a running simulator, through its control API.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatPath, LabtraceError } from '@labtrace/protocols';
import { loadSimConfig } from './config.js';
import { FAULT_KINDS, FAULT_VALUE_FIELD, faultSchema, type FaultKind } from './faults.js';
import { createLogger } from './log.js';
import { FileDropper, RESULT_FILE_KINDS, type ResultFileKind } from './result-files.js';
import { Simulator } from './simulator.js';

export const DEFAULT_SIM_CONFIG = fileURLToPath(new URL('../../profiles/sim.yaml', import.meta.url));
/** The control API of the default sim.yaml. */
export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:5080';

export const usage = `usage: labtrace sim [--config <sim.yaml>]
       labtrace sim fault <instrument> <kind> [--value <v>] [--count <k>] [--channels <a,b>] [--control <url>]
       labtrace sim fault <instrument> clear [<kind>] [--control <url>]
       labtrace sim drop-files --folder <dir> [--count <n>] [--rows <r>] [--rate <files/s>] [--kind good|half-written|malformed]
                               [--write-ms <ms>] [--decimal-comma] [--zone <tz>] [--first <n>]

  Serves simulated instruments: Modbus TCP, Modbus RTU on a serial line or over TCP, and MQTT
  publishers (default config: the climate chamber and the universal testing machine of
  device-sim/profiles).

  fault kinds (--value):
    no-answer                requests are swallowed (MQTT: nothing is published)
    slow --value <ms>        replies leave late, with their original transaction id
    exception --value <code> every request gets exception <code> (6: busy); --count <k>: only the next k
    disconnect --value <ms>  drops every connection now and refuses new ones for <ms>
    stuck                    values freeze
    noise --value <a>        gaussian noise of standard deviation <a> on numeric channels (--channels to choose)
    drift --value <r>        linear drift of <r> units per second (--channels to choose)
    wrong-byte-order         32- and 64-bit values served with their words swapped
    overload, underload, busy  a balance answers with that state (SCPI: overload is 9.9E37)
    error-reply [--count <k>]  a balance answers with an error (ES, EL; SBI Err 101)
    garbage [--count <k>]    a balance or SCPI instrument answers with a line of noise
    error-queue --value <code>  a SCPI instrument logs <code> in its error queue at each query; --count <k>: the next k
  Several kinds may be active at once; setting a kind again replaces it.
  drop-files: an instrument PC writing CSV result files (Time, Force [kN], Elongation [mm]) into a folder:
  --count files (default 1) of --rows rows (default 10) at --rate files per second (default 1); --kind
  half-written writes each file in 4 pieces over --write-ms (default 2000), malformed puts a line that is
  not a number in each; prints one JSON line per file once it is complete (name, rows, sha256).
  --control: the simulator's control API (default ${DEFAULT_CONTROL_URL}, as in the default sim.yaml).`;

export async function main(argv: string[]): Promise<{ stop(): Promise<void> }> {
  if (argv[0] === 'drop-files') return dropFiles(argv.slice(1));
  if (argv[0] === 'fault') {
    process.stdout.write(`${await faultCommand(argv.slice(1))}\n`);
    return { stop: () => Promise.resolve() };
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const file = path.resolve(values.config ?? DEFAULT_SIM_CONFIG);
  const { config, instruments } = await loadSimConfig(file);
  const logger = createLogger('sim');
  const simulator = new Simulator({ config, instruments, logger });
  await simulator.start();
  return simulator;
}

/** `drop-files ...`: writes result files; stop() ends early. */
export async function dropFiles(argv: string[], write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<FileDropper> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        folder: { type: 'string' },
        count: { type: 'string', default: '1' },
        rows: { type: 'string', default: '10' },
        rate: { type: 'string', default: '1' },
        kind: { type: 'string', default: 'good' },
        'write-ms': { type: 'string', default: '2000' },
        'decimal-comma': { type: 'boolean', default: false },
        zone: { type: 'string', default: 'UTC' },
        first: { type: 'string', default: '1' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  if (values.folder === undefined) throw new LabtraceError('E_CONFIG', `--folder: required\n${usage}`);
  const kind = values.kind;
  if (!(RESULT_FILE_KINDS as readonly string[]).includes(kind))
    throw new LabtraceError('E_CONFIG', `--kind: expected one of ${RESULT_FILE_KINDS.join(', ')}`);
  const number = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new LabtraceError('E_CONFIG', `--${name}: expected a number, got ${JSON.stringify(text)}`);
    return n;
  };
  const dropper = new FileDropper({
    folder: path.resolve(values.folder),
    count: number('count', values.count),
    rows: number('rows', values.rows),
    rate: number('rate', values.rate),
    kind: kind as ResultFileKind,
    writeMs: number('write-ms', values['write-ms']),
    style: { decimalComma: values['decimal-comma'], zone: values.zone },
    first: number('first', values.first),
    onFile: (file) => write(JSON.stringify(file)),
  });
  await dropper.start();
  return dropper;
}

/** Runs `fault <instrument> <kind> ...` against a control API; returns the instrument's active faults as JSON. */
export async function faultCommand(argv: string[], fetchImpl: typeof fetch = fetch): Promise<string> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        value: { type: 'string' },
        count: { type: 'string' },
        channels: { type: 'string' },
        control: { type: 'string', default: DEFAULT_CONTROL_URL },
      },
    });
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const { values, positionals } = parsed;
  const [instrument, kind, clearKind, ...extra] = positionals;
  if (instrument === undefined || kind === undefined) throw new LabtraceError('E_CONFIG', `fault: needs an instrument and a kind\n${usage}`);
  if (extra.length > 0 || (clearKind !== undefined && kind !== 'clear')) {
    throw new LabtraceError('E_CONFIG', `fault: unexpected argument "${extra[0] ?? clearKind ?? ''}"\n${usage}`);
  }
  let base: URL;
  try {
    base = new URL(values.control);
  } catch {
    throw new LabtraceError('E_CONFIG', `--control: "${values.control}" is not a URL such as ${DEFAULT_CONTROL_URL}`);
  }
  const at = new URL(`instruments/${encodeURIComponent(instrument)}/fault`, base.href.endsWith('/') ? base : `${base.href}/`);

  let request: { method: string; body?: string };
  if (kind === 'clear') {
    if (clearKind !== undefined && !isFaultKind(clearKind))
      throw new LabtraceError('E_CONFIG', `fault clear: no kind "${clearKind}"; expected one of ${FAULT_KINDS.join(', ')}`);
    if (clearKind !== undefined) at.pathname += `/${clearKind}`;
    request = { method: 'DELETE' };
  } else {
    if (!isFaultKind(kind)) throw new LabtraceError('E_CONFIG', `fault: no kind "${kind}"; expected one of ${FAULT_KINDS.join(', ')} or clear`);
    request = { method: 'PUT', body: JSON.stringify(faultBody(kind, values)) };
  }

  let res: Response;
  try {
    res = await fetchImpl(at, {
      method: request.method,
      headers: { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(5000),
      ...(request.body === undefined ? {} : { body: request.body }),
    });
  } catch (err) {
    throw new LabtraceError(
      'E_CONFIG',
      `cannot reach the simulator control API at ${base.href} (is 'labtrace sim' running? see --control): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const body = (await res.json().catch(() => ({}))) as { error?: string; issues?: { path: string; message: string }[]; faults?: unknown };
  if (!res.ok) {
    const issues = (body.issues ?? []).map((i) => `\n  ${i.path}: ${i.message}`).join('');
    throw new LabtraceError(res.status === 404 ? 'E_NOT_FOUND' : 'E_BAD_REQUEST', `${body.error ?? `HTTP ${res.status}`}${issues}`);
  }
  return JSON.stringify({ instrument, faults: body.faults ?? [] });
}

function isFaultKind(kind: string): kind is FaultKind {
  return (FAULT_KINDS as readonly string[]).includes(kind);
}

/** The request body for a kind, from --value, --count and --channels, checked by the same schema as the API. */
function faultBody(kind: FaultKind, values: { value?: string | undefined; count?: string | undefined; channels?: string | undefined }): unknown {
  const field = FAULT_VALUE_FIELD[kind];
  const body: Record<string, unknown> = { kind };
  if (field === undefined) {
    if (values.value !== undefined) throw new LabtraceError('E_CONFIG', `fault ${kind}: takes no --value`);
  } else {
    if (values.value === undefined) throw new LabtraceError('E_CONFIG', `fault ${kind}: needs --value <${field}>`);
    body[field] = toNumber(values.value, '--value');
  }
  if (values.count !== undefined) body['count'] = toNumber(values.count, '--count');
  if (values.channels !== undefined) body['channels'] = values.channels.split(',').filter(Boolean);
  const parsed = faultSchema.safeParse(body);
  if (!parsed.success) {
    const option: Record<string, string> = { [field ?? '']: '--value', count: '--count', channels: '--channels' };
    const problems = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      return `${option[key] ?? formatPath(i.path)}: ${i.message}`;
    });
    throw new LabtraceError('E_CONFIG', `fault ${kind}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

function toNumber(text: string, option: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new LabtraceError('E_CONFIG', `${option}: "${text}" is not a number`);
  return n;
}
