export { Simulator, type SimulatorOptions } from './simulator.js';
export { SimInstrument } from './sim-instrument.js';
export { RegisterImage } from './register-image.js';
export { ModbusTcpServer } from './modbus-tcp-server.js';
export { loadSimConfig, loadProfileFile, simConfigSchema, type SimConfig, type ResolvedSimInstrument } from './config.js';
export { createModel, MODEL_KINDS, type ModelKind } from './models/index.js';
