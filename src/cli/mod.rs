//! The command line: one file per command group, each with its clap `Args` and a `run()`.
//!
//! Commands parse and validate their arguments first and do I/O after. Errors carry the exit code
//! they stand for ([`crate::exit::Exit`]); `main` prints them with their whole cause chain.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::{Exit, ExitCoded};

pub mod apply;
pub mod audit;
pub mod build;
pub mod common;
pub mod diff;
pub mod extract;
pub mod inspect;
mod journaled;
pub mod keygen;
pub mod kitview;
pub mod manuals;
pub mod migrations;
pub mod parts;
pub mod receipt;
pub mod sign;
pub mod store;
pub mod transfer;
pub mod trust;
pub mod verify;

/// A command's failure: what went wrong and which exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// The error with its cause chain.
    pub error: anyhow::Error,
}

impl CliError {
    /// A failure with an explicit exit code.
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit,
            error: error.into(),
        }
    }

    /// A failure described by a message.
    pub fn msg(exit: Exit, message: impl std::fmt::Display) -> Self {
        CliError {
            exit,
            error: anyhow::anyhow!("{message}"),
        }
    }
}

impl<E> From<E> for CliError
where
    E: ExitCoded + std::error::Error + Send + Sync + 'static,
{
    fn from(e: E) -> Self {
        CliError {
            exit: e.exit(),
            error: e.into(),
        }
    }
}

/// What a command returns.
pub type CliResult = Result<(), CliError>;

/// Wraps an I/O error with what was being done, as an [`Exit::Io`] failure.
pub fn io_error(context: impl std::fmt::Display, e: std::io::Error) -> CliError {
    CliError::new(Exit::Io, anyhow::Error::new(e).context(context.to_string()))
}

/// Options every command understands.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Print machine-readable JSON on stdout instead of human text.
    #[arg(long, global = true)]
    pub json: bool,
    /// How to show the progress of long work (verifying, seeding, copying) on stderr: a bar on a
    /// terminal and plain `Progress: …` lines elsewhere (auto), always one of them, or nothing.
    #[arg(long, global = true, value_enum, default_value_t = crate::report::progress::ProgressMode::Auto)]
    pub progress: crate::report::progress::ProgressMode,
    /// Threads that decompress a kit's payload frames side by side while it is verified (default:
    /// the machine's cores, at most 2; 1 decodes one stream). Each thread holds about two frames
    /// of 8 MiB, beside four shared ones (docs/BENCHMARKS.md).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
}

/// offkit: build, sign, verify and apply offline kits.
/// `offkit --version`: the tool's version, the kit format it writes and reads, and the source
/// revision it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (kit formats offkit/v1 and offkit/v2, source ",
    env!("OFFKIT_SOURCE_REVISION"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "offkit", version = VERSION, about, after_help = crate::exit::table_text())]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate an Ed25519 signing key pair.
    Keygen(keygen::Args),
    /// Build and sign a kit from a kit source folder.
    Build(build::Args),
    /// Add a co-signer's signature to a built kit (verifies it first).
    Sign(sign::Args),
    /// Verify a kit against trusted keys in one streaming pass (writes nothing).
    Verify(verify::Args),
    /// Show what a kit contains and who signed it.
    Inspect(inspect::Args),
    /// Verify a kit, then write its files into a folder (all or nothing).
    Extract(extract::Args),
    /// What changed from one kit to another (migrations, seeds, SBOM packages, signers, fields).
    Diff(diff::Args),
    /// Cut a kit into parts of at most a given size (removable media), at frame boundaries.
    Split(parts::SplitArgs),
    /// Put a split kit's parts back together, byte for byte (each part checked first).
    Join(parts::JoinArgs),
    /// Verify a kit, then apply it to the database and object store (once, on record).
    Apply(apply::Args),
    /// What of a kit is applied, pending or conflicting at this site.
    Status(apply::StatusArgs),
    /// The ledger of kit applications (what was applied where and when).
    History(apply::HistoryArgs),
    /// Inspect, verify, run, roll back and repair database migrations.
    #[command(subcommand)]
    Migrations(migrations::Command),
    /// Check object stores, list and fetch objects, seed a folder.
    #[command(subcommand)]
    Store(store::Command),
    /// An auditor's report: one self-contained HTML page on a kit and/or a site's ledger.
    Report(audit::Args),
    /// Site-signed receipts of applies: issue from the ledger, verify on the vendor's side.
    #[command(subcommand)]
    Receipt(receipt::Command),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(manuals::CompletionsArgs),
    /// Write a man page for offkit and for every command into a folder.
    Man(manuals::ManArgs),
    /// The site trust store: pin, rotate and show trusted keys (TUF root versions).
    #[command(subcommand)]
    Trust(trust::Command),
}

/// Parses the process arguments, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => {
                    // The command line could not be read, but a script that asked for JSON still
                    // gets its one document.
                    if std::env::args_os().any(|a| a == "--json") {
                        let rendered = e.to_string();
                        let message = rendered
                            .lines()
                            .next()
                            .unwrap_or("invalid command line")
                            .trim_start_matches("error: ");
                        let _ = write_json_document(
                            Exit::Usage,
                            Some(error_object(
                                Exit::Usage.name(),
                                &crate::kit::path::printable(message),
                                None,
                            )),
                        );
                    }
                    ExitCode::from(Exit::Usage.code())
                }
            };
        }
    };
    crate::report::progress::set_mode(cli.global.progress);
    if let Some(n) = cli.global.jobs {
        crate::trust::verify::set_jobs(usize::from(n));
    }
    let result = match cli.command {
        Command::Keygen(a) => keygen::run(a, &cli.global),
        Command::Build(a) => build::run(a, &cli.global),
        Command::Sign(a) => sign::run(a, &cli.global),
        Command::Verify(a) => verify::run(a, &cli.global),
        Command::Inspect(a) => inspect::run(a, &cli.global),
        Command::Extract(a) => extract::run(a, &cli.global),
        Command::Diff(a) => diff::run(a, &cli.global),
        Command::Split(a) => parts::run_split(a, &cli.global),
        Command::Join(a) => parts::run_join(a, &cli.global),
        Command::Apply(a) => apply::run(a, &cli.global),
        Command::Status(a) => apply::status(a, &cli.global),
        Command::History(a) => apply::history(a, &cli.global),
        Command::Migrations(cmd) => migrations::run(cmd, &cli.global),
        Command::Store(cmd) => store::run(cmd, &cli.global),
        Command::Report(a) => audit::run(a, &cli.global),
        Command::Receipt(cmd) => receipt::run(cmd, &cli.global),
        Command::Trust(cmd) => trust::run(cmd, &cli.global),
        Command::Completions(a) => manuals::completions(a, &cli.global),
        Command::Man(a) => manuals::man(a, &cli.global),
    };
    let exit = match &result {
        Ok(()) => Exit::Ok,
        Err(e) if is_broken_pipe(&e.error) => return ExitCode::from(CLOSED_STDOUT),
        Err(e) => e.exit,
    };
    // An error may quote bytes of a kit or a file: never let them drive the terminal.
    let text = result
        .as_ref()
        .err()
        .map(|e| crate::kit::path::printable_text(&chain_text(&e.error)));
    if let Some(text) = &text {
        let _ = writeln!(std::io::stderr(), "offkit: error: {text}");
    }
    if cli.global.json {
        let error = result.as_ref().err().zip(text.as_deref()).map(|(e, text)| {
            let first = e
                .error
                .chain()
                .find_map(|c| c.downcast_ref::<crate::trust::VerifyFailure>())
                .and_then(|v| v.failures.first());
            error_object(
                &first.map_or_else(|| exit.name().to_owned(), |f| f.kind.as_str()),
                text,
                first.and_then(|f| f.entry.as_deref()),
            )
        });
        if let Err(e) = write_json_document(exit, error) {
            if is_broken_pipe(&e.error) {
                return ExitCode::from(CLOSED_STDOUT);
            }
            let _ = writeln!(std::io::stderr(), "offkit: error: {}", chain_text(&e.error));
            return ExitCode::from(Exit::Io.code());
        }
    }
    ExitCode::from(exit.code())
}

/// The error and its causes, `: `-separated, each cause said once: a cause whose text the message
/// already holds (an error that shows its source and also returns it) is not repeated.
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// The exit code when stdout was closed before offkit finished writing to it (`offkit verify …
/// | head -1`): 128 + SIGPIPE, what a shell reports for a program SIGPIPE stopped, so that a
/// pipeline under `set -o pipefail` never takes a cut-off refusal for a success.
pub const CLOSED_STDOUT: u8 = 141;

/// A closed stdout ends offkit quietly with [`CLOSED_STDOUT`], as `ls` or `rg` end: the standard
/// library's `println!` panics on a broken pipe (Rust ignores SIGPIPE), and this hook turns that
/// one panic into the exit; every other panic is reported as before.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(CLOSED_STDOUT));
        }
        default(info);
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The contract's `error` object (docs/schema/common.schema.json, `error`).
fn error_object(kind: &str, message: &str, entry: Option<&str>) -> serde_json::Value {
    serde_json::json!({ "kind": kind, "message": message, "entry": entry })
}

/// Prints a warning on stderr (`offkit: warning: …`, control characters escaped) — once per run:
/// the same remark reached by two paths (the verifier and a report, two kits of one run) is said
/// once.
pub fn warn(text: &str) {
    static SAID: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said.insert(text.to_owned()) {
        eprintln!("offkit: warning: {}", crate::util::escape_controls(text));
    }
}

/// Refuses `--json` for a command whose stdout is its data (a script, an object's bytes): the two
/// cannot share stdout.
pub fn data_on_stdout(global: &Global, what: &str) -> CliResult {
    if global.json {
        return Err(CliError::msg(
            Exit::Usage,
            format!("{what} writes to stdout, so --json does not apply"),
        ));
    }
    Ok(())
}

/// The version of offkit's JSON output contract (docs/schema/): every document a command prints
/// with `--json` is an object that starts with it.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// The command's JSON document, serialised, until `main` adds the outcome and writes it.
static JSON_DOCUMENT: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// A command's JSON document with the contract's version first.
#[derive(serde::Serialize)]
struct Versioned<'a, T: serde::Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// Sets the command's JSON document (an object: lists go in a named field). `main` writes it to
/// stdout when the command ends, with `schema_version` first and `exit_code` (and, when the
/// command failed, `error`) last: one document per run, whatever happened.
pub fn print_json(value: &impl serde::Serialize) -> CliResult {
    let versioned = Versioned {
        schema_version: JSON_SCHEMA_VERSION,
        body: value,
    };
    let bytes =
        serde_json::to_vec_pretty(&versioned).map_err(|e| CliError::new(Exit::Internal, e))?;
    *JSON_DOCUMENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(bytes);
    Ok(())
}

/// `document` (a JSON object serde_json wrote pretty) with its own top-level `error` (reports
/// that record an error as text) replaced by the contract's: `exit_code`, then `error` when given,
/// last. The members keep their order; the result is checked against the same change made on the
/// parsed members ([`same_members`]), and that change is used instead should the two ever differ.
/// The document is neither split into a list of lines nor parsed into values: the report of an
/// apply of a million seeds is hundreds of MiB.
fn with_outcome(
    document: &[u8],
    exit: Exit,
    error: Option<serde_json::Value>,
) -> Result<Vec<u8>, CliError> {
    let internal = |e: serde_json::Error| CliError::new(Exit::Internal, e);
    let text = String::from_utf8_lossy(document);
    // Top-level members start at two spaces of indentation; a member's value runs to the next.
    let mut out = String::with_capacity(text.len() + 256);
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("  \"") {
            skipping = line.starts_with("  \"error\": ");
        } else if line.starts_with('}') {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    let body_end = out
        .trim_end()
        .trim_end_matches('}')
        .trim_end()
        .trim_end_matches(',')
        .len();
    out.truncate(body_end);
    out.push_str(&format!(",\n  \"exit_code\": {}", exit.code()));
    if let Some(error) = &error {
        let error = serde_json::to_string_pretty(error)
            .map_err(internal)?
            .replace('\n', "\n  ");
        out.push_str(&format!(",\n  \"error\": {error}"));
    }
    out.push_str("\n}\n");
    if same_members(&text, &out, exit, error.as_ref()) {
        return Ok(out.into_bytes());
    }
    let mut expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(document).map_err(internal)?;
    expected.remove("error");
    expected.insert("exit_code".into(), exit.code().into());
    if let Some(e) = error {
        expected.insert("error".into(), e);
    }
    let mut bytes = serde_json::to_vec_pretty(&expected).map_err(internal)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Whether `made` holds the members of `document` but its `error`, each with the same text, and
/// `exit_code` and `error` as given: each top-level value is compared as the text it is, never
/// parsed into values.
fn same_members(document: &str, made: &str, exit: Exit, error: Option<&serde_json::Value>) -> bool {
    use std::collections::BTreeMap;
    type Members<'a> = BTreeMap<String, &'a serde_json::value::RawValue>;
    let (Ok(mut expected), Ok(mut got)) = (
        serde_json::from_str::<Members<'_>>(document),
        serde_json::from_str::<Members<'_>>(made),
    ) else {
        return false;
    };
    expected.remove("error");
    let code = got.remove("exit_code").map(|v| v.get().to_owned());
    let got_error = got
        .remove("error")
        .map(|v| serde_json::from_str::<serde_json::Value>(v.get()));
    let error_same = match (got_error, error) {
        (None, None) => true,
        (Some(Ok(g)), Some(e)) => g == *e,
        _ => false,
    };
    code == Some(exit.code().to_string())
        && error_same
        && expected.len() == got.len()
        && expected
            .iter()
            .zip(&got)
            .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.get() == v2.get())
}

/// Writes the run's one JSON document: the command's, or (when it set none) `{"schema_version",
/// "status": "error"}`; then `exit_code`, and `error` (`{"kind", "message", "entry"}`) when the
/// run failed (docs/schema/common.schema.json).
fn write_json_document(exit: Exit, error: Option<serde_json::Value>) -> CliResult {
    let document = JSON_DOCUMENT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let bytes = match document {
        Some(b) => b,
        None => serde_json::to_vec_pretty(&Versioned {
            schema_version: JSON_SCHEMA_VERSION,
            body: &serde_json::json!({ "status": if error.is_some() { "error" } else { "ok" } }),
        })
        .map_err(|e| CliError::new(Exit::Internal, e))?,
    };
    let bytes = with_outcome(&bytes, exit, error)?;
    std::io::stdout()
        .lock()
        .write_all(&bytes)
        .map_err(|e| io_error("writing to stdout", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_goes_last_and_replaces_a_report_error_text_nested_ones_kept() {
        let doc = serde_json::to_vec_pretty(&serde_json::json!({
            "schema_version": 1,
            "objects": [{"key": "a", "error": "x"}],
            "error": "apply failed\nsecond line",
        }))
        .unwrap();
        let error = serde_json::json!({"kind": "store", "message": "m", "entry": null});
        let out = with_outcome(&doc, Exit::Store, Some(error.clone())).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"], error);
        assert_eq!(v["objects"][0]["error"], "x");
        assert_eq!(v["exit_code"], 12);
        let text = String::from_utf8(out).unwrap();
        assert!(text.trim_end().ends_with("}\n}"), "{text}");
        assert_eq!(text.matches("\"error\"").count(), 2, "{text}");
        // Success: a report's null error goes, nothing else is added but the code.
        let doc = b"{\n  \"schema_version\": 1,\n  \"error\": null\n}";
        let out = with_outcome(doc, Exit::Ok, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n  \"schema_version\": 1,\n  \"exit_code\": 0\n}\n"
        );
    }

    #[test]
    fn a_document_the_text_splice_cannot_handle_is_changed_as_parsed_members() {
        // Not pretty: the splice makes something else, the check sees it, the parsed way is used.
        let doc = br#"{"a":[1,2],"error":"x"}"#;
        let out = with_outcome(doc, Exit::Store, None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2], "exit_code": 12}));
        // The check compares each member's text, the code and the error.
        let made = "{\n  \"a\": [1, 2],\n  \"exit_code\": 12\n}\n";
        let doc = "{\n  \"a\": [1, 2],\n  \"error\": null\n}";
        assert!(same_members(doc, made, Exit::Store, None));
        assert!(!same_members(doc, made, Exit::Ok, None));
        assert!(!same_members(
            doc,
            &made.replace("2]", "3]"),
            Exit::Store,
            None
        ));
        let error = serde_json::json!({"kind": "store"});
        assert!(!same_members(doc, made, Exit::Store, Some(&error)));
    }

    #[test]
    fn a_cause_is_said_once() {
        let io = || std::io::Error::other("No space left on device");
        #[derive(Debug, thiserror::Error)]
        #[error("writing payload: {source}")]
        struct Shows {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Shows { source: io() });
        assert_eq!(chain_text(&e), "writing payload: No space left on device");
        let e = anyhow::Error::new(io()).context("writing k.kit.tar.zst");
        assert_eq!(
            chain_text(&e),
            "writing k.kit.tar.zst: No space left on device"
        );
    }
}
