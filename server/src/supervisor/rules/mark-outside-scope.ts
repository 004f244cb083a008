// A report that carries the accreditation mark and number although, when it was issued, the accreditation they name
// was not in force (expired, suspended, withdrawn, not yet valid, or not the lab's at all), or one of its results lay
// outside that accreditation's scope: the method's standard, the measurand, its unit or its range (CNAS-R01, ILAC-P8,
// ILAC R7, A2LA P101; ISO/IEC 17025:2017 7.8.2.1). The status and the scope at the issue are computed from the lab's
// accreditation records as docs/accreditation.md defines them; the claim is read from the report's signed content.
//
// Critical rather than major: the mark is a claim of accreditation to everyone who holds the report (customers, and
// regulators who accept the result under the ILAC MRA because of it); outside the scope it is a false claim on a
// signed record, which the accreditation bodies' rules on the mark treat as misuse that can cost the lab its
// accreditation. And labtrace itself withholds the mark in these cases, so a mark outside the scope means that
// safeguard was bypassed.
import type { AccreditationEvidence, Bilingual, ReportMarkEvidence, Rule, RuleFinding, ScopeEntryEvidence } from '../evidence.js';

export const markOutsideScope: Rule = {
  id: 'accredited-mark-outside-scope',
  title: {
    en: 'Accreditation mark on a report with results outside the scope, or under an accreditation not in force at the issue',
    zh: '报告含认可范围以外的结果或签发时认可未处于有效状态，却使用了认可标识',
  },
  reference:
    'CNAS-R01; ILAC-P8; ILAC R7; A2LA P101; ISO/IEC 17025:2017 7.8.2.1, 8.1; domain note "the accreditation mark and number only where every reported result lies inside the scope"; critical: a false claim of accreditation on a signed report its holders rely on',
  severity: 'critical',
  remedy: {
    en: 'Withdraw the mark: issue an amendment without it (7.8.8), with the results outside the scope flagged, tell the customer and the accreditation body, and answer with the amendment number and the cause.',
    zh: '撤除认可标识：签发不带标识的修改版报告（7.8.8），并标明认可范围外的结果；通知客户和认可机构，以修改版报告编号和原因分析作答。',
  },
  check(evidence) {
    const findings: RuleFinding[] = [];
    for (const cert of evidence.certificates) {
      if (cert.issuedAt === null) continue;
      const claim = evidence.marks.get(cert.id);
      // only the content the lab signed is judged: another one served is not the report its holders have
      if (claim === undefined || claim.mark === null || cert.digests === null || claim.contentDigest !== cert.digests['json']) continue;
      const problems = problemsOf(claim, evidence.accreditations);
      if (problems.length === 0) continue;
      const mark = `${claim.mark.body} ${claim.mark.number}`;
      findings.push({
        key: cert.id,
        at: cert.issuedAt,
        summary: {
          en: `report ${cert.id} carries the accreditation mark of ${mark}, but at its issue ${problems.map((p) => p.en).join('; ')}`,
          zh: `检测报告 ${cert.id} 使用了 ${mark} 的认可标识，但在其签发时，${problems.map((p) => p.zh).join('；')}`,
        },
        subject: { certificate: cert.id, run: cert.run },
        entries: cert.logIndex === null ? [] : [{ index: cert.logIndex, why: 'the issue of the report with the mark' }],
        detail: { mark: claim.mark, method: claim.method, issuedAt: claim.issuedAt, problems: problems.map((p) => p.en) },
      });
    }
    return findings;
  },
};

type Status = 'active' | 'suspended' | 'withdrawn' | 'expired' | 'not-yet-valid';

/** an accreditation's status and scope at a time, as the lab computes them (docs/accreditation.md, "Status") */
export function accreditationAt(a: AccreditationEvidence, at: number): { status: Status; since: number | null; entries: ScopeEntryEvidence[] } {
  const events = a.events.filter((e) => e.at <= at);
  const withdrawal = events.find((e) => e.kind === 'withdraw');
  const standing = events.filter((e) => e.kind !== 'withdraw').at(-1);
  const from = Math.max(at, a.validFrom);
  const entries = a.scopes.filter((v) => v.effectiveFrom <= from).at(-1)?.entries ?? [];
  if (withdrawal !== undefined) return { status: 'withdrawn', since: withdrawal.at, entries };
  if (at < a.validFrom) return { status: 'not-yet-valid', since: null, entries };
  if (at >= a.validTo) return { status: 'expired', since: a.validTo, entries };
  if (standing?.kind === 'suspend') return { status: 'suspended', since: standing.at, entries };
  return { status: 'active', since: Math.max(a.validFrom, standing?.at ?? 0), entries };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** why the mark may not be on the report, if it may not: empty when one accreditation it names covers every result */
function problemsOf(claim: ReportMarkEvidence, accreditations: readonly AccreditationEvidence[]): Bilingual[] {
  const mark = claim.mark;
  if (mark === null) return [];
  const name = `${mark.body} ${mark.number}`;
  const named = accreditations.filter((a) => a.body === mark.body && a.number === mark.number);
  if (named.length === 0) return [{ en: `the lab has no accreditation ${name} on record`, zh: `实验室没有 ${name} 的认可记录` }];
  const at = claim.issuedAt;
  const states = named.map((a) => ({ a, ...accreditationAt(a, at) }));
  const active = states.filter((s) => s.status === 'active');
  if (active.length === 0) {
    // a renewal is a new record with the same number: the newest one tells
    const newest = states.reduce((x, y) => (y.a.validFrom > x.a.validFrom ? y : x));
    return [inactive(name, newest.status, newest.since, newest.a)];
  }
  // one accreditation in force covers the whole report, or the one that leaves the fewest results outside is told
  let best: Bilingual[] | undefined;
  for (const s of active) {
    const problems = outsideScope(claim, s.entries, name);
    if (problems.length === 0) return [];
    if (best === undefined || problems.length < best.length) best = problems;
  }
  return best ?? [];
}

function inactive(name: string, status: Status, since: number | null, a: AccreditationEvidence): Bilingual {
  switch (status) {
    case 'suspended':
      return {
        en: `accreditation ${name} was suspended (since ${iso(since ?? a.validFrom)})`,
        zh: `认可 ${name} 已被暂停（自 ${iso(since ?? a.validFrom)} 起）`,
      };
    case 'withdrawn':
      return {
        en: `accreditation ${name} was withdrawn (on ${iso(since ?? a.validFrom)})`,
        zh: `认可 ${name} 已被撤销（于 ${iso(since ?? a.validFrom)}）`,
      };
    case 'expired':
      return { en: `accreditation ${name} had expired (on ${iso(a.validTo)})`, zh: `认可 ${name} 已过期（于 ${iso(a.validTo)}）` };
    case 'not-yet-valid':
      return {
        en: `accreditation ${name} was not yet valid (from ${iso(a.validFrom)})`,
        zh: `认可 ${name} 尚未生效（自 ${iso(a.validFrom)} 起生效）`,
      };
    case 'active':
      return { en: `accreditation ${name} was active`, zh: `认可 ${name} 处于有效状态` };
  }
}

function outsideScope(claim: ReportMarkEvidence, entries: readonly ScopeEntryEvidence[], name: string): Bilingual[] {
  const standard = claim.method.standard;
  const ofStandard = entries.filter((e) => e.standard === standard);
  if (ofStandard.length === 0)
    return [{ en: `the method ${standard} was not in the scope of ${name}`, zh: `方法 ${standard} 不在 ${name} 的认可范围内` }];
  const problems: Bilingual[] = [];
  for (const r of claim.results) {
    const ofMeasurand = ofStandard.filter((e) => e.measurand === r.measurand);
    const inUnit = ofMeasurand.filter((e) => e.unit === r.unit);
    if (ofMeasurand.length === 0)
      problems.push({
        en: `${r.name}: ${r.measurand} of ${standard} was not in the scope of ${name}`,
        zh: `${r.name}：${standard} 的 ${r.measurand} 不在 ${name} 的认可范围内`,
      });
    else if (inUnit.length === 0)
      problems.push({
        en: `${r.name}: ${r.measurand} is reported in ${unitText(r.unit).en}, the scope of ${name} has it in ${ofMeasurand.map((e) => unitText(e.unit).en).join(', ')}`,
        zh: `${r.name}：${r.measurand} 以 ${unitText(r.unit).zh} 报告，而 ${name} 的认可范围中为 ${ofMeasurand.map((e) => unitText(e.unit).zh).join('、')}`,
      });
    else if (!inUnit.some((e) => inRange(e, r.value)))
      problems.push({
        en: `${r.name}: ${r.measurand} = ${r.value} ${r.unit} lies outside the accredited range ${inUnit.map((e) => rangeText(e).en).join(' or ')}`,
        zh: `${r.name}：${r.measurand} = ${r.value} ${r.unit} 超出认可范围 ${inUnit.map((e) => rangeText(e).zh).join(' 或 ')}`,
      });
  }
  return problems;
}

const unitText = (unit: string): Bilingual => (unit === '' ? { en: 'no unit', zh: '无单位' } : { en: unit, zh: unit });

/** bounds included, with a relative tolerance for a value brought back through the method's scale */
function inRange(e: ScopeEntryEvidence, value: number): boolean {
  const slack = (bound: number): number => 1e-9 * Math.max(1, Math.abs(bound));
  return (e.min === undefined || value >= e.min - slack(e.min)) && (e.max === undefined || value <= e.max + slack(e.max));
}

function rangeText(e: ScopeEntryEvidence): Bilingual {
  const same = (t: string): Bilingual => ({ en: t, zh: t });
  if (e.min !== undefined && e.max !== undefined) return same(`${e.min}–${e.max} ${e.unit}`);
  if (e.min !== undefined) return same(`≥ ${e.min} ${e.unit}`);
  if (e.max !== undefined) return same(`≤ ${e.max} ${e.unit}`);
  return { en: 'unbounded', zh: '不限' };
}
