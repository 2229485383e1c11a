//! `offkit receipt`: site-signed receipts of applies ([`crate::apply::receipt`]) — issued from
//! the ledger, verified on the vendor's side.

use std::path::PathBuf;

use super::apply::ledger_row;
use super::common::{DbArgs, TrustArgs};
use super::{CliResult, Global, io_error, print_json};
use crate::apply::receipt::{check_kit, check_report, issue, verify};
use crate::trust::keys::SecretKey;

/// `offkit receipt …`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Site: sign a receipt of a recorded apply (a ledger entry; `offkit history` lists them).
    Issue(IssueArgs),
    /// Vendor: check a receipt against the site's public key(s), and optionally the kit it
    /// names.
    Verify(VerifyArgs),
}

/// Arguments of `offkit receipt issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The ledger entry (`#N` in `offkit history`).
    #[arg(long, value_name = "N")]
    pub entry: i64,
    /// The apply's JSON report (`apply --report`): included when its SHA-256 is the one the
    /// ledger recorded.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The site's private key (PKCS#8 PEM, mode 0600).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Where to write the receipt.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `offkit receipt verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The receipt file.
    pub receipt: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Also check that this kit file is the one the receipt is about.
    #[arg(long, value_name = "KIT")]
    pub kit: Option<PathBuf>,
}

/// Runs `offkit receipt …`.
pub fn run(cmd: Command, global: &Global) -> CliResult {
    match cmd {
        Command::Issue(a) => issue_cmd(a, global),
        Command::Verify(a) => verify_cmd(a, global),
    }
}

fn issue_cmd(args: IssueArgs, global: &Global) -> CliResult {
    let key = SecretKey::load(&args.key)?;
    let mut session = args.db.connect_existing()?;
    let row = ledger_row(&mut session, args.entry)?;
    let report = args
        .report
        .as_deref()
        .map(|p| check_report(&row, p))
        .transpose()?;
    let database = session.url().redacted();
    let bytes = issue(&row, &database, report.as_ref(), std::slice::from_ref(&key));
    crate::util::write_atomic(&args.out, &bytes, 0o644, true)
        .map_err(|e| io_error(format!("writing {}", args.out.display()), e))?;
    if global.json {
        return print_json(&serde_json::json!({
            "receipt": args.out.display().to_string(),
            "entry": row.id,
            "keyid": key.keyid().to_string(),
            "report_included": report.is_some(),
        }));
    }
    println!(
        "{}: receipt of ledger entry #{} ({} {}, {}) signed by {}{}",
        args.out.display(),
        row.id,
        row.kit_name,
        row.kit_version,
        row.outcome.as_str(),
        key.keyid(),
        if report.is_some() {
            ", with its report"
        } else {
            ""
        }
    );
    Ok(())
}

fn verify_cmd(args: VerifyArgs, global: &Global) -> CliResult {
    let policy = args.trust.policy()?;
    let receipt = verify(&args.receipt, &policy, args.trust.options().now)?;
    if let Some(kit) = &args.kit {
        check_kit(&receipt, &args.receipt, kit)?;
    }
    if global.json {
        return print_json(&receipt);
    }
    println!(
        "VERIFIED RECEIPT: {} {} (channel {}, sequence {}) {} at {}",
        receipt.entry("kit_name"),
        receipt.entry("kit_version"),
        receipt.entry("channel"),
        receipt.entry("sequence"),
        receipt.entry("outcome"),
        receipt.entry("applied_by"),
    );
    println!(
        "  started {}  finished {}",
        receipt.entry("started_at"),
        receipt.entry("finished_at")
    );
    match &receipt.kit {
        Some((name, sha)) => println!(
            "  kit {} sha256 {sha}{}",
            crate::kit::path::printable_text(name),
            if args.kit.is_some() {
                " (matches the kit given)"
            } else {
                ""
            }
        ),
        None => println!("  kit file not read by this attempt"),
    }
    println!("  manifest sha256 {}", receipt.manifest_sha256);
    for s in &receipt.signers {
        println!("  signed by {} ({})", s.keyid, s.name);
    }
    if receipt.predicate["report"].is_null() {
        println!("  the apply report is not included");
    }
    Ok(())
}
