import type { TestUserConfig } from 'vitest/config';
export declare function reporters(name: string): NonNullable<TestUserConfig['reporters']>;
