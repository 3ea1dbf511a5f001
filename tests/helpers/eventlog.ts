/** Real event logs committed under tests/fixtures/eventlog (see PROVENANCE.md there). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../fixtures/eventlog/', import.meta.url));

export function eventlogFixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(dir + name));
}

export function eventlogFixtureText(name: string): string {
  return readFileSync(dir + name, 'utf8');
}

/** RTMR0..3 trustee's own tests list for its logs (deps/eventlog/src/lib.rs, test_rtmr_integrity). */
export const TRUSTEE_RTMRS: Record<string, [string, string, string, string]> = {
  'trustee-ccel-td-shim.bin': [
    '2dc712306a963eadb894ad47dbaa17df44814151555aee11cbb843becca88950ffd079664902e6f22c66f7c8213543f4',
    '0fa3be56af61208bbd179dc7b124988eb929319154663c539d6f46445ecac2fec287075047ff7bd1922829fec28cd3cf',
    '0'.repeat(96),
    '0'.repeat(96),
  ],
  'trustee-ccel-ovmf-direct-boot.bin': [
    '8566f998798db09443b244c62de9a3041fb02e2e6936c4396d784bba2e90177329ec5aba3bb484404f2ab9cc90abe193',
    '775b9f6bfe99f8a31396f0d0218e67ffa796d3b96ccf961cbb0deba48c79c00f082cda1a5567c1c16305f1fc210c13c6',
    '94eaf7a7bf398ed8d888c91057ae0261802e4f3df084213a76ca7f0b5055ac9d2241de43cd58d9e8b49c503bbf25f34a',
    '0'.repeat(96),
  ],
  'trustee-ccel-grub-gke.bin': [
    'bc9945139042cf2cc75caf920aa57f14884ecfd7e893bccc51250c8ce90eb53ce72741e6adaa18183eb1331a87d4544a',
    'c17cb288a4dee302bb9ed8d27257a168f3264ad68cab53757f37eeaa7039657fa887cad65cf910e0fdc435ff110f8a7b',
    '334aeba2c985f8886cea97d1ecffbd512769d528b9a94009583db667ad7d2faa7d37fa145d75b192ceee2d2f10b2eb6d',
    '0'.repeat(96),
  ],
};
