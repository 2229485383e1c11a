//! `offkit completions SHELL` and `offkit man --out DIR`: shell completions (clap_complete) and a
//! man page for offkit and for every command (clap_mangen), made from the same definitions as
//! `--help`, so they never disagree with it.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, CliResult, Global, io_error, print_json};

/// Arguments of `offkit completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `offkit man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Folder for the pages (`offkit.1`, `offkit-verify.1`, …; created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs, global: &Global) -> CliResult {
    super::data_on_stdout(global, "completions")?;
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "offkit", &mut std::io::stdout());
    Ok(())
}

/// Writes the man pages.
pub fn man(args: ManArgs, global: &Global) -> CliResult {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| io_error(format!("creating {}", args.out.display()), e))?;
    let cmd = Cli::command();
    let mut written = Vec::new();
    write_pages(&cmd, "offkit", &args.out, &mut written)?;
    if global.json {
        return print_json(&serde_json::json!({ "pages": written }));
    }
    for p in &written {
        println!("{p}");
    }
    Ok(())
}

/// Writes the page of `cmd` (named `name`) and of each of its subcommands, recursively.
fn write_pages(
    cmd: &clap::Command,
    name: &str,
    out: &std::path::Path,
    written: &mut Vec<String>,
) -> CliResult {
    let cmd = cmd.clone().name(name.to_owned());
    let path = out.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .map_err(|e| io_error(format!("rendering {}", path.display()), e))?;
    crate::util::write_atomic(&path, &page, 0o644, true)
        .map_err(|e| io_error(format!("writing {}", path.display()), e))?;
    written.push(path.display().to_string());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}
