/** Types of constants.mjs. */
export declare const DIRECTUS_TEST: {
  port: number;
  url: string;
  controlPort: number;
  controlUrl: string;
  flowWorkerUrl: string;
  workerPort: number;
  workerUrl: string;
  inspectorPort: number;
  syncToken: string;
  hookSecret: string;
  adminToken: string;
  adminEmail: string;
  adminPassword: string;
  serverKey: string;
};
