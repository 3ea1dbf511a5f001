/** Builds a client's collateral sources from policy settings (Node: disk cache, directories, PCS). */
import type { CollateralSettings } from '../verify/policy-file.ts';
import { DiskCacheCollateralSource } from './cache.ts';
import { ChainedCollateralSource } from './chain.ts';
import { DirectoryCollateralSource } from './directory.ts';
import { INTEL_PCS_URL, PcsCollateralSource } from './pcs.ts';
import type { CollateralSource } from './types.ts';

/**
 * Builds the client's sources from policy settings (the stapled source is per certificate and not
 * included). Offline: cache and directories only. Online: PCCS then PCS (Intel's by default),
 * each behind the disk cache when one is configured.
 */
export function collateralSourcesFromSettings(settings: CollateralSettings): CollateralSource[] {
  const network: CollateralSource[] = [];
  if (!settings.offline) {
    if (settings.pccsUrl) network.push(new PcsCollateralSource({ baseUrl: settings.pccsUrl }));
    network.push(new PcsCollateralSource({ baseUrl: settings.pcsUrl ?? INTEL_PCS_URL }));
  }
  const out: CollateralSource[] = [];
  if (settings.cacheDir) {
    out.push(new DiskCacheCollateralSource({ dir: settings.cacheDir, upstream: network.length > 0 ? new ChainedCollateralSource(network) : undefined }));
  } else {
    out.push(...network);
  }
  if (settings.directories && settings.directories.length > 0) out.unshift(new DirectoryCollateralSource(settings.directories));
  return out;
}
