/**
 * Refuses to run the container test without what scripts/container/run.sh provides, saying so,
 * rather than letting every test fail on its own (or pass vacuously).
 */
import { execFileSync } from 'node:child_process';
import { DOCKER, imageUnderTest } from './helpers/stack.ts';

export default function setup(): void {
  const image = imageUnderTest();
  try {
    execFileSync(DOCKER, ['image', 'inspect', image], { stdio: 'ignore' });
  } catch {
    throw new Error(`No Docker engine answers, or it has no image ${image}: run the container test with \`npm run test:container\`.`);
  }
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('docker-compose is missing: `npm run test:container` installs it (as root), or apt-get install docker-compose.');
  }
  if (!process.env.RATLS_TSM_STANDIN) throw new Error('RATLS_TSM_STANDIN (the configfs-tsm stand-in binary) is not set: run `npm run test:container`.');
}
