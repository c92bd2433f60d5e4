/** Rendering a report in headless Chromium (Debian's package), and reading the PNG it writes. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

const BASE = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--hide-scrollbars',
  '--no-first-run',
  '--disable-dev-shm-usage',
];

export function screenshot(html: string, png: string, size = '1400,2400'): void {
  execFileSync(CHROMIUM!, [...BASE, `--screenshot=${png}`, `--window-size=${size}`, pathToFileURL(html).href], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 60_000,
  });
}

/** The DOM after Chromium parsed and laid out the page. */
export function renderedDom(html: string): string {
  return execFileSync(CHROMIUM!, [...BASE, '--dump-dom', pathToFileURL(html).href], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
}

/** Width, height and the share of pixels that are not white (pngjs decodes: any colour type, any filter). */
export function pngStats(path: string): { width: number; height: number; inked: number } {
  const buf = readFileSync(path);
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error(`${path} is not a PNG`);
  const png = PNG.sync.read(buf);
  let inked = 0;
  // RGBA, 4 bytes a pixel.
  for (let o = 0; o < png.data.length; o += 4)
    if (png.data[o]! < 240 || png.data[o + 1]! < 240 || png.data[o + 2]! < 240) inked++;
  return { width: png.width, height: png.height, inked: inked / (png.width * png.height) };
}
