// InfluxDB for Node processes (gateway, server): line protocol, writes and InfluxQL reads. A subpath of its own
// (@labtrace/protocols/influx), outside the main index, so the dashboard never bundles the InfluxDB client.
export * from './line-protocol.js';
export * from './write.js';
export * from './query.js';
export * from './records.js';
export * from './forwarder.js';
export * from './config.js';
