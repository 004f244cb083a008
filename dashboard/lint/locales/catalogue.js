// One language's catalogue merged from its area files (src/locales/<language>/<area>.json -> { <area>: ... }),
// exactly as src/i18n.ts merges them for the page.
const { readdirSync, readFileSync } = require('node:fs');
const path = require('node:path');

module.exports = function catalogue(language) {
  const dir = path.join(__dirname, '..', '..', 'src', 'locales', language);
  const messages = {};
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    messages[file.slice(0, -'.json'.length)] = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
  }
  return messages;
};
