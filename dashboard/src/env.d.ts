declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent<object, object, unknown>;
  export default component;
}

/** the REST contract's routes without their schemas (vite.config.ts, contractRoutes) */
declare module 'virtual:labtrace-routes' {
  export const routes: Record<string, { method: string; path: string }>;
}
