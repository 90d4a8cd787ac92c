export * from './alert.ts';
export * from './sample.ts';
