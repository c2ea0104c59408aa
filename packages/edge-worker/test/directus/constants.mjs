/** Ports and credentials of the Directus integration tests (shared by the Node setup and the tests). */
export const DIRECTUS_TEST = {
  port: 18055,
  url: 'http://127.0.0.1:18055',
  controlPort: 18056,
  controlUrl: 'http://127.0.0.1:18056',
  /** The Worker as the Directus Flows reach it: through the control server, which can refuse them. */
  flowWorkerUrl: 'http://127.0.0.1:18056/to-worker',
  workerPort: 18057,
  workerUrl: 'http://127.0.0.1:18057',
  inspectorPort: 18058,
  syncToken: 'test-sync-token-0123456789',
  hookSecret: 'test-hook-secret',
  adminToken: 'test-admin-token',
  adminEmail: 'admin@example.com',
  adminPassword: 'test-admin-password',
  serverKey: 'sk_test_server_key',
};
