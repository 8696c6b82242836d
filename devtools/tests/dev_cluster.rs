//! `miroir-dev`, the README's one command for a local cluster: it comes up serving the Meilisearch
//! API, and however the user stops it (Ctrl-C, `kill`, a closed terminal) it stops every process
//! it started.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose command line mentions `needle` (the cluster's own temporary data directory).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

fn stops_everything_on(signal: &str) {
    // Each gateway takes two ports (port, port + 1); the two tests run side by side.
    let port = 18_000 + (std::process::id() % 1000) as u16 * 4 + 2 * u16::from(signal == "HUP");
    let mut dev = Command::new(env!("CARGO_BIN_EXE_miroir-dev"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut data_dir = None;
    // Kept open to the end: miroir-dev prints as it stops, and a closed pipe would fail that.
    let mut lines = BufReader::new(dev.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("data, logs:") {
            data_dir = rest.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    let data_dir = data_dir.expect("miroir-dev prints its data directory");
    let started = processes_mentioning(&data_dir);
    assert!(started.len() >= 3, "coordinators run with the data dir: {started:?}");

    // The gateway answers like Meilisearch.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"GET /health HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.ends_with(r#"{"status":"available"}"#), "{answer}");

    Command::new("kill").args([&format!("-{signal}"), &dev.id().to_string()]).status().unwrap();
    assert!(dev.wait().unwrap().success(), "miroir-dev exits cleanly on SIG{signal}");
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("stopping"))), "it says it stops");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_mentioning(&data_dir);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIG{signal}: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!std::path::Path::new(&data_dir).exists(), "the temporary data directory is removed");
}

#[test]
fn sigterm_stops_every_process() {
    stops_everything_on("TERM");
}

#[test]
fn sighup_stops_every_process() {
    stops_everything_on("HUP");
}
