// The part of fontkit (pdfkit's font engine) the report font check uses; fontkit ships no types.
declare module 'fontkit' {
  export interface Font {
    postscriptName: string;
    hasGlyphForCodePoint(codePoint: number): boolean;
    /** present on every fontkit font: how pdfkit tells a parsed font from a path or a buffer */
    layout(text: string): unknown;
  }
  export interface FontCollection {
    fonts: Font[];
    getFont(postscriptName: string): Font | null;
  }
  export function create(buffer: Buffer, postscriptName?: string): Font | FontCollection;
}
