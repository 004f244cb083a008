export * from './errors.js';
export * from './validation.js';
export * from './modbus/codec.js';
export * from './profile.js';
export * from './measurement.js';
export type * from './live.js';
export * from './config-text.js';
export * from './modbus/pdu.js';
export * from './modbus/frame.js';
