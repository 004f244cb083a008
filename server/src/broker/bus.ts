// What ingest needs of MQTT, whether the server runs its own broker (Aedes) or is a client of the
// lab's existing one (Mosquitto, EMQX): gateway messages in, acknowledgements and commands out.
import type { EventEmitter } from 'node:events';

export interface BusEvents {
  /** a gateway's client connected (embedded broker: authenticated connection; external: its BIRTH) */
  gatewayConnected: [gateway: string];
  /** a gateway's client went away (embedded: connection closed; external: its DEATH) */
  gatewayDisconnected: [gateway: string];
  /** a message published by a client other than the server itself */
  message: [topic: string, payload: Buffer];
}

export interface MessageBus extends EventEmitter<BusEvents> {
  /** Starts listening (embedded) or connects and subscribes (external). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Publishes as the server (ACK, CMD); resolves when the message is handed to the broker. */
  publish(topic: string, payload: string, qos?: 0 | 1): Promise<void>;
  /** true while the broker runs (embedded) or the connection is up (external) */
  readonly running: boolean;
  connectedGateways(): string[];
  /** true when this node receives only part of each gateway's DATA (an MQTT shared subscription with other nodes) */
  readonly sharedIngest?: boolean;
}
