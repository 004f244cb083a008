// What a fuzz run found, grouped so that one defect shows once (with its smallest example) however many
// generated cases hit it, and so that one defect does not hide the others: the properties record and go
// on, and each test fails at its end with the whole list.
import { FUZZ_SEED } from '@labtrace/protocols/test/fuzz';

export type FindingKind = '5xx' | 'crash' | 'hang' | 'unhealthy' | 'accepted';

export interface Finding {
  kind: FindingKind;
  /** what makes two findings the same defect: how it failed (the server's error, or the route) */
  key: string;
  /** where it happened: the route or topic (a defect met on several is listed once, with all of them) */
  where?: string;
  /** the generated input, as sent */
  example: string;
  /** the answer, the server's log lines of the case, or the dead process's last output */
  detail: string;
}

/** crashes after which a property sends nothing more: each costs a restart, and a broken build must still end soon */
export const CRASH_BUDGET = 6;

export class Findings {
  crashes = 0;
  private readonly groups = new Map<string, { finding: Finding; count: number; where: Set<string> }>();

  add(finding: Finding): void {
    const key = `${finding.kind} ${finding.key}`;
    const group = this.groups.get(key) ?? { finding, count: 0, where: new Set<string>() };
    this.groups.set(key, group);
    group.count++;
    if (finding.kind === 'crash') this.crashes++;
    if (finding.where !== undefined) group.where.add(finding.where);
    if (finding.example.length < group.finding.example.length) group.finding = finding;
  }

  /** the crash budget is spent: the property's remaining cases are skipped */
  get stopped(): boolean {
    return this.crashes >= CRASH_BUDGET;
  }

  get size(): number {
    return this.groups.size;
  }

  /** The report a failing test prints: each defect once, its count, its smallest example, and the seed. */
  report(title: string): string {
    if (this.groups.size === 0) return `${title}: nothing found`;
    const lines = [`${title}: ${this.groups.size} distinct failure(s); seed ${FUZZ_SEED} (replay: FUZZ_SEED=${FUZZ_SEED})`];
    if (this.stopped) lines.push(`(stopped after ${this.crashes} crashes: the remaining cases were not sent)`);
    for (const { finding, count, where } of this.groups.values()) {
      lines.push(
        '',
        `[${finding.kind}] ${finding.key}  (${count} case${count === 1 ? '' : 's'})`,
        ...(where.size === 0 ? [] : [`  where:  ${clip([...where].join(', '), 1500)}`]),
        `  input:  ${clip(finding.example, 1500)}`,
        `  detail: ${clip(finding.detail, 2500).replace(/\n/g, '\n          ')}`,
      );
    }
    return lines.join('\n');
  }
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n)}… (${s.length} characters)` : s);

/** JSON for a report, with lone surrogates and control characters visible as escapes */
export function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (Buffer.isBuffer(v) ? `<${v.length} bytes>` : v)) ?? String(value);
}
