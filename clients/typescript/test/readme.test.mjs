// The TypeScript snippet of the repository README's "Use it from your app" runs as written.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startApp } from './helpers.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The first ```lang block after the README's "## Use it from your app". */
export function readmeSnippet(lang) {
  const readme = readFileSync(join(root, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Use it from your app'));
  const match = section.match(new RegExp('```' + lang + '\\n([\\s\\S]*?)```'));
  assert.ok(match, `no ${lang} snippet under "Use it from your app"`);
  return match[1];
}

let app;
before(async () => {
  app = await startApp();
});
after(() => app?.stop());

test('the README snippet creates a customer, meters a call and reads the balance', async () => {
  // Inside the package, so `import … from 'creditd'` resolves to this build.
  const dir = join(root, 'build');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'readme-snippet.mjs');
  writeFileSync(file, readmeSnippet('ts'));
  const { stdout } = await promisify(execFile)(process.execPath, [file], {
    env: { ...process.env, CREDITD_URL: app.url, CREDITD_KEY: app.key },
  });
  assert.equal(stdout.trim(), '1.25 3.75 3.75');
});
