// How a gateway reads an instrument (its profile's protocol), in the reader's language; a kind this dashboard does not
// know by name is shown as the gateway reported it, and an instrument whose gateway did not say is said to be so.
type Translate = (key: string) => string;

export function protocolName(protocol: string | null, t: Translate, te: (key: string) => boolean): string {
  if (protocol === null) return t('instruments.protocol.unknown');
  return te(`instruments.protocol.${protocol}`) ? t(`instruments.protocol.${protocol}`) : protocol;
}
