// The supervisor's console (supervisor.html), served by `labtrace supervisor`: the labs it follows, their tiers,
// findings and checks, and the published rules, in zh-CN or English, through the supervisor's API and its token.
import { createApp } from 'vue';
import App from './App.vue';
import { i18n } from './i18n';
import '../style.css';
import './console.css';

createApp(App).use(i18n).mount('#app');
