// The gateway's own clock against NTP servers (config `clock.ntp`): it dates every sample it signs, so beyond the bound
// is an alarm in its log (and the HEALTH message says so to the server), and no NTP answer for a while is one too.
import { NtpClock, type NtpChange } from '@labtrace/protocols/node';
import type { HealthMessage, NtpConfig } from '@labtrace/protocols';
import type { Logger } from '../log.js';

export class GatewayClock {
  readonly ntp: NtpClock;
  private readonly onChange = (change: NtpChange): void => this.changed(change);

  constructor(
    private readonly config: NtpConfig,
    private readonly logger: Logger,
    now?: () => number,
  ) {
    this.ntp = new NtpClock(config, now === undefined ? {} : { now });
  }

  async start(): Promise<void> {
    this.ntp.on('change', this.onChange);
    await this.ntp.start();
  }

  async stop(): Promise<void> {
    await this.ntp.stop();
    this.ntp.off('change', this.onChange);
  }

  /** what the HEALTH message carries: nothing until NTP has answered once (or without NTP) */
  healthField(): Pick<HealthMessage, 'clock'> {
    const s = this.ntp.status();
    if (s.offsetMs === null || s.measuredAt === null) return {};
    return {
      clock: {
        offsetMs: Math.round(s.offsetMs),
        measuredAt: Math.round(s.measuredAt),
        beyondBound: s.beyondBound,
        answering: s.failedRounds === 0,
      },
    };
  }

  private changed(change: NtpChange): void {
    const bound = `${(this.config.maxOffsetMs / 1000).toFixed(1)} s`;
    const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    if (change.kind === 'beyond')
      this.logger.error(
        { kind: 'clock-offset', offsetMs: Math.round(change.offsetMs), server: change.server },
        `ALARM: clock-offset: the gateway's clock is ${s(Math.abs(change.offsetMs))} ${change.offsetMs > 0 ? 'ahead of' : 'behind'} NTP (bound ${bound}): the times it gives its samples are off by as much`,
      );
    else if (change.kind === 'back')
      this.logger.warn(
        { kind: 'clock-offset', offsetMs: Math.round(change.offsetMs), server: change.server },
        `clock-offset: the gateway's clock is back within ${bound} of NTP`,
      );
    else if (change.kind === 'unreachable')
      this.logger.error(
        { kind: 'clock-offset', failedRounds: change.failedRounds, err: change.lastError },
        `ALARM: clock-offset: no NTP server answered for ${change.failedRounds} rounds: the gateway's clock is not measured`,
      );
    else this.logger.warn({ kind: 'clock-offset', server: change.server }, 'clock-offset: NTP answers again');
  }
}
