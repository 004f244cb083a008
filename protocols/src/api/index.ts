// The REST API's contract (routes, request and response schemas), shared by the server and the dashboard.
export * from './contract.js';
