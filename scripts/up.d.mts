// Types for scripts/up.mjs, so the shop's end-to-end setup can start the local system from TypeScript.
export interface LocalSystemOptions {
  ports?: { shop?: number; worker?: number; directus?: number };
  stateDir?: string;
  directusHome?: string;
  logDir?: string;
  build?: boolean;
  /** Fire the Worker's Cron Triggers when due (`./attune up` does; default false). */
  crons?: boolean;
  inspectorPort?: number;
  /** Worker vars to override (with stateDir only), e.g. { HOLDOUT_PERCENT: '0' }. */
  vars?: Record<string, string>;
}
export interface LocalSystem {
  urls: { shop: string; worker: string; directus: string };
  ports: { shop: number; worker: number; directus: number };
  devVarsPath: string;
  directusHome: string;
  secrets: {
    identitySecret: string;
    adminToken: string;
    /** The demo site's privacy token: what the shop reads and erases people with. */
    privacyToken: string;
    serverKey: string;
    /** The Worker's attune-sync token. */
    directusToken: string;
    /** The shop's read-only catalog token (the attune-shop user). */
    shopDirectusToken: string;
    directusAdminEmail: string;
    directusAdminPassword: string;
  };
  stop(): Promise<void>;
}
export const REPO_ROOT: string;
export const DEFAULT_PORTS: { shop: number; worker: number; directus: number };
export function startLocalSystem(options?: LocalSystemOptions): Promise<LocalSystem>;
export function buildShopIfStale(options?: { force?: boolean }): void;
export function parseDotenv(text: string): Record<string, string>;
