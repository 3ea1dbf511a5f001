/**
 * D3: server-chosen text in reports could carry Unicode bidirectional formatting characters
 * (U+202E RIGHT-TO-LEFT OVERRIDE, U+2067 RIGHT-TO-LEFT ISOLATE, ...). clean() removed C0/C1
 * controls only, so a hostile server's model name (its runtime log is its own) reordered the rest
 * of its report line wherever the bidi algorithm applies (`ratls connect`'s status page in every
 * browser, terminals with bidi support): a digest or a "(pending ...)" note shown reversed or moved.
 * They are replaced like control characters now.
 */
import { describe, expect, it } from 'vitest';
import { clean } from '../../../src/verify/report.ts';
import { workloadLines, workloadRows } from '../../../src/client/workload-view.ts';
import type { WorkloadReport } from '../../../src/eventlog/workload-report.ts';

const BIDI = ['\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200e', '\u200f', '\u061c'];

function report(name: string): WorkloadReport {
  return {
    binding: 'claims',
    boot: null,
    dstack: null,
    runtime: {
      coveredBy: 'session evidence',
      covered: 1,
      pending: 1,
      images: [],
      removed: [],
      events: [],
      models: [{ name, digest: 'ab'.repeat(32), size: 10, seq: 2, pending: true }],
    },
  };
}

describe('bidirectional formatting characters never reach a report', () => {
  it.each(BIDI)('clean() replaces U+%s', (ch) => {
    expect(clean(`a${ch}b`)).toBe('a\uFFFDb');
  });

  it('a model name with RLO and RLI cannot reorder its workload row (text and page rows)', () => {
    const w = report('llama3\u202e:latest\u2067x');
    const lines = workloadLines(w).join('\n');
    for (const ch of BIDI) expect(lines).not.toContain(ch);
    expect(lines).toContain('llama3\uFFFD:latest\uFFFDx');
    for (const [k, v] of workloadRows(w)) for (const ch of BIDI) expect(k + v).not.toContain(ch);
  });

  it('ordinary right-to-left text stays readable (letters are not formatting characters)', () => {
    expect(clean('שלום مرحبا')).toBe('שלום مرحبا');
  });
});
