// Colour for people at a terminal: errors red, warnings yellow, pass green, fail red. Off when
// the stream is not a TTY, when NO_COLOR is set (no-color.org), or for TERM=dumb.

export type Paint = (text: string) => string;

const CODES = { red: 31, green: 32, yellow: 33, bold: 1 } as const;

export function colourOn(stream: { isTTY?: boolean }): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

export function painter(stream: { isTTY?: boolean }): Record<keyof typeof CODES, Paint> {
  const on = colourOn(stream);
  const paint = (code: number): Paint => (on ? (text) => `\x1b[${code}m${text}\x1b[0m` : (text) => text);
  return { red: paint(CODES.red), green: paint(CODES.green), yellow: paint(CODES.yellow), bold: paint(CODES.bold) };
}
