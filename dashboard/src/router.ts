// The dashboard's routes (hash history: a shared link such as #/runs/<id> works on any server path). Every view
// loads lazily, so the first page brings only what it shows; chart.js comes with the run views.
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router';

declare module 'vue-router' {
  interface RouteMeta {
    /** the catalogue key of the view's title (the tab's title: App.vue) */
    title?: string;
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'home', component: () => import('./views/HomeView.vue'), meta: { title: 'common.titles.home' } },
  { path: '/runs/:id', name: 'run', component: () => import('./views/RunLiveView.vue'), props: true, meta: { title: 'common.titles.run' } },
  {
    path: '/runs/:id/replay',
    name: 'replay',
    component: () => import('./views/RunReplayView.vue'),
    props: true,
    meta: { title: 'common.titles.replay' },
  },
  {
    path: '/certificates/:id',
    name: 'certificate',
    component: () => import('./views/CertificateDetailView.vue'),
    props: true,
    meta: { title: 'common.titles.certificate' },
  },
  { path: '/users', name: 'users', component: () => import('./views/UsersView.vue'), meta: { title: 'common.titles.users' } },
  { path: '/audit', name: 'audit', component: () => import('./views/AuditView.vue'), meta: { title: 'common.titles.audit' } },
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
export const certificateHref = (id: string): string => `#/certificates/${encodeURIComponent(id)}`;
