// What carries a simulated instrument to its clients: a Modbus TCP server, an RTU server on a serial
// bus or over TCP, or an MQTT publisher. One endpoint may serve several instruments (an RTU bus).
import type { ModbusUnit } from './modbus-unit.js';

export type Transport = 'tcp' | 'rtu' | 'rtu-over-tcp' | 'mqtt' | 'serial' | 'opcua';

export interface InstrumentEndpoint {
  readonly transport: Transport;
  /** the TCP port it listens on; 0 when it does not listen on TCP */
  readonly port: number;
  /** where a client finds it: host:port, a serial device, or a broker URL */
  readonly address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * A "disconnect" fault of one of its instruments: an endpoint of its own drops every connection and
   * refuses new ones for `ms`; a shared bus stays up (the unit falls silent through its fault set).
   */
  interrupt(ms: number): void;
}

export interface ModbusEndpoint extends InstrumentEndpoint {
  readonly transport: 'tcp' | 'rtu' | 'rtu-over-tcp';
  addUnit(unit: ModbusUnit): void;
}
