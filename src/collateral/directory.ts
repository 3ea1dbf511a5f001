/**
 * Directory source: a folder of collateral sets in the seven-file layout (src/collateral/file.ts),
 * either directly in the folder or one per subdirectory, matched by the FMSPC in tcb_info.json.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collateral } from '../core/types.ts';
import { loadCollateralDir } from './file.ts';
import { collateralMatches } from './inspect.ts';
import type { CollateralRequest, CollateralSource } from './types.ts';

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Collateral from local directories; the first set (in name order) that matches and is current wins. */
export class DirectoryCollateralSource implements CollateralSource {
  readonly name: string;
  constructor(private readonly roots: string[]) {
    this.name = `directory:${roots.join(',')}`;
  }

  async get(request: CollateralRequest): Promise<Collateral | undefined> {
    const candidates: string[] = [];
    for (const root of this.roots) {
      if (await isFile(join(root, 'tcb_info.json'))) candidates.push(root);
      let entries: string[];
      try {
        entries = (await readdir(root, { withFileTypes: true }))
          .filter((e) => e.isDirectory())
          .map((e) => e.name)
          .sort();
      } catch {
        continue;
      }
      for (const e of entries) if (await isFile(join(root, e, 'tcb_info.json'))) candidates.push(join(root, e));
    }
    for (const dir of candidates) {
      let c: Collateral;
      try {
        c = await loadCollateralDir(dir);
      } catch {
        continue; // an incomplete set is not this request's collateral
      }
      if (collateralMatches(c, request)) return c;
    }
    return undefined;
  }
}
