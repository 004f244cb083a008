// `labtrace gateway [--config file]`: polls the configured instruments and publishes to the server.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { channelOf, LabtraceError, OPCUA_SECURITY_MODES, pointWidth } from '@labtrace/protocols';
import { loadGatewayConfig, loadGatewayIdentityConfig, loadProfileFile } from './config.js';
import { enroll, rotateKey } from './identity/enroll.js';
import { createIdentity, KEY_FILE } from './identity/identity.js';
import { useNodeCrypto } from '@labtrace/protocols/node';
import { describeLine } from './line/line-connection.js';
import { describe } from './modbus/link.js';
import { planReads } from './modbus/read-plan.js';
import { Gateway } from './gateway.js';
import { createLogger } from './log.js';

export const usage = `usage: labtrace gateway [--config <gateway.yaml>]
       labtrace gateway plan <profile.yaml>    prints the read requests a profile needs (a balance, SCPI or line instrument: what is
                                               asked and how replies are taken; result files: how files are taken, read and kept)
       labtrace gateway browse <opc.tcp://host:port> [--security-mode None|Sign|SignAndEncrypt] [--user <name> --password-file <file>] [--data-dir <dir>]
                                               browses a LADS-style OPC UA device (functional units, sensor
                                               functions, their variables and units) and prints a profile
                                               suggestion; --data-dir: where the gateway's OPC UA certificate
                                               and trust list are (default ./gateway-data)
       labtrace gateway init [--config <gateway.yaml>] [--force]
                                               creates the gateway's Ed25519 key pair in its data
                                               directory and prints the public key to register
       labtrace gateway enroll --server <url> (--token <token> | --token-file <file>) [--if-needed] [--config <gateway.yaml>]
                                               registers the key with a one-time token from a lab
                                               admin; writes the broker password to mqtt.passwordFile.
                                               --if-needed: creates the key when there is none, and does
                                               nothing when the key and mqtt.passwordFile exist already
       labtrace gateway rotate-key --server <url> [--config <gateway.yaml>]
                                               replaces the key; the old key signs the announcement
  Polls the instruments named in the config and publishes their samples to the server's broker.
  The MQTT password comes from mqtt.passwordFile or LABTRACE_GATEWAY_PASSWORD.`;

/** `gateway plan <profile>`: the requests the planner makes of a Modbus profile, as a table. */
export async function printPlan(file: string, write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<void> {
  const profile = await loadProfileFile(path.resolve(file));
  if (profile.protocol === 'balance') {
    const point = profile.points[0];
    const ask = profile.dialect === 'mt-sics' ? 'SI (send the weight now)' : 'ESC P (print)';
    write(`${profile.id}: ${profile.dialect === 'mt-sics' ? 'MT-SICS' : 'Sartorius SBI'} balance on ${describeLine(profile.connection)}`);
    if (profile.connection.transport === 'serial') {
      const c = profile.connection;
      write(`serial line: ${c.baudRate} baud, ${c.dataBits} data bits, parity ${c.parity}, ${c.stopBits} stop bit(s)`);
    }
    write(
      profile.mode === 'poll'
        ? `every ${profile.pollIntervalMs} ms: sends ${ask}, waits up to ${profile.timeoutMs} ms for the reply`
        : 'unsolicited: sends nothing, takes every line the balance prints (Print key or auto print)',
    );
    if (point !== undefined) {
      write(`    ${channelOf(point).padEnd(20)} weight [${point.unit}]: stable good, moving uncertain (unstable), another unit bad`);
    }
    write('overload, underload and error replies are bad with their reason; busy gives no sample; other lines count as invalid_reply');
    write(`commands that change the balance (zero, tare): ${profile.allowCommands.length === 0 ? 'none sent' : profile.allowCommands.join(', ')}`);
    return;
  }
  if (profile.protocol === 'scpi') {
    const { host, port } = profile.connection;
    write(`${profile.id}: SCPI instrument on tcp ${host}:${port}`);
    const idn = profile.idn;
    write(
      `at every connect: sends *IDN?, expects manufacturer "${idn.manufacturer}", model "${idn.model}"` +
        `${idn.serialNumber === undefined ? ' (any serial number)' : `, serial number "${idn.serialNumber}"`}; another instrument is not read`,
    );
    write(`every ${profile.pollIntervalMs} ms: ${profile.points.length} query(ies), one after the other, each waiting for its reply`);
    for (const p of profile.points) {
      write(`    ${channelOf(p).padEnd(20)} ${p.query.padEnd(24)} ${p.unit ? `[${p.unit}] ` : ''}timeout ${p.timeoutMs ?? profile.timeoutMs} ms`);
    }
    write(
      profile.errorQueue
        ? 'then SYST:ERR? until 0,"No error": errors are counted and reported, and that cycle\'s readings are uncertain'
        : 'the error queue is not read (errorQueue: false)',
    );
    write('9.9E37 is overload (bad); a reply that is no number is bad (invalid_reply); a timeout is bad, and the exchange is put back in step');
    return;
  }
  if (profile.protocol === 'line') {
    write(`${profile.id}: line instrument (generic dialect) on ${describeLine(profile.connection)}`);
    if (profile.connection.transport === 'serial') {
      const c = profile.connection;
      write(`serial line: ${c.baudRate} baud, ${c.dataBits} data bits, parity ${c.parity}, ${c.stopBits} stop bit(s)`);
    }
    write(
      profile.request === undefined
        ? 'unsolicited: sends nothing, reads every line the instrument prints'
        : `every ${profile.pollIntervalMs} ms: sends ${JSON.stringify(profile.request)}, waits up to ${profile.timeoutMs} ms for a line that matches`,
    );
    write(`pattern: /${profile.pattern}/`);
    for (const p of profile.points) {
      const transform = p.scale !== 1 || p.offset !== 0 ? ` × ${p.scale} + ${p.offset}` : '';
      write(`    ${channelOf(p).padEnd(20)} group ${p.group}${p.decimalComma ? ' (decimal comma)' : ''}${transform}${p.unit ? ` [${p.unit}]` : ''}`);
    }
    write("a line that does not match counts as invalid_reply; a group that holds no number is that point's bad sample (invalid_value)");
    return;
  }
  if (profile.protocol === 'file') {
    const parser = profile.parser;
    const from = (f: string | number): string =>
      parser.format === 'json' ? `path ${f}` : parser.format === 'text' ? `group ${f}` : typeof f === 'number' ? `column ${f}` : `column "${f}"`;
    write(`${profile.id}: result files (${parser.format.toUpperCase()}) in ${profile.folder}`);
    write(`takes: ${profile.include.join(', ')}${profile.exclude.length > 0 ? `, except ${profile.exclude.join(', ')}` : ''}`);
    write(`a file is taken once its size and modification time have not changed for ${profile.stableMs} ms`);
    if (parser.format === 'csv')
      write(
        `CSV: delimiter ${JSON.stringify(parser.delimiter)}, ${parser.encoding}, ${parser.skipRows} row(s) skipped, ${parser.header ? 'then a header row' : 'no header row'}${parser.decimalComma ? ', decimal comma' : ''}`,
      );
    if (parser.format === 'xlsx')
      write(
        `XLSX: worksheet ${JSON.stringify(parser.sheet)}, ${parser.skipRows} row(s) skipped, ${parser.header ? 'then a header row' : 'no header row'}`,
      );
    if (parser.format === 'json') write(`JSON: ${parser.rows === undefined ? 'the document is one row' : `rows at ${parser.rows}`}`);
    if (parser.format === 'text') write(`text: every line matching /${parser.pattern}/ is a row${parser.decimalComma ? ', decimal comma' : ''}`);
    write('each row gives one sample per point:');
    for (const point of profile.points)
      write(`    ${channelOf(point).padEnd(20)} ${from(point.from)}, ${point.type}${point.unit ? ` [${point.unit}]` : ''}`);
    write(
      profile.timestamp
        ? `time: ${from(profile.timestamp.from)}, format ${profile.timestamp.format}, zone ${profile.timestamp.zone}`
        : "time: the file's modification time",
    );
    write("every sample's signed record carries the file's SHA-256; the file's bytes go to the server, which keeps them under that hash");
    write('a file taken before (same SHA-256) is not taken again; an empty value is a bad sample');
    write(
      `taken files: ${profile.afterTaken === 'move' ? `moved to ${profile.doneFolder}/` : 'left in the folder'}; a file that cannot be parsed: moved to ${profile.quarantineFolder}/ with a .reason.txt, counted (quarantined) and an alarm`,
    );
    return;
  }
  if (profile.protocol === 'opcua') {
    const c = profile.connection;
    const sub = profile.subscription;
    const auth = c.auth.kind === 'username' ? `user ${c.auth.username} (password from ${c.auth.passwordFile})` : c.auth.kind;
    write(`${profile.id}: OPC UA server ${c.endpointUrl}, security ${c.securityMode} (${c.securityPolicy}), identity ${auth}`);
    write(`one session, one subscription: publishing every ${sub.publishingIntervalMs} ms, ${profile.points.length} monitored item(s)`);
    for (const p of profile.points) {
      const where = p.nodeId ?? `browse path ${p.browsePath ?? ''} (translated by the server at connect)`;
      const deadband = p.deadband ? `, deadband ${p.deadband.value}${p.deadband.type === 'percent' ? ' % of the EURange' : ' absolute'}` : '';
      write(
        `    ${channelOf(p).padEnd(20)} ${where}${p.unit ? ` [${p.unit}]` : ''}: sampling ${p.samplingIntervalMs ?? sub.samplingIntervalMs} ms, queue ${p.queueSize ?? sub.queueSize}${deadband}`,
      );
    }
    write("sample time: the server's source timestamp; quality: Good good, Uncertain* uncertain, Bad* bad with the status name as reason");
    write('a value sent again with a source timestamp already taken (after a reconnection) is dropped and counted as duplicate');
    return;
  }
  if (profile.protocol !== 'modbus') throw new LabtraceError('E_PROFILE', `${file}: an MQTT instrument has no read plan`);
  const plan = planReads(profile, profile.limits);
  const fc = { coil: 1, discrete: 2, holding: 3, input: 4 } as const;
  write(
    `${profile.id}: unit ${profile.unitId} on ${describe(profile.connection)}, every ${profile.pollIntervalMs} ms, ${plan.length} request(s) per poll`,
  );
  write(
    `limits: ${profile.limits.maxRegisters} registers, ${profile.limits.maxBits} bits, gap ${profile.limits.maxGap}, pacing ${profile.limits.pacingMs} ms`,
  );
  for (const [i, r] of plan.entries()) {
    const used = r.points.reduce((n, p) => n + pointWidth(p.point), 0);
    write(`#${i + 1} FC${fc[r.register]} ${r.register} ${r.address}..${r.address + r.quantity - 1} (${r.quantity}, ${r.quantity - used} filler)`);
    for (const { point, offset } of r.points) {
      write(
        `    +${String(offset).padEnd(4)} ${channelOf(point).padEnd(20)} ${point.type}${point.order ? ` ${point.order}` : ''}${point.unit ? ` [${point.unit}]` : ''}`,
      );
    }
  }
}

/** The enrollment token: given on the command line, or read from a file (a Docker secret; kept out of `ps`). */
function tokenFrom(token: string | undefined, file: string | undefined): string {
  if (token !== undefined && file !== undefined) throw new LabtraceError('E_CONFIG', 'enroll: give --token or --token-file, not both');
  if (token !== undefined) return token;
  if (file === undefined)
    throw new LabtraceError('E_CONFIG', `enroll needs --token <token> or --token-file <file> (a lab admin creates it)\n${usage}`);
  let text: string;
  try {
    text = readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new LabtraceError('E_CONFIG_READ', `--token-file: ${file}: ${reason}`, { cause: err });
  }
  const read = text.trim();
  if (read === '') throw new LabtraceError('E_CONFIG', `--token-file: ${file} is empty`);
  return read;
}

export async function main(argv: string[]): Promise<{ stop(): Promise<void> }> {
  if (argv[0] === 'init') {
    let parsed;
    try {
      parsed = parseArgs({ args: argv.slice(1), options: { config: { type: 'string', short: 'c' }, force: { type: 'boolean' } }, strict: true });
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
    }
    const file = path.resolve(parsed.values.config ?? 'gateway.yaml');
    // only the gateway's id and data directory are needed: init runs before the gateway has credentials
    const config = await loadGatewayIdentityConfig(file);
    const created = createIdentity(config.id, config.dataDir, parsed.values.force === true);
    process.stdout.write(`created ${created.keyFile} (mode 600)\npublic key, to register on the server:\n${created.verifierKey}\n`);
    return { stop: () => Promise.resolve() };
  }
  if (argv[0] === 'enroll' || argv[0] === 'rotate-key') {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv.slice(1),
        options: {
          config: { type: 'string', short: 'c' },
          server: { type: 'string' },
          token: { type: 'string' },
          'token-file': { type: 'string' },
          'if-needed': { type: 'boolean' },
        },
        strict: true,
      });
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
    }
    const { server } = parsed.values;
    if (server === undefined) throw new LabtraceError('E_CONFIG', `${argv[0]} needs --server <url>\n${usage}`);
    const file = path.resolve(parsed.values.config ?? 'gateway.yaml');
    const config = await loadGatewayIdentityConfig(file);
    useNodeCrypto();
    if (argv[0] === 'enroll') {
      if (config.passwordFile === undefined)
        throw new LabtraceError('E_CONFIG', `${file}: mqtt.passwordFile: enroll writes the broker password there; set it first`);
      const hasKey = existsSync(path.join(config.dataDir, KEY_FILE));
      const ifNeeded = parsed.values['if-needed'] === true;
      if (ifNeeded && hasKey && existsSync(config.passwordFile)) {
        process.stdout.write(`${config.id} is enrolled already (its key and ${config.passwordFile} exist); nothing to do\n`);
        return { stop: () => Promise.resolve() };
      }
      const token = tokenFrom(parsed.values.token, parsed.values['token-file']);
      if (ifNeeded && !hasKey) {
        const created = createIdentity(config.id, config.dataDir);
        process.stdout.write(`created ${created.keyFile} (mode 600), public key ${created.verifierKey}\n`);
      }
      const outcome = await enroll({ server, token, gateway: config.id, dataDir: config.dataDir, passwordFile: config.passwordFile });
      process.stdout.write(
        `enrolled ${config.id}: key ${outcome.keyId} registered; broker user ${outcome.username}, password written to ${outcome.passwordFile}\n`,
      );
    } else {
      const outcome = await rotateKey({ server, gateway: config.id, dataDir: config.dataDir });
      process.stdout.write(`rotated the key of ${config.id}: ${outcome.oldKeyId} -> ${outcome.newKeyId}\n`);
    }
    return { stop: () => Promise.resolve() };
  }
  if (argv[0] === 'browse') {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv.slice(1),
        allowPositionals: true,
        options: {
          'security-mode': { type: 'string' },
          user: { type: 'string' },
          'password-file': { type: 'string' },
          'data-dir': { type: 'string' },
        },
        strict: true,
      });
    } catch (err) {
      throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
    }
    const [endpointUrl, ...extra] = parsed.positionals;
    if (endpointUrl === undefined || extra.length > 0 || !/^opc\.tcp:\/\/.+/.test(endpointUrl)) {
      throw new LabtraceError('E_CONFIG', `browse needs exactly one endpoint URL such as opc.tcp://192.168.1.20:4840\n${usage}`);
    }
    const mode = parsed.values['security-mode'] ?? 'None';
    if (!(OPCUA_SECURITY_MODES as readonly string[]).includes(mode)) {
      throw new LabtraceError('E_CONFIG', `--security-mode: expected one of ${OPCUA_SECURITY_MODES.join(', ')}, got ${mode}`);
    }
    const { user } = parsed.values;
    const passwordFile = parsed.values['password-file'];
    if ((user === undefined) !== (passwordFile === undefined)) throw new LabtraceError('E_CONFIG', 'browse: --user and --password-file go together');
    const password = passwordFile === undefined ? undefined : readFileSync(path.resolve(passwordFile), 'utf8').trim();
    // node-opcua is loaded for this command only
    const { browseEndpoint } = await import('./opcua/browse.js');
    const found = await browseEndpoint(endpointUrl, {
      dataDir: path.resolve(parsed.values['data-dir'] ?? 'gateway-data'),
      securityMode: mode as (typeof OPCUA_SECURITY_MODES)[number],
      ...(user === undefined ? {} : { username: user }),
      ...(password === undefined ? {} : { password }),
    });
    process.stdout.write(found.map((f) => f.text).join('---\n'));
    return { stop: () => Promise.resolve() };
  }
  if (argv[0] === 'plan') {
    const file = argv[1];
    if (file === undefined || argv.length > 2) throw new LabtraceError('E_CONFIG', `plan needs exactly one profile file\n${usage}`);
    await printPlan(file);
    return { stop: () => Promise.resolve() };
  }
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true }));
  } catch (err) {
    throw new LabtraceError('E_CONFIG', `${(err as Error).message}\n${usage}`);
  }
  const file = path.resolve(values.config ?? 'gateway.yaml');
  const hashing = useNodeCrypto();
  const resolved = await loadGatewayConfig(file);
  const logger = createLogger('gateway');
  if (hashing.kind === 'native') logger.info('hashing: the native batched SHA-256');
  else logger.warn({ reason: hashing.reason }, "hashing: Node's crypto, one call per hash (slower; the native module is not in use)");
  const gateway = new Gateway(resolved, logger);
  await gateway.start();
  return gateway;
}
