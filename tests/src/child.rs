//! orrery-local in a child process, for the kill -9 suites: the test binary re-executes
//! itself with an environment variable naming the data directory; the child runs
//! `orrery_local::run`, the very function the `orrery-local` binary's `main` calls, and prints
//! the address it listens on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts the test `test_name` as orrery-local's child process on `dir` (passed in
/// `variable`): the child and its `http://` address.
pub fn start(test_name: &str, variable: &str, dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(variable, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        // The harness prints `test <name> ... ` without a newline before the child's output.
        if let Some((_, address)) = line.split_once("listening ") {
            return (child, format!("http://{}", address.trim()));
        }
    }
    child.kill().ok();
    child.wait().ok();
    panic!("the child exited before listening");
}

/// The child's side: orrery-local on `dir` until killed.
pub fn run_orrery_local(dir: &std::path::Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(orrery_local::run(
            orrery::config::Config::default(),
            "127.0.0.1:0".parse().unwrap(),
            dir,
            Some(crate::ADMIN_KEY),
            std::future::pending(),
            |address| println!("listening {address}"),
        ))
        .unwrap();
}
