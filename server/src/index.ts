export { LabtraceServer, SERVER_VERSION, DEFAULT_DASHBOARD_DIR } from './server.js';
export { loadServerConfig, resolveServerConfig, serverConfigSchema, type ServerConfig, type BrokerUser } from './config.js';
export { hashPassword, verifyPassword, randomPassword } from './broker/passwords.js';
export { Broker } from './broker/broker.js';
export { createLogger, type Logger } from './log.js';
export { Users, ROLES, type Role, type Principal } from './auth/users.js';
export { POLICY, ruleFor, routesOf, type RouteRule } from './auth/policy.js';
export { AuditTrail, type AuditEntry } from './audit/audit-trail.js';
