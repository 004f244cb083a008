export { Gateway, GATEWAY_VERSION } from './gateway.js';
export { loadGatewayConfig, loadProfileFile, gatewayConfigSchema, type GatewayConfig, type ResolvedGatewayConfig } from './config.js';
export { InstrumentPoller, engineeringValue, type PolledSample, type InstrumentHealth } from './modbus/instrument-poller.js';
export { planReads, DEFAULT_PLAN_OPTIONS, type ReadRequest, type PlanOptions } from './modbus/read-plan.js';
export { MqttUplink } from './uplink/mqtt-uplink.js';
export { Sequencer } from './sequencer.js';
export { createLogger, type Logger } from './log.js';
