/**
 * Pinned trust anchors, as constants so the browser build needs no file access.
 * A test checks this equals certs/intel-sgx-root-ca.pem.
 */
import { constantTimeEqual } from '../core/bytes.ts';
import { rootToDer } from './x509.ts';

/** Intel SGX Root CA (CN=Intel SGX Root CA, O=Intel Corporation). */
export const INTEL_SGX_ROOT_CA_PEM = `-----BEGIN CERTIFICATE-----
MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw
aDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv
cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJ
BgNVBAYTAlVTMB4XDTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgG
A1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENvcnBvcmF0
aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYT
AlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi7
1OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOB
uzCBuDAfBgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJ
MEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVkc2VydmljZXMuaW50
ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SV
Ur9QGzknBqwwDgYDVR0PAQH/BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYI
KoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg
AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=
-----END CERTIFICATE-----
`;

/** SHA-256 of the DER encoding of {@link INTEL_SGX_ROOT_CA_PEM}, lower-case hex. */
export const INTEL_SGX_ROOT_CA_SHA256 = '44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3';

/**
 * Public key (uncompressed P-256 point) of Intel's pre-production (SBX, "sandbox") root CA. That
 * root has the very subject name of the production root, "Intel SGX Root CA", and signs the PCK
 * certificates and collateral of Intel's pre-production platforms and services; it is recognised
 * only to say so when refusing it. Source: Intel's DCAP repository (the servtd_attest test's
 * "Intel Root Public Key"), which Open Enclave documents as the pre-production root's key.
 */
export const INTEL_SGX_PREPRODUCTION_ROOT_KEY_HEX =
  '044ffa0ffd561cdad6c0f98d308c8128c5b927a27332c8e8eb13f6be42b571d6466f53c644ffc2ffc1028220e49a4966cf02f32e2fb4d349bb2cbaed289037a02d';

let intelRootDer: Uint8Array | undefined;

/**
 * True when `root` (PEM or DER) is the Intel SGX Root CA: its DER equals the pinned root's DER,
 * whose SHA-256 is {@link INTEL_SGX_ROOT_CA_SHA256}. Line wrapping and whitespace do not matter;
 * unreadable input is not Intel's root.
 */
export function isIntelRoot(root: string | Uint8Array): boolean {
  let der: Uint8Array;
  try {
    der = rootToDer(root);
  } catch {
    return false;
  }
  intelRootDer ??= rootToDer(INTEL_SGX_ROOT_CA_PEM);
  return constantTimeEqual(der, intelRootDer);
}
