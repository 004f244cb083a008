#!/usr/bin/env node
// labtrace: one command for every part. `labtrace lab` runs the whole lab; the others run one part each.
const usage = `usage: labtrace <command> [options]

commands:
  lab                         the whole lab on embedded defaults: simulator, gateway, server and dashboard
  server  [--config file]     the server: MQTT broker, ingest, store, REST API, socket.io, dashboard
  gateway [--config file]     the edge gateway: polls instruments and publishes their measurements
  sim     [--config file]     the device simulator: Modbus TCP, RTU and RTU-over-TCP and MQTT instruments
  sim fault <id> <kind> ...   injects a fault into a running simulated instrument (see 'labtrace sim --help')
  gateway plan <profile>      prints the read requests a device profile needs
  export --out <dir> ...      writes an export bundle of a gateway's signed measurements (see 'labtrace export --help')
  verify <bundle-dir>         checks an export bundle offline; exit 0 verified, 1 does not verify, 2 unusable input
  verify-certificate <file>   checks a certificate (JSON, or PDF/DCC against its JSON) offline with the lab's keys
  verify-audit <file>         checks an audit-trail export offline (hashes and chain); exit codes as for verify
  witness --config <file>     a witness (C2SP tlog-witness) that cosigns a lab's consistent checkpoints
  supervisor --config <file>  a supervisor that follows labs, runs the compliance rules and keeps their credit tiers
  supervisor verify-report <report.json> --key <key>  checks a supervisor's signed compliance report offline
  help                        this text

Run 'labtrace <command> --help' for the options of one command.`;

const commands = {
  lab: () => import('@labtrace/server/lab'),
  server: () => import('@labtrace/server/cli'),
  gateway: () => import('@labtrace/gateway/cli'),
  sim: () => import('@labtrace/device-sim/cli'),
  export: () => import('../server/dist/src/export/cli.js'),
  verify: () => import('../server/dist/src/export/verify-cli.js'),
  'verify-certificate': () => import('../server/dist/src/certificates/verify-cli.js'),
  'verify-audit': () => import('../server/dist/src/audit/verify-audit-cli.js'),
  witness: () => import('../server/dist/src/witness/cli.js'),
  supervisor: () => import('../server/dist/src/supervisor/cli.js'),
};

const [command, ...args] = process.argv.slice(2);
if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
  console.log(usage);
  process.exit(command === undefined ? 2 : 0);
}
const load = commands[command];
if (load === undefined) {
  console.error(`labtrace: unknown command "${command}"\n\n${usage}`);
  process.exit(2);
}

let module_;
try {
  module_ = await load();
} catch (err) {
  console.error(`labtrace ${command}: cannot load (${err.message}); run 'npm run build' first`);
  process.exit(1);
}
if (args.includes('--help') || args.includes('-h')) {
  console.log(module_.usage);
  process.exit(0);
}

let service;
try {
  service = await module_.main(args);
} catch (err) {
  console.error(`labtrace ${command}: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exit(1);
}

let stopping = false;
const stop = async (signal) => {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => {
    console.error(`labtrace ${command}: did not stop within 15 s after ${signal}; exiting`);
    process.exit(1);
  }, 15_000);
  timer.unref();
  try {
    await service.stop();
    process.exitCode = 0;
  } catch (err) {
    console.error(`labtrace ${command}: error while stopping: ${err.message}`);
    process.exitCode = 1;
  }
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
// A part started by `labtrace lab` stops when the lab process is gone, even killed without a chance to stop it.
const parent = Number(process.env.LABTRACE_PARENT_PID);
if (Number.isInteger(parent) && parent > 1) {
  setInterval(() => {
    if (process.ppid !== parent) void stop('the lab process ended');
  }, 500).unref();
}
if (service.done) {
  service.done.then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    () => {
      process.exitCode = 1;
    },
  );
}
