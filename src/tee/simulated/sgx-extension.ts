/**
 * The SGX extensions that Intel puts in PCK leaf certificates (OID 1.2.840.113741.1.13.1), built
 * with the same ASN.1 structure Intel uses so a DCAP verifier parses simulated and real PCK
 * certificates through one code path. Only the simulated PKI uses this; an RA-TLS certificate
 * must never carry this OID.
 */
import * as asn1js from 'asn1js';

export const OID_SGX_EXTENSIONS = '1.2.840.113741.1.13.1';
const OID = (suffix: string) => new asn1js.ObjectIdentifier({ value: `${OID_SGX_EXTENSIONS}.${suffix}` });
const oct = (b: Uint8Array) => new asn1js.OctetString({ valueHex: b.slice().buffer });
const int = (n: number) => new asn1js.Integer({ value: n });
const pair = (suffix: string, value: asn1js.AsnType) => new asn1js.Sequence({ value: [OID(suffix), value] });

/** Values carried by the SGX extensions of a PCK leaf. */
export interface SgxExtensionValues {
  ppid: Uint8Array; // 16
  /** SGX TCB components 1..16. */
  sgxTcbComponents: number[];
  pceSvn: number;
  cpuSvn: Uint8Array; // 16
  pceId: Uint8Array; // 2
  fmspc: Uint8Array; // 6
  /** 0 = Standard, 1 = Scalable (the type of Platform-CA-issued TDX-capable platforms). */
  sgxType: number;
  /** Present on Platform-CA leaves. */
  platformInstanceId?: Uint8Array; // 16
}

/** DER of the extension value (the SEQUENCE inside the extnValue OCTET STRING). */
export function encodeSgxExtensions(v: SgxExtensionValues): Uint8Array {
  if (v.sgxTcbComponents.length !== 16) throw new Error('SGX TCB needs exactly 16 components');
  const tcb = new asn1js.Sequence({
    value: [...v.sgxTcbComponents.map((svn, i) => pair(`2.${i + 1}`, int(svn))), pair('2.17', int(v.pceSvn)), pair('2.18', oct(v.cpuSvn))],
  });
  const items: asn1js.AsnType[] = [
    pair('1', oct(v.ppid)),
    pair('2', tcb),
    pair('3', oct(v.pceId)),
    pair('4', oct(v.fmspc)),
    pair('5', new asn1js.Enumerated({ value: v.sgxType })),
  ];
  if (v.platformInstanceId) {
    items.push(pair('6', oct(v.platformInstanceId)));
    // Configuration: dynamic platform, cached keys, SMT enabled, as on typical cloud hosts.
    items.push(
      pair(
        '7',
        new asn1js.Sequence({
          value: [
            pair('7.1', new asn1js.Boolean({ value: true })),
            pair('7.2', new asn1js.Boolean({ value: false })),
            pair('7.3', new asn1js.Boolean({ value: true })),
          ],
        }),
      ),
    );
  }
  return new Uint8Array(new asn1js.Sequence({ value: items }).toBER(false));
}
