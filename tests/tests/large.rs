//! Events larger than every limit on the way (frames, batches, gRPC
//! messages, bundle frames): a real program reading and writing buffers of
//! MiBs in a burst is recorded, listed, fetched and replayed whole.
use std::path::Path;

use tracer_proto as pb;
use tracer_tests::{assert_replayed_as_recorded, build_c, record_checking, replay, tracectl};

/// Reads the file ARGV[1] (N bytes, ARGV[2]) ROUNDS (ARGV[3]) times as
/// one read each, changes a byte, writes the buffer to /dev/null, and
/// prints a checksum of every byte it read: the replay prints the same
/// only if each recorded read came back whole.
const PROGRAM: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 4) return 64;
    size_t n = strtoul(argv[2], 0, 10);
    int rounds = atoi(argv[3]);
    unsigned char *buf = malloc(n);
    int in = open(argv[1], O_RDONLY);
    int out = open("/dev/null", O_WRONLY);
    if (!buf || in < 0 || out < 0) return 65;
    unsigned long long sum = 0;
    for (int r = 0; r < rounds; r++) {
        if (lseek(in, 0, SEEK_SET) != 0) return 66;
        if (read(in, buf, n) != (ssize_t)n) return 67;
        for (size_t i = 0; i < n; i++) sum = sum * 1099511628211ULL + buf[i];
        buf[r % n] ^= 0x5a;
        if (write(out, buf, n) != (ssize_t)n) return 68;
    }
    printf("%llu\n", sum);
    return 0;
}
"#;

/// Incompressible bytes (xorshift), so compression cannot shrink the
/// recording under a limit.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn syscall(e: &pb::Event) -> Option<&pb::Syscall> {
    match &e.kind {
        Some(pb::event::Kind::Syscall(s)) => Some(s),
        _ => None,
    }
}

/// Records PROGRAM making `rounds` reads and writes of `n` bytes each,
/// and checks that `tracectl events`, the bundle and the replay each have
/// every byte.
fn burst(n: usize, rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = build_c(dir.path(), "bigio", PROGRAM, &["-O2"]);
    let input = dir.path().join("input");
    let content = noise(n);
    std::fs::write(&input, &content).expect("input");
    let limit = n
        .max(tracer_common::wire::SNAPSHOT_LIMIT_DEFAULT as usize)
        .to_string();
    let (n_s, rounds_s) = (n.to_string(), rounds.to_string());
    let mut listed = 0;
    let rec = record_checking(
        dir.path(),
        // A ring that holds the burst: this test is about what happens to
        // the events after the ring, not about ring loss.
        &["--snapshot-limit", &limit, "--ring-size", "536870912"],
        exe.to_str().expect("path"),
        &[input.to_str().expect("path"), &n_s, &rounds_s],
        &mut |sock: &Path, pid| {
            let out = tracectl(sock, &["events", "--pid", &pid.to_string()]);
            assert!(
                out.status.success(),
                "tracectl events: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let done = format!(") = {n}");
            listed = text
                .lines()
                .filter(|l| l.contains(" read(") && l.contains(&done))
                .count();
        },
    );
    assert!(rec.status.success(), "the program failed: {:?}", rec.status);
    assert_eq!(listed, rounds, "tracectl events lists every read");

    let data = std::fs::read(&rec.bundle).expect("bundle");
    let b = tracer_store::bundle::decode(&data).expect("the bundle decodes");
    assert!(!b.header.events_lost, "the recording lost nothing");
    let mut reads = 0;
    let mut writes = 0;
    for s in b.events.iter().filter_map(syscall) {
        let whole = |arg: u32, dir: pb::Direction| {
            let buf = s
                .buffers
                .iter()
                .find(|x| x.arg == arg && x.direction == dir as i32)
                .unwrap_or_else(|| panic!("syscall {} has no buffer {arg}", s.nr));
            assert!(!buf.truncated, "syscall {} was cut", s.nr);
            buf.data.clone()
        };
        match s.nr {
            0 if s.ret == n as i64 => {
                reads += 1;
                assert!(
                    whole(1, pb::Direction::Out) == content,
                    "read {reads} came back whole"
                );
            }
            1 if s.ret == n as i64 => {
                writes += 1;
                assert_eq!(whole(1, pb::Direction::In).len(), n, "write {writes}");
            }
            _ => {}
        }
    }
    assert_eq!(
        (reads, writes),
        (rounds, rounds),
        "the bundle has every read and write"
    );

    let rep = replay(&rec.bundle, &[]);
    assert_replayed_as_recorded(&rec, &rep, "the burst");
}

/// The issue's program: 900 reads of 128 KiB (115 MB between two ticks of
/// the daemon), which made one frame its reader refused and one gRPC
/// message over tonic's limit.
#[test]
fn nine_hundred_reads_of_128_kib() {
    burst(128 << 10, 900);
}

/// Reads and writes as large as the snapshot limit allows (the eBPF side
/// sends at most 16 MiB a side), 160 MiB each way in a burst.
#[test]
fn a_burst_of_reads_and_writes_of_mibs() {
    let n = (tracer_common::wire::SNAPSHOT_LIMIT_MAX as usize).min(8 << 20);
    burst(n, (160 << 20) / n);
}
