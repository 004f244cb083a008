// A free loopback port for a test's server: below the ephemeral range (see protocols' test helper).
export { freePort } from '@labtrace/protocols/test/ports';
