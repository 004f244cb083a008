// The zh-CN catalogue as the dashboard sees it ({ <area>: <the area's file> }, keys `<area>.<key>`), for the lint
// rules of @intlify/eslint-plugin-vue-i18n, which map one file to one language and cannot prefix a key by file.
module.exports = require('./catalogue.js')('zh-CN');
