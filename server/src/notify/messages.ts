// The words of a notification, in the recipient's language (zh-CN or en) with times in their zone, the zone always
// shown. Rendered when the event happens and kept in the outbox, so a retry sends what was true then.
import type { NotifyEvent, TestEvent } from './events.js';

export type Locale = 'en' | 'zh-CN';

export interface Audience {
  locale: Locale;
  /** an IANA time zone (Asia/Shanghai); UTC when the user chose none or an unknown one */
  timeZone: string;
  /** where the dashboard is reached: links to the run or the report */
  baseUrl: string;
}

export interface Message {
  subject: string;
  /** plain text (e-mail, text robots) */
  text: string;
  /** the same in the Markdown the group robots render */
  markdown: string;
  /** the dashboard page of the record, where there is one */
  link: string | null;
}

/** A zone Intl knows, or UTC. */
export function knownZone(zone: unknown): string {
  if (typeof zone !== 'string' || zone === '') return 'UTC';
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return zone;
  } catch {
    return 'UTC';
  }
}

export function knownLocale(locale: unknown): Locale {
  return typeof locale === 'string' && /^zh(-|_|$)/i.test(locale) ? 'zh-CN' : 'en';
}

/**
 * A time as `2027-01-15 17:00:00 GMT+8`: the same unambiguous order in both languages (a Chinese date is written
 * year-month-day too), in the recipient's zone, the zone always shown.
 */
export function formatTime(ms: number, audience: Pick<Audience, 'locale' | 'timeZone'>): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: audience.timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    timeZoneName: 'short',
  }).formatToParts(ms);
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  const zone = part('timeZoneName') === 'UTC' ? 'UTC' : part('timeZoneName');
  return `${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}:${part('second')} ${zone}`;
}

const SEVERITY: Record<Locale, Record<string, string>> = {
  en: { info: 'info', warning: 'warning', alarm: 'alarm', critical: 'critical', notice: 'notice' },
  'zh-CN': { info: '提示', warning: '警告', alarm: '报警', critical: '严重', notice: '注意' },
};
const severity = (locale: Locale, s: string): string => SEVERITY[locale][s] ?? s;

interface Parts {
  subject: string;
  lines: [label: string, value: string][];
  link: string | null;
}

function parts(e: NotifyEvent | TestEvent, a: Audience): Parts {
  const zh = a.locale === 'zh-CN';
  const t = (ms: number): string => formatTime(ms, a);
  const page = (path: string): string => `${a.baseUrl.replace(/\/+$/, '')}/#${path}`;
  switch (e.kind) {
    case 'alarm': {
      const where = `${e.alarm.instrument}${e.alarm.channel === null ? '' : ` / ${e.alarm.channel}`}`;
      const level = severity(a.locale, e.alarm.severity);
      const subject =
        e.event === 'escalated'
          ? zh
            ? `报警升级为${level}：试验 ${e.run}，${where}`
            : `Alarm escalated to ${level}: run ${e.run}, ${where}`
          : zh
            ? `${level}：试验 ${e.run}，${where}`
            : `${level[0]?.toUpperCase() ?? ''}${level.slice(1)}: run ${e.run}, ${where}`;
      return {
        subject,
        lines: [
          [zh ? '信息' : 'Message', e.alarm.message],
          [zh ? '级别' : 'Severity', level],
          [zh ? '规则' : 'Rule', e.alarm.ruleId],
          [zh ? '试验' : 'Run', e.run],
          [zh ? '仪器' : 'Instrument', where],
          [zh ? '首次报警' : 'Raised', t(e.alarm.raisedAt)],
          [zh ? '时间' : 'At', t(e.at)],
        ],
        link: page(`/runs/${encodeURIComponent(e.run)}`),
      };
    }
    case 'run-completed':
      return {
        subject: zh ? `试验 ${e.run} 已完成` : `Run ${e.run} completed`,
        lines: [
          [zh ? '试验' : 'Run', e.run],
          [zh ? '样品' : 'Sample', e.sample],
          [zh ? '方法' : 'Method', `${e.method.standard} (${e.method.id} v${e.method.version})`],
          [zh ? '完成时间' : 'Completed', t(e.at)],
        ],
        link: page(`/runs/${encodeURIComponent(e.run)}`),
      };
    case 'draft-awaiting-signature':
      return {
        subject: zh ? `报告 ${e.certificate} 待签发` : `Report ${e.certificate} awaits signature`,
        lines: [
          [zh ? '报告' : 'Report', e.certificate],
          [zh ? '试验' : 'Run', e.run],
          [zh ? '申请人' : 'Requested by', e.requestedBy],
          [zh ? '申请时间' : 'Requested', t(e.at)],
        ],
        link: page(`/certificates/${encodeURIComponent(e.certificate)}`),
      };
    case 'calibration-due':
      return {
        subject:
          e.status === 'expired'
            ? zh
              ? `仪器 ${e.instrument} 校准已过期`
              : `Calibration of ${e.instrument} has expired`
            : zh
              ? `仪器 ${e.instrument} 即将到期校准`
              : `Calibration of ${e.instrument} is due soon`,
        lines: [
          [zh ? '仪器' : 'Instrument', e.instrument],
          [zh ? '到期' : 'Due', t(e.dueAt)],
        ],
        link: null,
      };
    case 'gateway-offline':
      return {
        subject: zh ? `网关 ${e.gateway} 离线` : `Gateway ${e.gateway} is offline`,
        lines: [
          [zh ? '网关' : 'Gateway', e.gateway],
          [zh ? '断开时间' : 'Disconnected', t(e.since)],
        ],
        link: null,
      };
    case 'security-event':
      return {
        subject: zh ? `安全事件：${e.event}（${e.gateway || '外部来源'}）` : `Security event: ${e.event} (${e.gateway || 'outside source'})`,
        lines: [
          [zh ? '事件' : 'Event', e.event],
          [zh ? '级别' : 'Severity', severity(a.locale, e.severity)],
          [zh ? '网关' : 'Gateway', e.gateway || (zh ? '（无）' : '(none)')],
          [zh ? '详情' : 'Detail', e.detail],
          [zh ? '时间' : 'At', t(e.at)],
        ],
        link: null,
      };
    case 'test':
      return {
        subject: zh ? 'labtrace 测试通知' : 'labtrace test notification',
        lines: [
          [zh ? '发送人' : 'Sent by', e.requestedBy],
          [zh ? '时间' : 'At', t(e.at)],
        ],
        link: null,
      };
  }
}

/** Markdown that the robots render: a label in bold, the value as text (no markup of its own). */
const escapeMarkdown = (s: string): string => s.replace(/([\\`*_[\]<>#|])/g, '\\$1');

export function render(e: NotifyEvent | TestEvent, audience: Audience): Message {
  const p = parts(e, audience);
  const zh = audience.locale === 'zh-CN';
  const sep = zh ? '：' : ': ';
  const more = zh ? '查看' : 'Open';
  const text = [p.subject, '', ...p.lines.map(([k, v]) => `${k}${sep}${v}`), ...(p.link === null ? [] : ['', `${more}${sep}${p.link}`])].join('\n');
  const markdown = [
    `### ${escapeMarkdown(p.subject)}`,
    ...p.lines.map(([k, v]) => `**${k}**${sep}${escapeMarkdown(v)}  `),
    ...(p.link === null ? [] : [`[${more}](${p.link})`]),
  ].join('\n');
  return { subject: p.subject, text, markdown, link: p.link };
}
