// The two ways out: e-mail through the lab's SMTP relay (nodemailer), and an HTTP POST to a webhook. Each answers
// whether the receiver took the message; an error's text never carries a credential (the caller scrubs it as well).
import nodemailer, { type Transporter } from 'nodemailer';
import type { SmtpConfig } from './config.js';
import type { StoredMessage } from './outbox.js';
import { accepted, webhookRequest, type Delivery, type WebhookTarget } from './webhook-request.js';

export type Outcome = { ok: true } | { ok: false; error: string; permanent: boolean };

export class EmailSender {
  private readonly transport: Transporter;

  constructor(
    private readonly smtp: SmtpConfig,
    password: string | undefined,
    timeoutMs: number,
  ) {
    this.transport = nodemailer.createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTls,
      tls: { rejectUnauthorized: smtp.rejectUnauthorized },
      ...(smtp.username === undefined ? {} : { auth: { user: smtp.username, pass: password ?? '' } }),
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
      // nodemailer logs nothing unless told; it stays so (its debug output would show the AUTH exchange)
      logger: false,
      debug: false,
    });
  }

  async send(id: string, to: string, m: StoredMessage): Promise<Outcome> {
    try {
      await this.transport.sendMail({
        from: this.smtp.from,
        to,
        subject: m.message.subject,
        text: m.message.text,
        headers: { 'X-Labtrace-Event': m.type, 'X-Labtrace-Delivery': id, 'Content-Language': m.locale },
      });
      return { ok: true };
    } catch (err) {
      const e = err as { message?: string; responseCode?: number };
      // 5xx from the relay about the recipient or the message will not change by trying again
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode !== 535 && e.responseCode !== 530;
      return { ok: false, error: `e-mail: ${e.message ?? String(err)}`, permanent };
    }
  }

  close(): void {
    this.transport.close();
  }
}

/** The largest answer read from a receiver (the rest is not needed to judge it). */
const MAX_ANSWER = 4096;

export async function postWebhook(target: WebhookTarget, d: Delivery, now: number, timeoutMs: number): Promise<Outcome> {
  const req = webhookRequest(target, d, now);
  try {
    const res = await fetch(req.url, {
      method: 'POST',
      headers: req.headers,
      body: req.body,
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = (await res.text()).slice(0, MAX_ANSWER);
    return accepted(target.preset, res.status, text);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    // fetch says only "fetch failed"; the cause names the network error (ECONNREFUSED, a timeout)
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, error: `webhook: ${why}`, permanent: false };
  }
}
