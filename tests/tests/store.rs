//! The store under a real daemon: crashes (SIGKILL at random moments) and a
//! full disk (a small tmpfs as the data directory).
use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use tracer_store::{segment, store};
use tracer_tests::{Daemon, Guard, quick};

/// xorshift64*: a fixed seed, so a failing schedule can be replayed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// A store passes the consistency check: every segment closed (index and
/// trailer), every frame valid, the index agreeing with the batches.
fn check_consistent(dir: &Path) -> u64 {
    let mut total = 0;
    for seg in store::list(dir).expect("list") {
        let idx = seg
            .index
            .unwrap_or_else(|| panic!("{} has no index after recovery", seg.path.display()));
        let s = segment::scan(&seg.path).expect("scan");
        assert!(
            s.damage.is_empty(),
            "{}: {:?}",
            seg.path.display(),
            s.damage
        );
        let n: u64 = s.batches.iter().map(|b| b.len() as u64).sum();
        assert_eq!(
            idx.event_count,
            n,
            "{}: index and batches disagree",
            seg.path.display()
        );
        total += n;
    }
    total
}

#[test]
fn sigkill_at_random_moments_loses_nothing_reported_durable() {
    let rounds = if quick() { 5 } else { 20 };
    // A steady syscall load to record: dd one byte at a time.
    let mut dd = Guard(Some(
        Command::new("dd")
            .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=2000000000"])
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dd"),
    ));
    let dd_pid = dd.0.as_ref().expect("dd").id().to_string();
    let mut rng = Rng(0xc0ff_ee00_1234_5678);
    let mut dir = tempfile::tempdir().expect("tempdir");
    let mut durable = 0u64;
    for _ in 0..rounds {
        let d = Daemon::start_in(dir, None, &["--pid", &dd_pid]);
        std::thread::sleep(Duration::from_millis(50 + rng.below(700)));
        // What the daemon last reported as written (stats.json is written
        // after the frames it counts) of this run.
        let deadline = Instant::now() + Duration::from_secs(10);
        let st = loop {
            match d.try_stats(d.dir.path()) {
                Some(st) if st["pid"].as_u64() == Some(d.pid() as u64) => break st,
                _ if Instant::now() > deadline => panic!("no status from the daemon in 10 s"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        durable += st["store"]["events_written"]
            .as_u64()
            .expect("events_written");
        dir = d.into_dir();
    }
    // One clean run recovers the last crash; then stop it gracefully.
    let mut d = Daemon::start_in(dir, None, &["--pid", &dd_pid]);
    std::thread::sleep(Duration::from_millis(300));
    d.stop();
    let c = dd.0.as_mut().expect("dd");
    let _ = c.kill();
    let _ = c.wait();
    let recovered = d.try_stats(d.dir.path()).expect("stats")["store"]["recovered_segments"]
        .as_u64()
        .unwrap_or(0);
    assert!(recovered >= 1, "the crashed segment was recovered at start");
    let total = check_consistent(d.dir.path());
    assert!(durable > 0);
    assert!(
        total >= durable,
        "readable {total} < reported durable {durable}"
    );
}

struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_drops_counted_events_and_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let st = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=2m,mode=0700",
            "tracer-test",
            data.to_str().expect("path"),
        ])
        .status()
        .expect("mount");
    assert!(st.success(), "mounting a tmpfs (needs root)");
    let _mount = Mount(data.clone());
    // Leave little room: the filler is the space that "returns" later.
    let filler = data.join("filler");
    std::fs::write(&filler, vec![0u8; 1900 * 1024]).expect("filler");

    let mut storm = Guard(Some(
        Command::new(env!("CARGO_BIN_EXE_syscall-storm"))
            .args(["3000", "8192", "3000"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn storm"),
    ));
    let pid = storm.0.as_ref().expect("storm").id();
    let run_dir = tempfile::tempdir().expect("tempdir");
    let mut daemon = Daemon::start_in(
        run_dir,
        Some(&data),
        &["--pid", &pid.to_string(), "--ring-size", "67108864"],
    );
    storm.release();

    // The store fills up: the daemon counts what it drops and keeps running.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = daemon.try_stats(&data)
            && st["store"]["events_dropped"].as_u64().unwrap_or(0) > 0
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon never reported the full disk: {:?}\n{}",
            daemon.try_stats(&data),
            String::from_utf8_lossy(&Command::new("df").arg(&data).output().expect("df").stdout)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Space returns while the storm pauses; its marker comes after.
    std::fs::remove_file(&filler).expect("remove filler");
    let status = storm.wait(Duration::from_secs(30));
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    daemon.stop();

    let st = daemon.try_stats(&data).expect("stats");
    assert!(
        st["store"]["events_dropped"].as_u64().unwrap_or(0) > 0,
        "drops are counted: {st}"
    );
    assert!(
        st["store"]["write_errors"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );
    assert_eq!(
        st["store"]["writing_suspended"], false,
        "writing resumed: {st}"
    );
    assert!(
        st["store"]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left"),
        "{st}"
    );
    let r = store::query(&data, &Default::default()).expect("query");
    assert!(r.damage.is_empty(), "{:?}", r.damage);
    let marker = b"/tracer-test-storm-done-marker\0";
    assert!(
        r.events
            .iter()
            .filter_map(tracer_tests::syscall)
            .any(|s| s.name == "openat"
                && tracer_tests::buffer(s, 1, tracer_proto::Direction::In) == Some(&marker[..])),
        "events after the disk recovered are stored"
    );
}

/// Writes 256 changing bytes to /dev/null and sleeps 100 µs, until killed:
/// a steady stream of events that fills small segments quickly.
const TRICKLE: &str = r#"
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    int out = open("/dev/null", O_WRONLY);
    unsigned char buf[256];
    unsigned long x = 88172645463325252UL;
    struct timespec pause = {0, 100000};
    for (;;) {
        for (int i = 0; i < 256; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            buf[i] = (unsigned char)x;
        }
        write(out, buf, sizeof buf);
        nanosleep(&pause, 0);
    }
}
"#;

/// Queries and fetches of a running process, over and over, while the
/// daemon closes a segment at every tick and retention deletes the oldest
/// as fast: not one fails, and the process is always found. Before, a
/// segment deleted between listing and reading failed the whole query
/// (`…: No such file or directory`), or hid the process.
#[test]
fn queries_and_fetches_never_fail_while_segments_rotate_and_go() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = tracer_tests::build_c(dir.path(), "trickle", TRICKLE, &["-O2"]);
    let mut load = Guard(Some(Command::new(&exe).spawn().expect("spawn the load")));
    let pid = load.0.as_ref().expect("load").id().to_string();
    let d = Daemon::start(&[
        "--pid",
        &pid,
        "--segment-bytes",
        "65536",
        // Each tick's frame of this load is about 300 KB: a dozen
        // segments kept, one closed and one deleted at every tick.
        "--retain-bytes",
        "4194304",
    ]);
    let sock = d.dir.path().join("tracer.sock");
    let data = d.dir.path().to_owned();
    let run = |args: &[&str]| {
        let out = tracer_tests::tracectl(&sock, args);
        assert!(
            out.status.success(),
            "tracectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The first events are stored within a tick or two.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ps = run(&["ps", "--pid", &pid]);
        if ps.contains("trickle") {
            break;
        }
        assert!(Instant::now() < deadline, "the load was not recorded: {ps}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let secs = if quick() { 10 } else { 25 };
    let until = Instant::now() + Duration::from_secs(secs);
    let bundle = dir.path().join("t.trace");
    let mut rounds = 0;
    std::thread::scope(|s| {
        // tracectl offline, on the same directory, at the same time.
        s.spawn(|| {
            while Instant::now() < until {
                let q = store::Query {
                    pids: vec![pid.parse().expect("pid")],
                    ..Default::default()
                };
                let r = store::query(&data, &q).unwrap_or_else(|e| panic!("offline query: {e}"));
                assert!(r.damage.is_empty(), "{:?}", r.damage);
                assert!(!r.events.is_empty(), "the running process has events");
                store::processes(&data).unwrap_or_else(|e| panic!("offline processes: {e}"));
            }
        });
        while Instant::now() < until {
            assert!(
                run(&["ps", "--pid", &pid]).contains("trickle"),
                "ps lists it"
            );
            let events = run(&["events", "--pid", &pid]);
            assert!(events.contains("write("), "events has its writes");
            run(&[
                "fetch",
                "--pid",
                &pid,
                "--no-binaries",
                "-o",
                bundle.to_str().expect("path"),
            ]);
            let b = tracer_store::bundle::decode(&std::fs::read(&bundle).expect("bundle"))
                .expect("the bundle decodes");
            assert!(b.header.event_count > 0, "the bundle has events");
            run(&["stats", "--pid", &pid]);
            rounds += 1;
        }
    });
    let st = d.try_stats(&data).expect("stats");
    let deleted = st["store"]["segments_deleted"].as_u64().unwrap_or(0);
    drop(d);
    if let Some(c) = load.0.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(
        deleted >= secs,
        "retention deleted segments all along (every tick): {st}"
    );
    assert!(rounds >= 5, "{rounds} rounds");
}

/// Writes 400 MiB of pseudo-random bytes to /dev/null in 1 MiB writes
/// (each one recorded whole), paced so that the recorder keeps up.
const BIG_WRITER: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static char buf[1 << 20];
int main(void) {
    int r = open("/dev/urandom", O_RDONLY);
    for (size_t got = 0; got < sizeof buf;) {
        ssize_t n = read(r, buf + got, sizeof buf - got);
        if (n <= 0) return 1;
        got += n;
    }
    int null = open("/dev/null", O_WRONLY);
    unsigned long long x;
    memcpy(&x, buf, sizeof x);
    x |= 1;
    for (int i = 0; i < 400; i++) {
        // Fresh bytes each time: zstd would find a repeated buffer.
        for (size_t j = 0; j < sizeof buf; j += sizeof x) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            memcpy(buf + j, &x, sizeof x);
        }
        if (write(null, buf, sizeof buf) != sizeof buf) return 2;
        usleep(2000);
    }
    printf("wrote 400 MiB\n");
    return 0;
}
"#;

fn status_kib(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in {s}"))
}

/// A bundle is built and sent as it is read: the daemon's memory does not
/// grow with it (it used to hold every event, then the encoded bundle, and
/// refused a recording over 1 GiB).
#[test]
fn a_bundle_is_fetched_in_bounded_daemon_memory_and_replays() {
    use std::os::unix::net::UnixStream;
    let dir = tempfile::tempdir().expect("tempdir");
    let second = dir.path().join("again.trace");
    let mut grew = None;
    let exe = tracer_tests::build_c(dir.path(), "bigwriter", BIG_WRITER, &["-O2"]);
    let rec = {
        tracer_tests::record_checking(
            dir.path(),
            &[],
            exe.to_str().expect("path"),
            &[],
            &mut |sock, pid| {
                // The daemon is whoever answers on the socket.
                let s = UnixStream::connect(sock).expect("connect");
                let cred =
                    nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
                        .expect("SO_PEERCRED");
                let dpid = cred.pid();
                // Peak RSS from now on (clear_refs 5 resets VmHWM).
                std::fs::write(format!("/proc/{dpid}/clear_refs"), "5").expect("clear_refs");
                let before = status_kib(dpid, "VmRSS:");
                let out = tracer_tests::tracectl(
                    sock,
                    &[
                        "fetch",
                        "--pid",
                        &pid.to_string(),
                        "-o",
                        second.to_str().expect("path"),
                    ],
                );
                assert!(
                    out.status.success(),
                    "fetch: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                grew = Some(status_kib(dpid, "VmHWM:").saturating_sub(before) << 10);
            },
        )
    };
    assert!(rec.status.success(), "{:?}", rec.status);
    let size = std::fs::metadata(&second).expect("bundle").len();
    assert!(
        size > 400 << 20,
        "the bundle holds every byte written: {size} bytes"
    );
    let grew = grew.expect("measured");
    eprintln!(
        "the daemon grew by {} MiB to send a bundle of {} MiB",
        grew >> 20,
        size >> 20
    );
    assert!(
        // Holding the events alone would be the bundle's size, and the
        // encoded bundle as much again.
        grew < size / 2,
        "the daemon grew by {} MiB to send a bundle of {} MiB",
        grew >> 20,
        size >> 20
    );
    assert_eq!(
        tracer_tests::mode(&second),
        0o600,
        "a bundle holds secrets: private"
    );
    let rep = tracer_tests::replay(&second, &[]);
    assert_eq!(rep.status.code(), Some(0), "{}", rep.summary);
    tracer_tests::assert_replayed_as_recorded(&rec, &rep, "bigwriter");
}

/// Recordings hold every buffer the processes read and wrote: the data
/// directory is 0700 and each file in it 0600 however the daemon is
/// started (here with umask 0), and a directory others can read is refused.
#[test]
fn every_file_of_the_store_is_private_whatever_the_umask() {
    use nix::sys::stat::{Mode, umask};
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("fresh/data");
    let old = umask(Mode::empty());
    let mut d = Daemon::start_in(
        tempfile::tempdir().expect("tempdir"),
        Some(&data),
        &["--pid", &std::process::id().to_string()],
    );
    umask(old);
    // Something to store: this test's own syscalls.
    for _ in 0..100 {
        let _ = std::fs::read_to_string("/proc/self/stat");
    }
    std::thread::sleep(Duration::from_millis(600));
    d.stop();
    let mode = tracer_tests::mode;
    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut files = 0;
    for e in std::fs::read_dir(&data).expect("read_dir") {
        let p = e.expect("entry").path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
        files += 1;
    }
    assert!(
        files >= 2,
        "a segment and the stats at least ({files} files)"
    );

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = Command::new(tracer_tests::daemon_bin())
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--listen",
            &format!("unix:{}", dir.path().join("s.sock").display()),
        ])
        .output()
        .expect("run the daemon");
    assert!(
        !out.status.success(),
        "a readable data directory is refused"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mode 0755") && err.contains("chmod 700"),
        "{err}"
    );
}
