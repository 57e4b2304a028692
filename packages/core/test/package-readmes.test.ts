import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// An npm package page shows the package's README alone: a link that only resolves inside the
// repository (../../docs/…) is broken there. Every relative link must stay inside the package and
// point at a file the package ships.
const packagesDir = fileURLToPath(new URL('../../', import.meta.url));
const packages = readdirSync(packagesDir).filter((name) => existsSync(join(packagesDir, name, 'README.md')));

/** Markdown links and images, `[text](target)` / `![alt](target)`, and HTML src/href attributes. */
function linkTargets(markdown: string): string[] {
  const withoutCode = markdown.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  const targets: string[] = [];
  for (const match of withoutCode.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
    targets.push(match[1]!);
  for (const match of withoutCode.matchAll(/\b(?:src|href)="([^"]+)"/g)) targets.push(match[1]!);
  return targets;
}

function shipped(packageDir: string, file: string): boolean {
  const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { files?: string[] };
  const path = relative(packageDir, file).split('\\').join('/');
  if (['README.md', 'package.json', 'LICENSE', 'CHANGELOG.md'].includes(path)) return true;
  return (manifest.files ?? []).some(
    (entry) => path === entry || path.startsWith(`${entry.replace(/\/$/, '')}/`),
  );
}

describe('package READMEs stand alone on npm', () => {
  it('finds the packages', () => {
    expect(packages).toEqual(expect.arrayContaining(['core', 'adapter-memory', 'adapter-kafka', 'cli']));
  });

  it.each(packages)('%s: every relative link points at a file the package ships', (name) => {
    const packageDir = join(packagesDir, name);
    const broken: string[] = [];
    for (const target of linkTargets(readFileSync(join(packageDir, 'README.md'), 'utf8'))) {
      if (/^(?:[a-z][a-z0-9+.-]*:|#)/i.test(target)) continue; // https:, mailto:, in-page anchors
      const file = resolve(packageDir, target.replace(/[#?].*$/, ''));
      const inside = !relative(packageDir, file).startsWith('..');
      if (!inside || !existsSync(file) || !shipped(packageDir, file)) broken.push(target);
    }
    expect(broken, `links in packages/${name}/README.md that only work in the repository`).toEqual([]);
  });

  it.each(packages)('%s: does not send the reader to the repository for the API', (name) => {
    const text = readFileSync(join(packagesDir, name, 'README.md'), 'utf8');
    expect(text).not.toMatch(/see the repository README/i);
  });

  it("core's README carries the API a reader needs: request/respond, retry defaults, a DI example", () => {
    const text = readFileSync(join(packagesDir, 'core', 'README.md'), 'utf8');
    expect(text).toContain('request<Req, Res>(type: string, body: Req');
    expect(text).toContain('respond<Req, Res>(type: string, handler');
    for (const row of [
      '| `maxAttempts` | 5 |',
      '| `initialDelayMs` | 1 000 |',
      '| `factor` | 2 |',
      '| `maxDelayMs` | 60 000 |',
    ]) {
      expect(text).toContain(row);
    }
    expect(text).toContain('createContainer(configFromEnv())');
    expect(text).toContain('"experimentalDecorators": true');
  });
});
