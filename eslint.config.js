// Lint: typescript-eslint with type information (no floating or misused promises); the dashboard's Vue files with
// eslint-plugin-vue and @intlify/eslint-plugin-vue-i18n (no user-visible text outside the catalogues, no key missing).
import js from '@eslint/js';
import intlify from '@intlify/eslint-plugin-vue-i18n';
import pluginVue from 'eslint-plugin-vue';
import tseslint from 'typescript-eslint';
import vueParser from 'vue-eslint-parser';

/**
 * The dashboard files already moved to the catalogues, where raw text is an error. The other views and components
 * are being converted; each joins this list when it is (then the list gives way to all of dashboard/src).
 */

/** text that needs no translation: numbers, units and symbols, punctuation, separators */
const NOT_WORDS = String.raw`^[\s\d.,:;()[\]{}<>+\-−–—=×÷±%‰°·•/\\|#*~^_'"!?…@&$€¥¢£→←↑↓✓✗]*$`;

export default tseslint.config(
  { ignores: ['**/dist/**', 'dashboard/test-dist/**', '**/node_modules/**', 'data/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...pluginVue.configs['flat/recommended'].map((config) => ({ ...config, files: ['dashboard/**/*.vue'] })),
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
  },
  {
    // Vue single-file components: the template by vue-eslint-parser, <script lang="ts"> by typescript-eslint with
    // the dashboard's types
    files: ['dashboard/**/*.vue'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parser: vueParser,
      parserOptions: {
        parser: tseslint.parser,
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
        extraFileExtensions: ['.vue'],
        sourceType: 'module',
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // prettier formats the templates
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
      'vue/html-self-closing': 'off',
      'vue/html-indent': 'off',
      'vue/html-closing-bracket-newline': 'off',
    },
  },
  {
    // the catalogues' keys: every literal key of t()/$t() exists (catalogues are split by area: the lint reads them
    // merged per language, dashboard/lint/locales/<language>.js; dashboard/test/catalogues.test.js checks the rest)
    files: ['dashboard/src/**/*.{vue,ts}'],
    plugins: { '@intlify/vue-i18n': intlify },
    settings: {
      'vue-i18n': {
        localeDir: { pattern: './dashboard/lint/locales/*.js', localeKey: 'file' },
        messageSyntaxVersion: '^11.0.0',
      },
    },
    rules: {
      '@intlify/vue-i18n/no-missing-keys': 'error',
      '@intlify/vue-i18n/no-deprecated-tc': 'error',
      '@intlify/vue-i18n/no-html-messages': 'error',
      '@intlify/vue-i18n/valid-message-syntax': 'error',
    },
  },
  {
    // the supervisor's console has catalogues of its own, one file per language (src/supervisor/locales/<language>.json)
    files: ['dashboard/src/supervisor/**/*.{vue,ts}'],
    settings: {
      'vue-i18n': {
        localeDir: { pattern: './dashboard/src/supervisor/locales/*.json', localeKey: 'file' },
        messageSyntaxVersion: '^11.0.0',
      },
    },
  },
  {
    files: ['dashboard/src/**/*.vue'],
    rules: {
      '@intlify/vue-i18n/no-raw-text': [
        'error',
        { ignorePattern: NOT_WORDS, attributes: { '/.+/': ['title', 'aria-label', 'alt', 'placeholder', 'label'] } },
      ],
    },
  },
  {
    files: ['dashboard/**/*.{ts,vue}'],
    rules: {
      // `const { t } = useI18n()` is how vue-i18n is used; its functions do not rely on `this`
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    files: ['dashboard/lint/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' } },
  },
  {
    files: ['dashboard/test/**/*.js'],
    // functions these tests run in the page (page.evaluate, waitForFunction) use the page's globals
    languageOptions: {
      globals: {
        document: 'readonly',
        window: 'readonly',
        navigator: 'readonly',
        Buffer: 'readonly',
        getComputedStyle: 'readonly',
        performance: 'readonly',
        requestAnimationFrame: 'readonly',
        location: 'readonly',
      },
    },
  },
);
