// Real receivers the notification tests run on loopback: an SMTP server (smtp-server, with a password, every
// message parsed by mailparser) and an HTTP server that keeps each request's raw body and answers as a webhook
// receiver or a group robot would.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string[];
  mail: ParsedMail;
}

export class SmtpReceiver {
  readonly mails: ReceivedMail[] = [];
  private readonly server: SMTPServer;

  constructor(username: string, password: string) {
    this.server = new SMTPServer({
      // plain SMTP with AUTH on loopback: STARTTLS would need a certificate the sender trusts
      disabledCommands: ['STARTTLS'],
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      logger: false,
      onAuth: (auth, _session, cb) => {
        if (auth.username === username && auth.password === password) cb(null, { user: username });
        else cb(new Error('invalid credentials'));
      },
      onData: (stream, session, cb) => {
        simpleParser(stream).then(
          (mail) => {
            this.mails.push({ to: session.envelope.rcptTo.map((r) => r.address), mail });
            cb();
          },
          (err: Error) => cb(err),
        );
      },
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.server.address() as AddressInfo).port)));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  to(address: string): ReceivedMail[] {
    return this.mails.filter((m) => m.to.includes(address));
  }
}

export interface ReceivedRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private server: http.Server | undefined;

  /**
   * @param answer what the receiver answers (a robot answers 200 with its own result code); undefined: no answer at
   * all, the request hangs until the receiver closes
   */
  constructor(private readonly answer: (r: ReceivedRequest) => { status: number; body: string } | undefined = () => ({ status: 200, body: 'ok' })) {}

  listen(port = 0): Promise<number> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(r);
        const a = this.answer(r);
        if (a !== undefined) res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
      });
    });
    this.server = server;
    return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return Promise.resolve();
    server.closeAllConnections();
    return new Promise((resolve) => server.close(() => resolve()));
  }
}
