// Benchmarks write their latest figures into docs/performance.md between markers
// `<!-- name -->` and `<!-- /name -->`, so the document always shows what a script printed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DOC = fileURLToPath(new URL('../docs/performance.md', import.meta.url));

export function writeDocsSection(name: string, lines: string[]): void {
  const text = existsSync(DOC) ? readFileSync(DOC, 'utf8') : '# Performance\n';
  const start = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  const block = `${start}\n${lines.join('\n')}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(DOC, next);
}
