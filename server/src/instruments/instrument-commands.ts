// Zero and tare from the lab's staff: the server asks the instrument's gateway, which sends the command to the
// balance between two polls, if the balance's profile allows it (the gateway announces what it allows in its BIRTH),
// and signs what the balance answered as a record on the channel `<point>.command`. The request itself is recorded
// in the audit trail (who asked, when) before it is handed to the broker: a zero or tare changes every weight read
// after it, so a reviewer sees both who asked and what the balance did.
import express, { type Request } from 'express';
import type { Kysely } from 'kysely';
import { LabtraceError, topicFor, type CmdMessage, type InstrumentCommand } from '@labtrace/protocols';
import { api } from '@labtrace/protocols/api';
import { notFound } from '../api/errors.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import { principalOf, routeOf } from '../auth/policy.js';
import type { Tables } from '../store/database.js';
import type { InstrumentRecord } from '../store/registry.js';

export interface InstrumentCommandsDeps {
  db: Kysely<Tables>;
  audit: Pick<AuditTrail, 'recordIn'>;
  instrument: (id: string) => Promise<InstrumentRecord | undefined>;
  /** the gateways connected to this node's broker (or the shared one) now */
  connectedGateways: () => Iterable<string>;
  /** publishes on the broker, resolves once handed over (QoS 1) */
  publish: (topic: string, payload: string) => Promise<void>;
  lab: string;
  clock?: () => number;
}

export interface SentCommand {
  instrument: string;
  gateway: string;
  command: InstrumentCommand;
  at: number;
}

export class InstrumentCommands {
  private readonly now: () => number;

  constructor(private readonly deps: InstrumentCommandsDeps) {
    this.now = deps.clock ?? Date.now;
  }

  /**
   * Asks for `command` on `id`. Refused (nothing recorded, nothing sent) when the instrument is unknown, when its
   * gateway does not send that command to it, or when the gateway is not connected: its session is not kept, so a
   * command published meanwhile would be lost rather than sent late.
   */
  async send(actor: { username: string; role: string }, id: string, command: InstrumentCommand): Promise<SentCommand> {
    const instrument = await this.deps.instrument(id);
    if (!instrument) throw notFound('instrument', id);
    if (!instrument.commands.includes(command)) {
      const allowed = instrument.commands.length === 0 ? 'none' : instrument.commands.join(', ');
      throw new LabtraceError(
        'E_CONFLICT',
        `command: instrument "${id}" does not take "${command}" (its gateway sends: ${allowed}; a balance profile's allowCommands says which)`,
        { reason: 'instrument.command-not-taken', params: { instrument: id, command, allowed } },
      );
    }
    if (![...this.deps.connectedGateways()].includes(instrument.gateway)) {
      throw new LabtraceError(
        'E_CONFLICT',
        `command: the gateway "${instrument.gateway}" of instrument "${id}" is not connected; ask again once it is`,
        {
          reason: 'instrument.gateway-offline',
          params: { instrument: id, gateway: instrument.gateway },
        },
      );
    }
    const at = this.now();
    await this.deps.db.transaction().execute((trx) =>
      this.deps.audit.recordIn(trx, actor, {
        action: 'create',
        recordType: 'instrument-command',
        recordId: id,
        newValue: { command, gateway: instrument.gateway, at },
      }),
    );
    const message: CmdMessage = { v: 1, cmd: 'instrument', instrument: id, command };
    await this.deps.publish(topicFor(this.deps.lab, instrument.gateway, 'CMD'), JSON.stringify(message));
    return { instrument: id, gateway: instrument.gateway, command, at };
  }
}

export function instrumentCommandRoutes(commands: InstrumentCommands): express.Router {
  const router = express.Router();
  const who = (req: Request): { username: string; role: string } => {
    const principal = principalOf(req);
    if (!principal) throw new LabtraceError('E_AUTH', 'sign in first');
    return { username: principal.username, role: principal.role };
  };
  routeOf(router, api.sendInstrumentCommand, async (req, res, { params: { id }, body }) => {
    res.status(202).json(await commands.send(who(req), id, body.command));
  });
  return router;
}
