// Kept while the components move to composables/useSession: the same session state and actions.
export { session, checkSession, login, logout, changePassword } from './composables/useSession';
export type { SessionUser } from './composables/useSession';
