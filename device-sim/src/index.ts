export { Simulator, DEFAULT_PUBLISH_TICKS, type SimulatorOptions } from './simulator.js';
export { SimInstrument, type SimValue } from './sim-instrument.js';
export { RegisterImage } from './register-image.js';
export { ModbusUnit, type UnitReply } from './modbus-unit.js';
export { ModbusTcpServer, type ModbusTcpServerOptions } from './modbus-tcp-server.js';
export { ModbusRtuTcpServer, type ModbusRtuTcpServerOptions } from './modbus-rtu-tcp-server.js';
export { ModbusRtuSerialServer, type ModbusRtuSerialServerOptions } from './modbus-rtu-serial-server.js';
export { BalanceServer, type BalanceServerOptions } from './balance-server.js';
export { ScpiServer, type ScpiServerOptions } from './scpi-server.js';
export { MqttPublisher, type MqttPublisherOptions } from './mqtt-publisher.js';
export { PayloadBuilder, compilePath, setAtPath } from './mqtt-payload.js';
export { RtuFramer, encodeRtuFrame, crcValid, silenceIntervalMs, requestFrameLength, type SerialFormat } from './rtu-framing.js';
export type { InstrumentEndpoint, ModbusEndpoint, Transport } from './endpoint.js';
export { FaultSet, faultSchema, FAULT_KINDS, FAULT_VALUE_FIELD, type Fault, type FaultKind, type ActiveFault } from './faults.js';
export { loadSimConfig, loadProfileFile, simConfigSchema, type SimConfig, type ResolvedSimInstrument } from './config.js';
export { createModel, MODEL_KINDS, type ModelKind } from './models/index.js';
export { UTS_KN } from './models/universal-testing-machine.js';
export { noise } from './models/model.js';
export {
  FileDropper,
  resultRows,
  resultCsv,
  RESULT_FILE_KINDS,
  type ResultFileKind,
  type ResultRow,
  type WrittenFile,
  type DropperOptions,
} from './result-files.js';
export { OpcuaServer, SIM_NAMESPACE, type OpcuaServerOptions, type OpcuaSimUser } from './opcua-server.js';
