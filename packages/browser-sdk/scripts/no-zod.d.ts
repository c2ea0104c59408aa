/**
 * Stands in for zod when scripts/build.mjs bundles the package's declarations
 * (tsconfig.dts.json): the published package has no zod, so its public types must not need it.
 */
export {};
