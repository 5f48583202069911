/** glassbox: mechanistic interpretability for TypeScript. */
export * from './tensor/index.js';
