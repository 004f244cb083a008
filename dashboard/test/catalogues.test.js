// The dashboard's catalogues (src/locales/<language>/<area>.json, keys `<area>.<key>`) are complete in every
// language: the same area files, the same keys, no empty message, every message compiles with vue-i18n's message
// compiler and names the same placeholders in every language; and every key the sources use exists in each.
import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { baseCompile } from '@intlify/message-compiler';
import {
  ACCREDITATION_EVENT_KINDS,
  ACCREDITATION_STATES,
  ALARM_EVENT_KINDS,
  DELIVERY_STATUSES,
  KEY_STATUSES,
  NOTIFICATION_KINDS,
  SECURITY_EVENT_KINDS,
  WEBHOOK_PRESETS,
  AUDIT_ACTIONS,
  BLOCKER_KINDS,
  CALIBRATION_STATES,
  CERTIFICATE_STATUSES,
  REASONS,
  RESULT_STATISTICS,
  ROLES,
  RULE_KINDS,
  RUN_STATES,
  RUN_TIMES,
  SEVERITIES,
  SHARE_STATES,
  FINDING_SEVERITIES,
} from '@labtrace/protocols/api';
import { INSTRUMENT_COMMANDS } from '@labtrace/protocols';

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
const LOCALES = path.join(SRC, 'locales');

/** the languages the dashboard offers, as src/i18n.ts declares them */
const LANGUAGES = (() => {
  const m = /export const LANGUAGES = \[([^\]]*)\]/.exec(readFileSync(path.join(SRC, 'i18n.ts'), 'utf8'));
  if (!m?.[1]) throw new Error('LANGUAGES not found in src/i18n.ts');
  return [...m[1].matchAll(/'([^']+)'/g)].map((x) => x[1]);
})();

const areasOf = (language) =>
  readdirSync(path.join(LOCALES, language))
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();

/** `{ a: { b: 'x' } }` -> [['a.b', 'x']]; an empty object is a place for keys to come (errors.reason) */
function leaves(value, prefix, out = []) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix === '' ? k : `${prefix}.${k}`, out);
  } else out.push([prefix, value]);
  return out;
}

/** every language's messages: language -> Map(key -> message) */
const catalogues = new Map(
  LANGUAGES.map((language) => {
    const messages = new Map();
    for (const area of areasOf(language)) {
      const json = JSON.parse(readFileSync(path.join(LOCALES, language, `${area}.json`), 'utf8'));
      for (const [key, message] of leaves(json, area)) messages.set(key, message);
    }
    return [language, messages];
  }),
);

/** the problems vue-i18n's compiler finds in a message (none: it compiles) */
function compileErrors(message) {
  const errors = [];
  try {
    baseCompile(message, { onError: (err) => errors.push(err.message) });
  } catch (err) {
    errors.push(err.message);
  }
  return errors;
}

/** the named placeholders of a message: "{n} of {total}" -> ['n', 'total'] */
const placeholders = (message) => [...new Set([...message.matchAll(/\{\s*([A-Za-z_][\w]*)\s*\}/g)].map((m) => m[1]))].sort();

describe('catalogues', () => {
  test('the dashboard offers zh-CN and en, each with its folder of area files and the module the page loads it by', () => {
    expect(LANGUAGES).toEqual(expect.arrayContaining(['zh-CN', 'en']));
    for (const language of LANGUAGES) expect(statSync(path.join(LOCALES, language)).isDirectory()).toBe(true);
    // no folder (nor module) for a language the switch does not offer; every offered one has both
    expect(readdirSync(LOCALES).sort()).toEqual(LANGUAGES.flatMap((l) => [l, `${l}.ts`]).sort());
    // src/i18n.ts loads each language by its module, one chunk each
    const i18nSource = readFileSync(path.join(LOCALES, '..', 'i18n.ts'), 'utf8');
    for (const language of LANGUAGES) expect(i18nSource).toContain(`import('./locales/${language}')`);
  });

  test('every area file exists in every language', () => {
    const all = [...new Set(LANGUAGES.flatMap(areasOf))].sort();
    for (const language of LANGUAGES) expect({ language, areas: areasOf(language) }).toEqual({ language, areas: all });
  });

  test('every key of one language exists in the others, and nothing else', () => {
    const [first, ...others] = LANGUAGES;
    const keys = (language) => [...catalogues.get(language).keys()].sort();
    for (const language of others) {
      const missingHere = keys(first).filter((k) => !catalogues.get(language).has(k));
      const missingThere = keys(language).filter((k) => !catalogues.get(first).has(k));
      expect({ language, missing: missingHere }).toEqual({ language, missing: [] });
      expect({ language: first, missing: missingThere }).toEqual({ language: first, missing: [] });
    }
  });

  test('every message is a non-empty text that compiles, with the same placeholders in every language', () => {
    const problems = [];
    for (const [language, messages] of catalogues) {
      for (const [key, message] of messages) {
        if (typeof message !== 'string') problems.push(`${language} ${key}: not a text (${JSON.stringify(message)})`);
        else if (message.trim() === '') problems.push(`${language} ${key}: empty`);
        else for (const error of compileErrors(message)) problems.push(`${language} ${key}: ${error} in ${JSON.stringify(message)}`);
      }
    }
    const [first, ...others] = LANGUAGES;
    for (const [key, message] of catalogues.get(first)) {
      for (const language of others) {
        const other = catalogues.get(language).get(key);
        if (typeof message !== 'string' || typeof other !== 'string') continue;
        const a = placeholders(message);
        const b = placeholders(other);
        if (a.join() !== b.join()) problems.push(`${key}: placeholders ${first} {${a.join('}, {')}} but ${language} {${b.join('}, {')}}`);
      }
    }
    expect(problems).toEqual([]);
  });

  test('the checks above catch what they claim: a broken message, an empty one, a missing placeholder', () => {
    expect(compileErrors('{unclosed')).not.toEqual([]);
    expect(compileErrors('write to lab@example.com')).not.toEqual([]); // a literal @ must be {'@'}
    expect(compileErrors("write to lab{'@'}example.com")).toEqual([]);
    expect(placeholders('{n} of {total} | {n}')).toEqual(['n', 'total']);
    expect(leaves({ a: { b: '' }, c: 'x' }, 'area')).toEqual([
      ['area.a.b', ''],
      ['area.c', 'x'],
    ]);
  });
});

/** every source file of the dashboard (not the supervisor's console's: its catalogues are its own, test/supervisor-console) */
function sources(dir = SRC, out = []) {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) {
      if (name !== 'locales' && !(dir === SRC && name === 'supervisor')) sources(file, out);
    } else if (/\.(ts|vue)$/.test(name)) out.push(file);
  }
  return out;
}

/**
 * Keys built at run time (t(`common.roles.${role}`)): the prefix and every value it may take. `null`: the source
 * asks te() first and falls back to a text of its own, so no expansion has to exist.
 */
/** the string values of a constant array a source defines (`const NAME = ['a', 'b'] as const`): the test follows the source */
function listIn(file, name) {
  const text = readFileSync(path.join(SRC, file), 'utf8');
  const m = new RegExp(`const ${name} = \\[([^\\]]*)\\]`).exec(text);
  if (!m) throw new Error(`${file} defines no ${name}`);
  return [...m[1].matchAll(/'([^']+)'/g)].map((v) => v[1]);
}

// the values a key built at run time can take: the contract's enums where the value comes from the server, else the
// component's own list; null where the source guards the key with te() and falls back (error codes and reasons)
const DYNAMIC = {
  'common.roles.': ROLES,
  'common.connection.': ['connected', 'reconnecting', 'offline'],
  'common.languages.': LANGUAGES,
  'fields.': ['sample', 'method', 'instruments'],
  'home.runs.states.': RUN_STATES,
  'home.calibration.': [...CALIBRATION_STATES, 'unknown'],
  'home.accreditation.status.': ACCREDITATION_STATES,
  'home.instruments.errorKinds.': null,
  // how a gateway reads an instrument: every profile kind (protocols/src/profile.ts), and its gateway not saying
  'instruments.protocol.': ['modbus', 'mqtt', 'balance', 'line', 'scpi', 'opcua', 'file', 'unknown'],
  // zero and tare of a balance (protocols/src/measurement.ts INSTRUMENT_COMMANDS): the buttons and their confirmations
  'instruments.commands.': INSTRUMENT_COMMANDS,
  'instruments.commands.confirm.': INSTRUMENT_COMMANDS,
  'errors.issue.': null,
  'errors.code.': null,
  // every refusal reason of the contract has its message
  'errors.reason.': REASONS,
  'errors.recordType.': ['run', 'sample', 'method', 'instrument', 'certificate', 'accreditation', 'user', 'alarm', 'organization'],
  'errors.command.': ['start', 'stop', 'abort'],
  'alarms.severity.': SEVERITIES,
  'alarms.kind.': RULE_KINDS,
  'alarms.reasonRequired.': ['acknowledge', 'clear'],
  'alarms.state.': ['active', 'returned', 'acknowledged', 'cleared'],
  'alarms.event.': ALARM_EVENT_KINDS,
  'share.state.': SHARE_STATES,
  // the filter's own field names (AuditTrail's MAX and time fields)
  'audit.': ['actor', 'recordType', 'recordId', 'action', 'since', 'until'],
  'audit.actions.': AUDIT_ACTIONS,
  // AuditTrail's own list of the record types the server writes (a type outside it is shown as recorded)
  'audit.recordTypes.': listIn('components/AuditTrail.vue', 'AUDIT_RECORD_TYPES'),
  'certificate.status.': CERTIFICATE_STATUSES,
  'certificate.statusOf.': CERTIFICATE_STATUSES,
  'run.certificates.status.': CERTIFICATE_STATUSES,
  'certificate.confirm.': ['issue', 'amend', 'revoke'],
  'certificate.done.': ['issue', 'amend', 'revoke'],
  'certificate.digest.': ['pdf', 'json', 'dcc'],
  'certificate.languages.': ['zh-CN', 'en', 'bilingual'],
  // why a draft cannot be issued, by the contract's kinds; a missing field by its key, guarded by te()
  'certificate.blocker.': BLOCKER_KINDS,
  'certificate.mandatory.': null,
  // CertificateAmend's KEY map: the fields an amendment corrects
  'certificate.amendForm.field.': ['customerName', 'customerContact', 'itemDescription', 'itemCondition', 'remarks', 'statements'],
  'chart.limit.': ['min', 'max', 'low', 'high', 'warnLow', 'warnHigh'],
  'run.state.': RUN_STATES,
  'standing.severity.': FINDING_SEVERITIES,
  'standing.status.': ['open', 'resolved'],
  'run.results.rule.': ['simple-acceptance', 'guarded-acceptance'],
  'run.results.statistic.': RESULT_STATISTICS,
  'run.results.verdict.': ['pass', 'fail', 'no-decision'],
  // the time a runs list's range bounds (RunList's RUN_TIMES, the contract's)
  'run.list.times.': RUN_TIMES,
  'run.list.fromBy.': RUN_TIMES,
  'run.list.toBy.': RUN_TIMES,
  'users.confirm.': ['role', 'disable', 'enable', 'reset', 'grant'],
  // the admin's views (views/admin, AdminNav, NotificationSettings)
  'admin.about.': ['users', 'accreditations', 'gateways', 'tokens', 'security', 'health', 'notifications'],
  'admin.nav.': ['users', 'accreditations', 'gateways', 'tokens', 'security', 'health', 'notifications'],
  'admin.accreditations.': ['id', 'body', 'number', 'standard', 'validFrom', 'validTo'],
  'admin.accreditations.scope.': ['standard', 'measurand', 'unit', 'min', 'max', 'description'],
  'admin.accreditations.confirm.': ACCREDITATION_EVENT_KINDS,
  'admin.accreditations.done.': ACCREDITATION_EVENT_KINDS,
  'admin.accreditations.event.': ACCREDITATION_EVENT_KINDS,
  'admin.accreditations.eventDone.': ACCREDITATION_EVENT_KINDS,
  'admin.gateways.keyStatus.': KEY_STATUSES,
  'admin.gateways.rotationState.': ['no-key', 'in-grace', 'due', 'ok'],
  'admin.health.overall.': ['ok', 'degraded'],
  'admin.health.state.': ['ok', 'down', 'low-space', 'cannot-write', 'failing', 'backlog', 'idle', 'failed'],
  'admin.security.': ['from', 'to'],
  'admin.security.kinds.': SECURITY_EVENT_KINDS,
  'admin.security.severity.': ['info', 'notice', 'alarm'],
  'admin.webhooks.presets.': WEBHOOK_PRESETS,
  'admin.webhooks.status.': DELIVERY_STATUSES,
  'settings.notifications.kinds.': NOTIFICATION_KINDS,
  // the auditor's workspace (VerifyView): its own lists of checks and of the verifier's failure kinds
  'verify.source.': listIn('views/VerifyView.vue', 'SOURCES'),
  'verify.check.': listIn('views/VerifyView.vue', 'CHECKS'),
  'verify.problem.': listIn('views/VerifyView.vue', 'PROBLEM_KINDS'),
  'verify.state.': ['valid', 'failed', 'skipped'],
  'verify.verdict.': ['verified', 'failed', 'unusable'],
  'verify.keyStatus.': ['active', 'retired', 'revoked'],
  'users.done.': ['create', 'role', 'disable', 'enable', 'reset', 'grant', 'organization'],
  // an intermediate check's result (the contract's), the instrument page's own ranges and periods
  'instruments.check.': ['pass', 'fail'],
  'instruments.history.ranges.': ['hour', 'day', 'week', 'custom'],
  'instruments.health.spans.': ['day', 'week', 'month'],
  // the overview's periods and verdicts (OverviewView)
  'overview.runs.': ['today', 'month'],
  'overview.verdicts.': ['pass', 'fail', 'noDecision'],
};

/** the keys a source names literally: t('x.y'), $t("x.y"), te('x.y'), route titles, notices kept as keys */
function literalKeys(text) {
  const keys = [];
  for (const m of text.matchAll(/(?<![\w.])\$?te?\(\s*(['"])([A-Za-z][\w-]*(?:\.[\w-]+)+)\1/g)) keys.push(m[2]);
  for (const m of text.matchAll(/\btitle:\s*'([A-Za-z][\w-]*(?:\.[\w-]+)+)'/g)) keys.push(m[1]);
  for (const m of text.matchAll(/\bnotice\s*=\s*'([A-Za-z][\w-]*(?:\.[\w-]+)+)'/g)) keys.push(m[1]);
  return keys;
}

/** the prefixes of keys built at run time: t(`home.runs.states.${s}`) -> 'home.runs.states.' */
const dynamicPrefixes = (text) => [...text.matchAll(/(?<![\w.])\$?te?\(\s*`([^`$]*)\$\{/g)].map((m) => m[1]);

describe('keys used by the dashboard', () => {
  const files = sources();

  test('every literal key exists in every language', () => {
    const missing = [];
    let found = 0;
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const key of literalKeys(text)) {
        found++;
        for (const language of LANGUAGES) {
          if (typeof catalogues.get(language).get(key) !== 'string') missing.push(`${path.relative(SRC, file)}: ${key} (${language})`);
        }
      }
    }
    expect(found).toBeGreaterThan(50); // the scan finds the keys (a broken pattern would find none and pass)
    expect(missing).toEqual([]);
  });

  test('every key built at run time has its expansions listed here, and each exists in every language', () => {
    const unlisted = [];
    const missing = [];
    for (const file of files) {
      for (const prefix of dynamicPrefixes(readFileSync(file, 'utf8'))) {
        if (!(prefix in DYNAMIC)) unlisted.push(`${path.relative(SRC, file)}: ${prefix}\${…}`);
      }
    }
    for (const [prefix, values] of Object.entries(DYNAMIC)) {
      for (const value of values ?? []) {
        for (const language of LANGUAGES) {
          if (typeof catalogues.get(language).get(prefix + value) !== 'string') missing.push(`${prefix}${value} (${language})`);
        }
      }
    }
    expect(unlisted).toEqual([]);
    expect(missing).toEqual([]);
  });

  test('the scan reads the forms the sources use', () => {
    expect(literalKeys(`{{ t('common.save') }} $t("auth.signIn") te('a.b') title: 'common.titles.home' notice = 'auth.passwordChanged'`)).toEqual([
      'common.save',
      'auth.signIn',
      'a.b',
      'common.titles.home',
      'auth.passwordChanged',
    ]);
    // not a translation: format('x.y'), a method named at()
    expect(literalKeys(`format('a.b') data.at('x.y')`)).toEqual([]);
    expect(dynamicPrefixes('t(`common.roles.${role}`)')).toEqual(['common.roles.']);
  });
});
