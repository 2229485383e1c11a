//! The README is tested (issue 13): every example with a prompt (`$ command`) is run, in the order
//! the page gives them, in one shell whose working folder is set up as the examples assume, and
//! what the command prints (stdout and stderr) is compared with the lines the page shows under
//! it. `…` in a shown line stands for any text; a line of only `…` for any number of lines. The
//! exit code must be 0 unless the line ends with `# exit N`. Command lists without a prompt are
//! checked flag by flag against the binary (tests/cli_conventions.rs).
//!
//! The examples name a site's machines; here they are local and real:
//! `postgres://offkit@db[:5432]/concelier` (and `postgres://…`) is a fresh PostgreSQL database,
//! `http://minio:9000` an S3 server (`rclone serve s3`), and absolute folders such as
//! `/etc/offkit/trust` are folders of the workspace. Outputs are compared after mapping back.
//! The workspace holds the example kit sources (`kits/`), the dev release key (`keys/`, also as
//! `release.pub`/`release.key`), and the props the examples name (co-signer and trust keys, the
//! first trust version, a tampered kit, a kit with a Sigstore bundle and its site policy, the
//! next version of the example kit).

mod common;

#[path = "common/s3.rs"]
mod s3;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Workspace, copy_tree, forge, pg::PgDb, write};

/// One prompted example: the command, the output the page shows, the exit code it says.
#[derive(Debug)]
struct Step {
    line: usize,
    /// The first example of its block (the shell goes back to the workspace's folder).
    first: bool,
    command: String,
    shown: Vec<String>,
    exit: i32,
}

/// The prompted examples of the README's shell blocks, in order.
fn steps(readme: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut continuing = false;
    let mut in_output = false;
    let mut first = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            in_block = !in_block && line == "```sh";
            in_output = false;
            continuing = false;
            first = true;
            continue;
        }
        if !in_block {
            continue;
        }
        if continuing {
            let step = steps.last_mut().unwrap();
            step.command.push(' ');
            step.command
                .push_str(line.trim().trim_end_matches('\\').trim_end());
            continuing = line.ends_with('\\');
            if !continuing {
                finish_command(step);
            }
            continue;
        }
        if let Some(cmd) = line.strip_prefix("$ ") {
            steps.push(Step {
                line: i + 1,
                first: std::mem::take(&mut first),
                command: cmd.trim_end_matches('\\').trim_end().to_owned(),
                shown: Vec::new(),
                exit: 0,
            });
            continuing = cmd.ends_with('\\');
            if !continuing {
                finish_command(steps.last_mut().unwrap());
            }
            in_output = true;
        } else if line.starts_with("# ") || line == "#" || line.is_empty() {
            in_output = false;
        } else if in_output {
            steps.last_mut().unwrap().shown.push(line.to_owned());
        }
    }
    steps
}

/// Takes `# exit N` off the end of a command.
fn finish_command(step: &mut Step) {
    if let Some((cmd, comment)) = step.command.rsplit_once(" # ") {
        // Only a comment that is exactly `exit N` says the code; other comments are prose.
        if let Some(n) = comment.trim().strip_prefix("exit ")
            && let Ok(n) = n.parse()
        {
            step.exit = n;
        }
        step.command = cmd.trim_end().to_owned();
    }
}

/// Whether `actual` is what `shown` shows (`…` wildcards).
fn matches(shown: &[String], actual: &[String]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "…" => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(first, a) && matches(rest, more)),
    }
}

fn line_matches(shown: &str, actual: &str) -> bool {
    let shown = shown.trim_end();
    let actual = actual.trim_end();
    let parts: Vec<&str> = shown.split('…').collect();
    if parts.len() == 1 {
        return shown == actual;
    }
    let Some(mut rest) = actual.strip_prefix(parts[0]) else {
        return false;
    };
    for (k, part) in parts.iter().enumerate().skip(1) {
        if k == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// A persistent bash, so that `cd` and variables carry from one example to the next as they
/// would for a reader typing them.
struct Shell {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
}

const DONE: &str = "__offkit_readme_step_done__";

impl Shell {
    fn start(dir: &Path, env: &[(String, String)]) -> Shell {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_offkit"));
        let path = format!(
            "{}:{}",
            bin.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env("PATH", path)
            .env("OFFKIT_STATE", dir.join(".state/accepted.sqlite"))
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("OFFKIT_FAILPOINT")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut shell = Shell { child, out };
        shell.send("exec 2>&1");
        shell
    }

    fn send(&mut self, script: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{script}").unwrap();
        stdin.flush().unwrap();
    }

    /// Runs one command; returns its exit code and output lines.
    fn run(&mut self, command: &str) -> (i32, Vec<String>) {
        self.send(&format!(
            "{{ {command}\n}} </dev/null\nprintf '\\n{DONE} %d\\n' $?"
        ));
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.out.read_line(&mut line).unwrap() > 0, "bash ended");
            let line = line.trim_end_matches('\n');
            if let Some(code) = line.strip_prefix(&format!("{DONE} ")) {
                // The newline printed before the marker.
                if lines.last().is_some_and(|l: &String| l.is_empty()) {
                    lines.pop();
                }
                return (code.parse().unwrap(), lines);
            }
            lines.push(line.to_owned());
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn offkit(dir: &Path, args: &[&str]) {
    let o = common::cmd().current_dir(dir).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "setup: offkit {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The application's archive table the store migration example reads.
fn app_archive(app: &PgDb) {
    let mut c = postgres::Client::connect(&app.url, postgres::NoTls).unwrap();
    c.batch_execute(
        "CREATE TABLE public.archive_document (archive_id TEXT PRIMARY KEY, document BYTEA NOT NULL);\
         INSERT INTO public.archive_document VALUES \
           ('2026/analysis-1.json', convert_to('{\"id\": 1}', 'UTF8')), \
           ('2026/analysis-2.json', convert_to('{\"id\": 2}', 'UTF8')), \
           ('2026/analysis-3.json', convert_to('{\"id\": 3}', 'UTF8'));",
    )
    .unwrap();
}

/// A copy of the example kit source in `dir` at another version and sequence of its channel.
fn example_version(ws: &Workspace, dir: &str, version: &str, sequence: u64) -> PathBuf {
    let to = ws.path(dir);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("kits/concelier-lnm"),
        &to,
    );
    let toml = to.join("kit.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace(
            "version = \"21.103.0\"",
            &format!("version = \"{version}\""),
        )
        .replace("sequence = 3", &format!("sequence = {sequence}"));
    write(&toml, text);
    to
}

/// The workspace the examples assume (see the module comment).
fn setup(ws: &Workspace) {
    let root = ws.path("");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_tree(&repo.join("kits"), &ws.path("kits"));
    copy_tree(&repo.join("keys"), &ws.path("keys"));
    for (from, to) in [
        ("keys/dev-release.pub", "release.pub"),
        ("keys/dev-release.key", "release.key"),
    ] {
        std::fs::copy(ws.path(from), ws.path(to)).unwrap();
    }
    for key in ["keys/dev-release.key", "release.key"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ws.path(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for name in [
        "security-team",
        "root-2026",
        "root-2027",
        "release-2027",
        "site",
    ] {
        offkit(&root, &["keygen", "--out", name]);
    }
    // The site's first trust version: root key root-2026, kit key the release key.
    offkit(
        &root,
        &[
            "trust",
            "new",
            "--version",
            "1",
            "--expires",
            "2028-12-01T00:00:00Z",
            "--root-key",
            "root-2026.pub",
            "--kit-key",
            "release.pub",
            "--out",
            "1.root.json",
        ],
    );
    offkit(
        &root,
        &["trust", "sign", "1.root.json", "--key", "root-2026.key"],
    );

    // A folder to seed, and a legacy store layout to migrate.
    write(&ws.path("exported/reports/2026-q3.json"), "{\"q\": 3}\n");
    write(&ws.path("exported/reports/2026-q4.json"), "{\"q\": 4}\n");
    write(
        &ws.path("srv/legacy/tenants/acme/bundles/b1/aaaa-web.cdx.json"),
        "{\"bomFormat\": \"CycloneDX\", \"specVersion\": \"1.5\", \"serialNumber\": \"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79\", \
         \"metadata\": {\"component\": {\"bom-ref\": \"pkg:npm/@acme/web@1.2.0\", \"name\": \"web\"}}}\n",
    );

    // The quick-start kit, and a copy one of whose seeds was changed after signing.
    offkit(
        &root,
        &[
            "build",
            "kits/quickstart",
            "--key",
            "release.key",
            "--out",
            "dist",
        ],
    );
    let mut entries = forge::read(&ws.path("dist/quickstart-1.0.0.kit.tar.zst"));
    let i = forge::find(&entries, "seeds/catalog/items.json");
    entries[i].data[3] ^= 1;
    forge::write(&entries, &ws.path("tampered.kit.tar.zst"));

    // The next version of the example kit: 001 edited after it shipped, 004 added, the runner's
    // SBOM at the new version.
    let next = example_version(ws, "next-src", "21.104.0", 4);
    let first = next.join("migrations/concelier/001_advisory_raw.sql");
    let sql = std::fs::read_to_string(&first).unwrap();
    write(
        &first,
        format!("-- SPDX-License-Identifier: Apache-2.0\n{sql}"),
    );
    write(
        &next.join("migrations/concelier/004_linkset_notes.sql"),
        "CREATE TABLE concelier.linkset_notes (id BIGINT PRIMARY KEY, note TEXT NOT NULL);\n",
    );
    let sbom = next.join("sboms/migration-runner.spdx.json");
    let text = std::fs::read_to_string(&sbom)
        .unwrap()
        .replace("21.103.0", "21.104.0");
    write(&sbom, text);
    // The version before it, on the same channel.
    example_version(ws, "old-src", "21.102.0", 2);
    offkit(
        &root,
        &["build", "old-src", "--key", "release.key", "--out", "old"],
    );
    std::fs::rename(
        ws.path("old/concelier-lnm-21.102.0.kit.tar.zst"),
        ws.path("old.kit.tar.zst"),
    )
    .unwrap();
    for src in ["kits/concelier-lnm", "next-src"] {
        offkit(&root, &["build", src, "--key", "release.key", "--out", "."]);
    }

    // A kit carrying a Sigstore bundle (a real one, from the Sigstore staging services), and a
    // site policy that pins the staging trusted root and the signer it accepts.
    let fixtures = repo.join("fixtures/sigstore");
    let sig = ws.path("sigstore-src");
    copy_tree(&repo.join("kits/quickstart"), &sig);
    std::fs::create_dir_all(sig.join("attestations")).unwrap();
    std::fs::copy(
        fixtures.join("bundle_v3.txt.sigstore"),
        sig.join("attestations/bundle_v3.txt.sigstore.json"),
    )
    .unwrap();
    let digest = offkit::util::sha256_hex(&std::fs::read(fixtures.join("bundle_v3.txt")).unwrap());
    let toml = sig.join("kit.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    write(
        &toml,
        format!(
            "{text}\n[[sigstore]]\nbundle = \"attestations/bundle_v3.txt.sigstore.json\"\nkind = \"release-notes\"\ndigest = \"sha256:{digest}\"\nname = \"bundle_v3.txt\"\n"
        ),
    );
    offkit(
        &root,
        &[
            "build",
            "sigstore-src",
            "--key",
            "release.key",
            "--out",
            "sig",
        ],
    );
    std::fs::rename(
        ws.path("sig/quickstart-1.0.0.kit.tar.zst"),
        ws.path("kit.tar.zst"),
    )
    .unwrap();
    copy_tree(&fixtures.join("trusted_root"), &ws.path("sigstore"));
    write(
        &ws.path("site-policy.toml"),
        "threshold = 1\n\n[[keys]]\nname = \"release\"\npublic_key = \"release.pub\"\n\n\
         [sigstore]\ntrusted_root = \"sigstore/staging.json\"\n\n\
         [[sigstore.identities]]\nkinds = [\"release-notes\"]\nsan = \"william@yossarian.net\"\n\
         issuer = \"https://github.com/login/oauth\"\n",
    );
}

#[test]
fn every_prompted_readme_example_runs_and_prints_what_the_page_shows() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 30, "found only {} examples", steps.len());

    let ws = Workspace::new();
    setup(&ws);
    let db = PgDb::create();
    let app = PgDb::create();
    let site = PgDb::create();
    app_archive(&app);
    let s3 = s3::S3Server::start();
    for bucket in ["seeds", "archive", "artifacts"] {
        s3.bucket(bucket);
    }
    let endpoint = s3.endpoint();
    let root = ws.path("").display().to_string();
    // README text → what runs here; and back, for the output.
    let local: Vec<(String, String)> = vec![
        ("postgres://offkit@db:5432/concelier".into(), db.url.clone()),
        ("postgres://offkit@db/concelier".into(), db.url.clone()),
        ("postgres://…".into(), db.url.clone()),
        ("postgres://offkit@db/app".into(), app.url.clone()),
        ("postgres://ops@db/app".into(), app.url.clone()),
        ("postgres://dba@db/app".into(), app.url.clone()),
        ("postgres://ops@db/site".into(), site.url.clone()),
        ("http://minio:9000".into(), endpoint.clone()),
        (
            "/etc/offkit/trust".into(),
            format!("{root}/etc/offkit/trust"),
        ),
        ("/srv/kits/".into(), format!("{root}/srv/kits/")),
        ("/srv/objects".into(), format!("{root}/srv/objects")),
        ("/srv/legacy".into(), format!("{root}/srv/legacy")),
        ("/secure/keys/".into(), format!("{root}/secure/keys/")),
        (
            "/etc/bash_completion.d/".into(),
            format!("{root}/completions/"),
        ),
        ("/usr/local/share/man/".into(), format!("{root}/man/")),
    ];
    let mut back: Vec<(String, String)> = vec![
        (
            offkit::migrate::DbUrl::parse(&db.url).unwrap().redacted(),
            "postgres://offkit@db:5432/concelier".into(),
        ),
        (db.url.clone(), "postgres://offkit@db:5432/concelier".into()),
        (endpoint.clone(), "http://minio:9000".into()),
        (app.url.clone(), "postgres://ops@db:5432/app".into()),
        (
            offkit::migrate::DbUrl::parse(&app.url).unwrap().redacted(),
            "postgres://ops@db:5432/app".into(),
        ),
        (site.url.clone(), "postgres://ops@db:5432/site".into()),
        (
            offkit::migrate::DbUrl::parse(&site.url).unwrap().redacted(),
            "postgres://ops@db:5432/site".into(),
        ),
    ];
    back.extend(
        local
            .iter()
            .filter(|(from, _)| from.starts_with('/'))
            .map(|(from, to)| (to.clone(), from.clone())),
    );
    back.push((format!("{root}/"), "/".into()));
    std::fs::create_dir_all(ws.path("completions")).unwrap();
    std::fs::create_dir_all(ws.path("etc/offkit")).unwrap();
    let env: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut shell = Shell::start(&ws.path(""), &env);
    let mut failures = Vec::new();
    let mut last = 0;
    for step in &steps {
        let mut command = step.command.clone();
        for (from, to) in &local {
            command = command.replace(from, to);
        }
        // `$?` is the previous example's exit code, as for a reader typing them.
        // Each block starts in the workspace; within one, `cd` holds.
        let cd = if step.first {
            format!("cd {root}; ")
        } else {
            String::new()
        };
        let (code, lines) = shell.run(&format!("{cd}(exit {last}); {command}"));
        last = code;
        let lines: Vec<String> = lines
            .into_iter()
            .map(|l| back.iter().fold(l, |l, (from, to)| l.replace(from, to)))
            .collect();
        if code != step.exit || !matches(&step.shown, &lines) {
            failures.push(format!(
                "README:{}: $ {}\n  exit {code} (the page says {})\n  the page shows:\n{}\n  it printed:\n{}",
                step.line,
                step.command,
                step.exit,
                step.shown
                    .iter()
                    .map(|l| format!("    |{l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                lines
                    .iter()
                    .map(|l| format!("    |{l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_takes_ellipses_as_any_text() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches(&s(&["a …", "…"]), &s(&["a b", "c", "d"])));
    assert!(matches(&s(&["a …"]), &s(&["a b"])));
    assert!(!matches(&s(&["a …"]), &s(&["a b", "c"])));
    assert!(matches(&s(&["x", "…", "z"]), &s(&["x", "z"])));
    assert!(matches(
        &s(&["sha 1f…", "by 1f… (r)"]),
        &s(&["sha 1f00", "by 1f99 (r)"])
    ));
    assert!(!matches(&s(&["sha 1f…"]), &s(&["sha 2f00"])));
    assert!(!matches(&s(&["x"]), &s(&[])));
    assert!(matches(&s(&[]), &s(&[])));
}
