// The gateway's OPC UA application certificate and trust list: a node-opcua PKI folder under the
// gateway's data directory, created at first use (own/certs, own/private, trusted/certs, rejected/certs,
// issuers/...). A server certificate the gateway has not been told to trust is refused and left in
// rejected/certs: an operator trusts it by moving it to trusted/certs.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { OPCUACertificateManager } from 'node-opcua-certificate-manager';

export const PKI_DIR = 'opcua-pki';
export const APPLICATION_NAME = 'labtrace-gateway';

export interface GatewayPki {
  manager: OPCUACertificateManager;
  rootDir: string;
  certificateFile: string;
  privateKeyFile: string;
  applicationUri: string;
  trustedDir: string;
  rejectedDir: string;
}

const stores = new Map<string, Promise<GatewayPki>>();

export function applicationUriOf(): string {
  return `urn:${os.hostname()}:labtrace:gateway`;
}

/** The PKI of the gateway whose data directory is `dataDir`: one per process and folder, made on first use. */
export function gatewayPki(dataDir: string): Promise<GatewayPki> {
  const rootDir = path.join(path.resolve(dataDir), PKI_DIR);
  let store = stores.get(rootDir);
  if (store === undefined) {
    store = openPki(rootDir);
    stores.set(rootDir, store);
    store.catch(() => stores.delete(rootDir));
  }
  return store;
}

async function openPki(rootDir: string): Promise<GatewayPki> {
  const { OPCUACertificateManager } = await import('node-opcua-certificate-manager');
  const manager = new OPCUACertificateManager({ rootFolder: rootDir, automaticallyAcceptUnknownCertificate: false, name: 'labtrace-gateway' });
  await manager.initialize();
  const certificateFile = path.join(rootDir, 'own', 'certs', 'gateway_certificate.pem');
  const applicationUri = applicationUriOf();
  if (!existsSync(certificateFile)) {
    await manager.createSelfSignedCertificate({
      subject: `/CN=${APPLICATION_NAME}@${os.hostname()}/O=labtrace`,
      applicationUri,
      dns: [os.hostname(), 'localhost'],
      ip: ['127.0.0.1'],
      startDate: new Date(Date.now() - 24 * 3600_000),
      validity: 365 * 5,
      outputFile: certificateFile,
    });
  }
  return {
    manager,
    rootDir,
    certificateFile,
    privateKeyFile: manager.privateKey,
    applicationUri,
    trustedDir: manager.trustedFolder,
    rejectedDir: manager.rejectedFolder,
  };
}
