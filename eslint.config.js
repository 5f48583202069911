import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first (docs/architecture.md says why each sits where it does): a
 * layer may import the layers before it and never one after it. viz and model sit side by side
 * and import neither each other. `npm run lint` (part of `npm test`) fails on an upward import.
 */
const LAYERS = ['tensor', 'io', 'viz', 'model', 'train', 'analysis', 'sae', 'circuits', 'server', 'recipes', 'cli'];
const SIDEWAYS = { viz: ['model'], model: ['viz'] };

const layerRules = LAYERS.map((layer, i) => ({
  files: [`src/${layer}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...LAYERS.slice(i + 1).map((up) => [up, 'below']),
          ...(SIDEWAYS[layer] ?? []).map((side) => [side, 'beside']),
        ].map(([other, where]) => ({
          group: [`**/${other}/*`, `**/${other}/**`],
          message: `src/${layer} sits ${where} src/${other} in the layer order (docs/architecture.md): it must not import it.`,
        })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tmp/', 'web/dist/', 'web/dist-static/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The workbench shares the server's API types (src/server/schemas.ts), as types only: no
    // server code (nor Node) in the browser bundle.
    files: ['web/src/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/src/**'], allowTypeImports: true, message: 'web/src may import only types from src/' }] },
      ],
    },
  },
  ...layerRules,
);
