//! dcap-qvl-verify: runs dcap-qvl's `QuoteVerifier::verify` on one quote with a seven-file
//! collateral directory at a given time, and prints one JSON line with the verdict and the time
//! each run took. Test tooling for ratls-proxy's differential tests and bench; not a product.
//!
//! Usage: dcap-qvl-verify --quote FILE --collateral DIR --now UNIX_SECONDS [--allow-debug] [--runs N]

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuoteCollateralV3;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Intel's PCS v4 answer shape: the signature covers the exact text of the inner object, so the
/// inner object is kept as raw text, never re-serialised.
#[derive(Deserialize)]
struct Signed<'a> {
    #[serde(rename = "tcbInfo", alias = "enclaveIdentity", borrow)]
    body: &'a RawValue,
    signature: String,
}

struct Args {
    quote: String,
    collateral: String,
    now: u64,
    allow_debug: bool,
    runs: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut quote = None;
    let mut collateral = None;
    let mut now = None;
    let mut allow_debug = false;
    let mut runs = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quote" => quote = Some(value("--quote")?),
            "--collateral" => collateral = Some(value("--collateral")?),
            "--now" => now = Some(value("--now")?.parse::<u64>().map_err(|e| format!("--now: {e}"))?),
            "--runs" => runs = value("--runs")?.parse::<usize>().map_err(|e| format!("--runs: {e}"))?,
            "--allow-debug" => allow_debug = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        quote: quote.ok_or("--quote is required")?,
        collateral: collateral.ok_or("--collateral is required")?,
        now: now.ok_or("--now is required")?,
        allow_debug,
        runs: runs.max(1),
    })
}

fn read_text(dir: &Path, name: &str) -> Result<String, String> {
    fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

fn read_bytes(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

fn split_signed(text: &str, name: &str) -> Result<(String, Vec<u8>), String> {
    let s: Signed = serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
    let sig = hex::decode(s.signature.trim()).map_err(|e| format!("{name} signature: {e}"))?;
    Ok((s.body.get().to_string(), sig))
}

fn load_collateral(dir: &Path) -> Result<QuoteCollateralV3, String> {
    let (tcb_info, tcb_info_signature) = split_signed(&read_text(dir, "tcb_info.json")?, "tcb_info.json")?;
    let (qe_identity, qe_identity_signature) = split_signed(&read_text(dir, "qe_identity.json")?, "qe_identity.json")?;
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain: read_text(dir, "pck_crl_issuer_chain.pem")?,
        root_ca_crl: read_bytes(dir, "root_ca_crl.der")?,
        pck_crl: read_bytes(dir, "pck_crl.der")?,
        tcb_info_issuer_chain: read_text(dir, "tcb_info_issuer_chain.pem")?,
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: read_text(dir, "qe_identity_issuer_chain.pem")?,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    })
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dcap-qvl-verify: {e}");
            return ExitCode::from(2);
        }
    };
    let quote = match fs::read(&args.quote) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("dcap-qvl-verify: {}: {e}", args.quote);
            return ExitCode::from(2);
        }
    };
    let collateral = match load_collateral(Path::new(&args.collateral)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dcap-qvl-verify: {e}");
            return ExitCode::from(2);
        }
    };
    let verifier = QuoteVerifier::new_prod().allow_debug(args.allow_debug);
    let mut times_ns = Vec::with_capacity(args.runs);
    let mut verdict = String::new();
    for _ in 0..args.runs {
        let t = Instant::now();
        let r = verifier.verify(&quote, &collateral, args.now);
        times_ns.push(t.elapsed().as_nanos() as u64);
        verdict = match r {
            Ok(rep) => {
                let ids: Vec<String> = rep.advisory_ids.iter().map(|s| json_str(s)).collect();
                format!(
                    "\"ok\":true,\"status\":{},\"advisoryIds\":[{}],\"error\":null",
                    json_str(&rep.status),
                    ids.join(",")
                )
            }
            Err(e) => format!("\"ok\":false,\"status\":null,\"advisoryIds\":[],\"error\":{}", json_str(&format!("{e:#}"))),
        };
    }
    let times: Vec<String> = times_ns.iter().map(|t| t.to_string()).collect();
    println!("{{\"tool\":\"dcap-qvl\",{verdict},\"timesNs\":[{}]}}", times.join(","));
    ExitCode::SUCCESS
}
