import { createApp } from 'vue';
import App from './App.vue';
import { checkSession } from './composables/useSession';
import { firstLanguage, i18n } from './i18n';
import { router } from './router';
import './style.css';

// who is signed in is asked at once, while the language's catalogue and the view's code load
void checkSession();
const app = createApp(App).use(i18n).use(router);
// the first render waits for the language it is shown in (a failed load still shows the page, with the keys)
void firstLanguage.finally(() => app.mount('#app'));
