// The dashboard's routes (hash history: a shared link such as #/runs/<id> works on any server path). Every view
// loads lazily, so the first page brings only what it shows; chart.js comes with the run views.
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router';
import { prefetchRun } from './run-prefetch';

declare module 'vue-router' {
  interface RouteMeta {
    /** the catalogue key of the view's title (the tab's title: App.vue) */
    title?: string;
    /** shown without signing in (a run shared by a link): App.vue renders it whatever the session */
    public?: boolean;
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'home', component: () => import('./views/HomeView.vue'), meta: { title: 'common.titles.home' } },
  { path: '/runs', name: 'runs', component: () => import('./views/RunsView.vue'), meta: { title: 'run.list.title' } },
  {
    path: '/share/:token',
    name: 'share',
    component: () => import('./views/ShareView.vue'),
    props: true,
    meta: { title: 'share.title', public: true },
  },
  {
    path: '/runs/:id',
    name: 'run',
    component: () => import('./views/RunLiveView.vue'),
    props: true,
    meta: { title: 'common.titles.run' },
    // the run's data travels while the view's code loads
    beforeEnter: (to) => {
      if (typeof to.params['id'] === 'string') prefetchRun(to.params['id']);
    },
  },
  {
    path: '/runs/:id/replay',
    name: 'replay',
    component: () => import('./views/RunReplayView.vue'),
    props: true,
    meta: { title: 'common.titles.replay' },
  },
  {
    path: '/certificates',
    name: 'certificates',
    component: () => import('./views/CertificatesView.vue'),
    meta: { title: 'certificate.listTitle' },
  },
  {
    path: '/certificates/:id',
    name: 'certificate',
    component: () => import('./views/CertificateDetailView.vue'),
    props: true,
    meta: { title: 'common.titles.certificate' },
  },
  { path: '/samples', name: 'samples', component: () => import('./views/SamplesView.vue'), meta: { title: 'samples.title' } },
  {
    path: '/samples/:id',
    name: 'sample',
    component: () => import('./views/SampleDetailView.vue'),
    props: true,
    meta: { title: 'samples.detailTitle' },
  },
  { path: '/methods', name: 'methods', component: () => import('./views/MethodsView.vue'), meta: { title: 'methods.title' } },
  {
    path: '/methods/:id',
    name: 'method',
    component: () => import('./views/MethodDetailView.vue'),
    props: true,
    meta: { title: 'methods.detailTitle' },
  },
  {
    path: '/instruments',
    name: 'instruments',
    component: () => import('./views/InstrumentsView.vue'),
    meta: { title: 'instruments.title' },
  },
  {
    path: '/instruments/:id',
    name: 'instrument',
    component: () => import('./views/InstrumentView.vue'),
    props: true,
    meta: { title: 'instruments.page.title' },
  },
  { path: '/users', name: 'users', component: () => import('./views/UsersView.vue'), meta: { title: 'common.titles.users' } },
  // the admin's tasks (the server refuses them to other roles; the nav shows them to admins only)
  { path: '/admin', name: 'admin', component: () => import('./views/admin/AdminView.vue'), meta: { title: 'admin.titles.home' } },
  {
    path: '/admin/accreditations',
    name: 'admin-accreditations',
    component: () => import('./views/admin/AccreditationsView.vue'),
    meta: { title: 'admin.titles.accreditations' },
  },
  {
    path: '/admin/gateways',
    name: 'admin-gateways',
    component: () => import('./views/admin/GatewaysView.vue'),
    meta: { title: 'admin.titles.gateways' },
  },
  { path: '/admin/tokens', name: 'admin-tokens', component: () => import('./views/admin/ApiTokensView.vue'), meta: { title: 'admin.titles.tokens' } },
  {
    path: '/admin/security',
    name: 'admin-security',
    component: () => import('./views/admin/SecurityEventsView.vue'),
    meta: { title: 'admin.titles.security' },
  },
  { path: '/admin/health', name: 'admin-health', component: () => import('./views/admin/HealthView.vue'), meta: { title: 'admin.titles.health' } },
  {
    path: '/admin/notifications',
    name: 'admin-notifications',
    component: () => import('./views/admin/NotificationsAdminView.vue'),
    meta: { title: 'admin.titles.notifications' },
  },
  // the lab's standing with its supervisor: the admin and auditors
  { path: '/standing', name: 'standing', component: () => import('./views/StandingView.vue'), meta: { title: 'standing.title' } },
  { path: '/audit', name: 'audit', component: () => import('./views/AuditView.vue'), meta: { title: 'common.titles.audit' } },
  { path: '/overview', name: 'overview', component: () => import('./views/OverviewView.vue'), meta: { title: 'overview.title' } },
  // the auditor's workspace: the verifier (and its worker) load with this view only
  { path: '/verify', name: 'verify', component: () => import('./views/VerifyView.vue'), meta: { title: 'verify.title' } },
  { path: '/settings', name: 'settings', component: () => import('./views/SettingsView.vue'), meta: { title: 'common.titles.settings' } },
  { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { title: 'common.titles.notFound' } },
];

export const router = createRouter({
  history: createWebHashHistory(),
  routes,
  // a new view starts at its top; back/forward restore where the user was
  scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
});

export const runHref = (id: string): string => `#/runs/${encodeURIComponent(id)}`;
export const replayHref = (id: string): string => `${runHref(id)}/replay`;
export const instrumentHref = (id: string): string => `#/instruments/${encodeURIComponent(id)}`;
export const certificateHref = (id: string): string => `#/certificates/${encodeURIComponent(id)}`;
export const sampleHref = (id: string): string => `#/samples/${encodeURIComponent(id)}`;
export const methodHref = (id: string): string => `#/methods/${encodeURIComponent(id)}`;
