export { LabtraceServer, SERVER_VERSION, DEFAULT_DASHBOARD_DIR } from './server.js';
export { loadServerConfig, resolveServerConfig, serverConfigSchema, type ServerConfig, type BrokerUser } from './config.js';
export { hashPassword, verifyPassword, randomPassword } from './broker/passwords.js';
export { Broker } from './broker/broker.js';
export { createLogger, type Logger } from './log.js';
