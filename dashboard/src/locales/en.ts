// The en catalogue: every area file of locales/en/, merged ({ <area>: <the area's file> }, keys `<area>.<key>`).
// One chunk per language: the page loads the language it shows (i18n.ts), the other only when the user switches.
// Adding an area is adding its file: it is picked up here.
const files = import.meta.glob<Record<string, unknown>>('./en/*.json', { eager: true, import: 'default' });
const catalogue: Record<string, Record<string, unknown>> = {};
for (const [file, messages] of Object.entries(files)) {
  const area = /\/([^/]+)\.json$/.exec(file)?.[1];
  if (area) catalogue[area] = messages;
}
export default catalogue;
