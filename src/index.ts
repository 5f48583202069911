/** glassbox: mechanistic interpretability for TypeScript. */
export * from './tensor/index.js';
export * from './io/index.js';
export * from './model/index.js';
