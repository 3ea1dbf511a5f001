/** `ratls sim init`: create the SIMULATED TDX/DCAP world for machines without TDX. */
import type { Command } from 'commander';
import { type CliIo, UsageError } from '../io.ts';
import { initSimulatedWorld, type SimulatedMeasurements } from '../../tee/simulated/world.ts';
import { RatlsError } from '../../core/errors.ts';
import { TCB_STATUSES, type TcbStatus } from '../../core/types.ts';

interface InitOpts {
  dir: string;
  mrtd?: string;
  rtmr0?: string;
  rtmr1?: string;
  rtmr2?: string;
  rtmr3?: string;
  mrseam?: string;
  tdAttributes?: string;
  tcbStatus?: string;
}

/** Registers `sim init`. */
export function registerSimCommands(program: Command, io: CliIo): void {
  const sim = program.command('sim').description('SIMULATED TDX evidence for development and tests (never trusted by default)');
  sim
    .command('init')
    .description('Create a simulated DCAP world (root CA, PCK chain, QE, collateral signer) in DIR; DIR/root.pem is its root')
    .requiredOption('--dir <dir>', 'directory to create (holds private keys: keep it private, never commit it)')
    .option('--mrtd <hex>', 'MRTD the simulated quotes carry (48 bytes hex)')
    .option('--rtmr0 <hex>', 'RTMR0 (48 bytes hex)')
    .option('--rtmr1 <hex>', 'RTMR1 (48 bytes hex)')
    .option('--rtmr2 <hex>', 'RTMR2 (48 bytes hex)')
    .option('--rtmr3 <hex>', 'RTMR3 (48 bytes hex)')
    .option('--mrseam <hex>', 'MRSEAM (48 bytes hex)')
    .option('--td-attributes <hex>', 'TDATTRIBUTES (8 bytes hex)')
    .option('--tcb-status <status>', `TCB status of the platform in the simulated TCB info (${TCB_STATUSES.join(', ')})`)
    .action(async (o: InitOpts) => {
      if (o.tcbStatus !== undefined && !TCB_STATUSES.includes(o.tcbStatus as TcbStatus)) {
        throw new UsageError(`--tcb-status must be one of ${TCB_STATUSES.join(', ')}.`);
      }
      const m: Partial<SimulatedMeasurements> = {};
      if (o.mrtd) m.mrTd = o.mrtd;
      if (o.rtmr0) m.rtmr0 = o.rtmr0;
      if (o.rtmr1) m.rtmr1 = o.rtmr1;
      if (o.rtmr2) m.rtmr2 = o.rtmr2;
      if (o.rtmr3) m.rtmr3 = o.rtmr3;
      if (o.mrseam) m.mrSeam = o.mrseam;
      if (o.tdAttributes) m.tdAttributes = o.tdAttributes;
      try {
        const info = await initSimulatedWorld(o.dir, {
          ...(Object.keys(m).length > 0 ? { measurements: m } : {}),
          ...(o.tcbStatus ? { platformTcbStatus: o.tcbStatus as TcbStatus } : {}),
        });
        io.out(
          `${info.created ? 'Created' : 'Kept existing'} SIMULATED TDX world in ${info.dir} (FMSPC ${info.fmspc})\n` +
            `  root: ${info.rootPath}  (trust it only in tests: --root ${info.rootPath})\n` +
            (Object.keys(m).length > 0 ? `  measurements written to ${info.dir}/measurements.json\n` : '') +
            (!info.created && o.tcbStatus ? '  note: --tcb-status only applies when the world is created\n' : '') +
            '  The directory holds private keys (mode 0600): keep it private and never commit it.\n',
        );
        io.setExitCode(0);
      } catch (err) {
        if (err instanceof RatlsError) throw new UsageError(`${err.code}: ${err.message}`);
        throw err;
      }
    });
}
